"""Rate-limit buckets in Redis, shared by every instance (--redis).

One Lua script takes a token: Redis runs it atomically, so two instances
taking from one bucket at once cannot both spend its last token, and it
reads Redis's own clock, so the instances' clocks need not agree. A bucket
is a hash (tokens, when last touched) that expires once it would be full
again anyway. redis-py sends the script by its sha1 (EVALSHA) and loads it
again when Redis has forgotten it (NOSCRIPT, after a SCRIPT FLUSH or a
restart).

When Redis cannot be reached, requests go through (fail open): a rate limit
is not worth an outage. The outage is logged once, when it starts, and
once more when it ends, and every take it costs is counted (on_error).
"""

import asyncio
import logging

import redis.asyncio
import redis.exceptions

from ..config import Rate
from . import Decision, decision

log = logging.getLogger(__name__)

KEY_PREFIX = "audioserver:ratelimit:"
# Each process keeps this many connections at most; a take waits up to
# TIMEOUT for one, for the connection itself and for the answer. A Redis
# that needs longer is as good as down: the request goes through.
MAX_CONNECTIONS = 32
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
    """Token buckets in the Redis at `url` (redis://host:port/db)."""

    def __init__(self, url: str, on_error=None):
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        self._client = redis.asyncio.Redis.from_pool(pool)  # closed with the client
        self._take = self._client.register_script(TAKE)
        self._on_error = on_error
        self._down = False

    async def take(self, key: str, rate: Rate) -> Decision | None:
        try:
            async with asyncio.timeout(TIMEOUT * 2):
                allowed, tokens = await self._take(keys=[KEY_PREFIX + key],
                                                   args=[rate.count, rate.per_second])
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return None
        if self._down:
            self._down = False
            log.warning("Redis answers again: rate limits apply again")
        return decision(bool(allowed), float(tokens), rate)

    async def ping(self) -> None:
        async with asyncio.timeout(TIMEOUT * 2):
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()

    def _failed(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error()
        if not self._down:
            self._down = True
            # The exception's text names host and port, never the URL's password.
            log.error("Redis cannot be reached (%s: %s): requests go through without "
                      "rate limits until it answers again", type(exc).__name__, exc)
