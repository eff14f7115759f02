"""Rate limits: token buckets per client and budget.

The interface the web layer is written against: a Decision per take, the
Buckets every implementation fills in, and RateLimiter, the budgets of one
server over them. mmap.py keeps the buckets in a memory-mapped file (one
machine, the default); redis.py in Redis (several instances, --redis).
"""

import math
from dataclasses import dataclass
from typing import Protocol

from ..config import Config, Rate


@dataclass(slots=True)  # not frozen: a frozen dataclass costs a microsecond to make
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next token, when refused

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset)}


def decision(allowed: bool, tokens: float, rate: Rate) -> Decision:
    """What a take that left `tokens` in a bucket of `rate` tells the client."""
    return Decision(
        allowed=allowed, limit=rate.count, remaining=int(tokens),
        reset=math.ceil((rate.count - tokens) / rate.per_second),
        retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / rate.per_second)),
    )


class Buckets(Protocol):
    """Token buckets shared by every process that serves the library."""

    async def take(self, key: str, rate: Rate) -> Decision | None:
        """Take a token from `key`'s bucket for `rate`, if it has one; None
        when the buckets cannot be reached, and the request goes through
        (failing open: a rate limit is not worth an outage)."""

    async def ping(self) -> None:
        """Raise if the buckets cannot be reached (for /readyz)."""

    async def close(self) -> None: ...


def open_buckets(config: Config, on_error=None) -> Buckets:
    """The buckets the configuration names: Redis with --redis, else the
    data directory's file. `on_error()` is called for each take Redis could
    not answer (the metrics count them)."""
    if config.redis is not None:
        from .redis import RedisBuckets  # only a server with --redis needs redis-py
        return RedisBuckets(config.redis, on_error=on_error)
    from .mmap import SharedBuckets
    return SharedBuckets(config.ratelimit_path)


class RateLimiter:
    """The budgets of one server, over the buckets every worker shares."""

    def __init__(self, buckets: Buckets, config: Config):
        self.buckets = buckets
        # A budget whose rate is None has no limit.
        self.rates = {"uploads": config.upload_rate, "writes": config.write_rate,
                      "reads": config.read_rate}
