"""Rate-limit buckets in Redis, shared by every instance (--redis).

One Lua script takes a token: Redis runs it atomically, so two instances
taking from one bucket at once cannot both spend its last token, and it
reads Redis's own clock, so the instances' clocks need not agree. A bucket
is a hash (tokens, when last touched) that expires once it would be full
again anyway. The script is sent by its sha1 (EVALSHA) and loaded again
when Redis has forgotten it (NOSCRIPT, after a SCRIPT FLUSH or a restart).

When Redis cannot be reached, requests go through (fail open): a rate limit
is not worth an outage. The outage is logged once, when it starts, and
once more when it ends, and every take it costs is counted (on_error).
"""

import asyncio
import hashlib
import logging

import redis.asyncio
import redis.exceptions

from ..config import Rate
from . import Decision, decision

log = logging.getLogger(__name__)

KEY_PREFIX = "audioserver:ratelimit:"
# Takes go in one pipeline at a time (see RedisBuckets), so a process
# needs a connection for that and one for /readyz's PING. A take waits up to
# TIMEOUT for a connection, for connecting, and for the answer: a Redis that
# needs longer is as good as down, and the request goes through.
MAX_CONNECTIONS = 4
TIMEOUT = 0.5

# KEYS[1]: the bucket; ARGV: its size, its refill per second. Returns
# whether a token was taken, and what is left (a string: Redis would cut a
# Lua number down to an integer).
TAKE = """
local size = tonumber(ARGV[1])
local per_second = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens, stamp = size, now
end
tokens = math.min(size, tokens + math.max(0, now - stamp) * per_second)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((size - tokens) / per_second * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Token buckets in the Redis at `url` (redis://host:port/db).

    Takes that arrive together go to Redis together: one pipeline at a time
    per process, carrying every take that came while the previous one was
    on its way. Under load that is one round trip, and one connection, for
    dozens of requests, instead of one each."""

    def __init__(self, url: str, on_error=None):
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        self._client = redis.asyncio.Redis.from_pool(pool)  # closed with the client
        self._sha = hashlib.sha1(TAKE.encode()).hexdigest()
        self._on_error = on_error
        self._down = False
        self._pending: list[tuple[str, Rate, asyncio.Future]] = []
        self._sender: asyncio.Task | None = None

    async def take(self, key: str, rate: Rate) -> Decision | None:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((KEY_PREFIX + key, rate, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        # Shielded: a request cancelled meanwhile must not cancel the others' batch.
        result = await asyncio.shield(future)
        if isinstance(result, BaseException):
            self._failed(result)
            return None
        if self._down:
            self._down = False
            log.warning("Redis answers again: rate limits apply again")
        allowed, tokens = result
        return decision(bool(allowed), float(tokens), rate)

    async def _send(self) -> None:
        """Send what is pending, batch after batch, until nothing is."""
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with asyncio.timeout(TIMEOUT * 2):
                        results = await self._run([(key, rate) for key, rate, _ in batch])
                except Exception as exc:  # whatever it is, every take waiting must hear
                    results = [exc] * len(batch)
                for (_, _, future), result in zip(batch, results):
                    future.set_result(result)
        finally:
            self._sender = None

    async def _run(self, takes: list[tuple[str, Rate]]) -> list:
        """Each take's answer, or its exception."""
        results = await self._pipeline(takes)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            # Redis forgot the script (SCRIPT FLUSH, a restart): load it, and
            # run again the takes that did not run.
            await self._client.script_load(TAKE)
            again = [i for i, r in enumerate(results)
                     if isinstance(r, redis.exceptions.NoScriptError)]
            for i, result in zip(again, await self._pipeline([takes[i] for i in again])):
                results[i] = result
        return results

    async def _pipeline(self, takes: list[tuple[str, Rate]]) -> list:
        async with self._client.pipeline(transaction=False) as pipe:
            for key, rate in takes:
                pipe.evalsha(self._sha, 1, key, rate.count, rate.per_second)
            return await pipe.execute(raise_on_error=False)

    async def ping(self) -> None:
        async with asyncio.timeout(TIMEOUT * 2):
            await self._client.ping()

    async def close(self) -> None:
        if self._sender is not None:
            await self._sender
        await self._client.aclose()

    def _failed(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error()
        if not self._down:
            self._down = True
            # The exception's text names host and port, never the URL's password.
            log.error("Redis cannot be reached (%s: %s): requests go through without "
                      "rate limits until it answers again", type(exc).__name__, exc)
