"""Rate limits: a token bucket per client and budget, shared by every worker.

Each signed-in account, or each client address for anonymous requests, has
three buckets: uploads, other writes, and reads. A bucket holds up to N
tokens and refills at N per period; a request takes one, or is answered 429
when there is none.

The buckets live in a small file in the data directory that every worker
maps into memory, so a client has one budget whichever worker answers it.
A bucket is three numbers in a fixed slot found by hashing its key; an
exclusive flock guards the read-modify-write, which takes microseconds and
never awaits, so the event loop is not held up. When every slot near a key's
is taken, the one touched longest ago is given over: a bucket left alone for
a whole period is full again anyway, and at worst its client starts afresh.
"""

import fcntl
import hashlib
import math
import mmap
import os
import struct
import time
from pathlib import Path

from ..config import Rate
from ..errors import StartupError
from . import Decision, decision

_MAGIC = b"ASRL0001"
_HEADER = 16  # the magic and the slot count
_SLOT = struct.Struct("<Qdd")  # key hash (0: free), tokens, when last touched
SLOTS = 65536  # 1.5 MiB: far more clients than a server sees in one period
PROBES = 8  # slots tried from the hashed one before the stalest is taken over


class SharedBuckets:
    """Token buckets in a memory-mapped file, safe across processes."""

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = _HEADER + SLOTS * _SLOT.size
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size != size or os.pread(self._fd, 8, 0) != _MAGIC:
                # New, or laid out by another version: start with full buckets.
                os.ftruncate(self._fd, 0)
                os.ftruncate(self._fd, size)
                os.pwrite(self._fd, _MAGIC + struct.pack("<Q", SLOTS), 0)
            # Every block on disk now (ftruncate leaves holes): a first write
            # to a hole through the map is a SIGBUS when the disk is full.
            try:
                os.posix_fallocate(self._fd, 0, size)
            except OSError as exc:
                raise StartupError(f"cannot reserve {size} bytes for the rate limits in "
                                   f"{path} ({exc.strerror}): free some space") from None
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, size)

    async def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    async def ping(self) -> None:
        """A file we hold open and mapped is always there."""

    async def take(self, key: str, rate: Rate, now: float | None = None) -> Decision:
        """Take a token from `key`'s bucket for `rate`, if it has one. Never
        awaits: the flock is held for microseconds."""
        now = time.time() if now is None else now
        wanted = _hash(key)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            offset = self._slot(wanted)
            found, tokens, stamp = _SLOT.unpack_from(self._map, offset)
            if found != wanted:
                tokens, stamp = float(rate.count), now
            # max(): a clock stepped back must not drain anyone's bucket.
            tokens = min(rate.count, tokens + max(0.0, now - stamp) * rate.per_second)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            _SLOT.pack_into(self._map, offset, wanted, tokens, now)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return decision(allowed, tokens, rate)

    def _slot(self, wanted: int) -> int:
        """The offset of `wanted`'s slot: its own, a free one, or the stalest."""
        start = wanted % SLOTS
        stalest, stalest_stamp = None, math.inf
        for probe in range(PROBES):
            offset = _HEADER + ((start + probe) % SLOTS) * _SLOT.size
            found, _, stamp = _SLOT.unpack_from(self._map, offset)
            if found in (wanted, 0):
                return offset
            if stamp < stalest_stamp:
                stalest, stalest_stamp = offset, stamp
        return stalest


def _hash(key: str) -> int:
    # Never 0, which marks a free slot.
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") | 1
