"""Metadata answers made cheap to repeat: ETags for /info and /list, and
their whole encoded JSON kept while the library stays the same.

A kept answer is keyed by what was asked (the name, or the /list query),
by the viewer (which private files it may see) and by the store's data
version, which any commit of any worker (and on PostgreSQL of any
instance) moves. The version is read
before the rows, so a kept answer is never older than its version: when
the version has not moved since, nothing has changed since. An answer that
is not kept yet is made once, however many ask for it at once: after each
write, 64 connections asking the same page would otherwise each make it. Pages for
people are not kept: they name who is signed in.
"""

import hashlib
from typing import Awaitable, Callable, Hashable, NamedTuple

from yarl import URL

from ..models import AudioRecord
from ..singleflight import SingleFlight

# An /info answer is under 1 KB, a /list of 100 records about 30 KB.
MAX_KEPT_BYTES = 4 * 2**20  # per worker


class ListAnswer(NamedTuple):
    body: bytes
    etag: str
    total: int
    next_page: URL | None  # relative: the Link header joins it to this request's URL


class InfoAnswer(NamedTuple):
    body: bytes
    etag: str


class Answers:
    """The kept /info and /list answers of one data version, in one worker."""

    def __init__(self):
        self._version: int | None = None
        self._answers: dict[Hashable, ListAnswer | InfoAnswer] = {}
        self._kept_bytes = 0
        self._making: SingleFlight[ListAnswer | InfoAnswer] = SingleFlight()

    async def answer(self, version: int, key: Hashable,
                     make: Callable[[], Awaitable[ListAnswer | InfoAnswer]]):
        """The answer kept for `key`, or the one make() makes and keeps.
        Whoever asks while it is being made waits for it; a request that
        goes away meanwhile does not take it from the others (shielded)."""
        kept = self.get(version, key)
        if kept is not None:
            return kept

        async def make_and_keep():
            answer = await make()  # a NotFound, say, is not kept
            self.keep(version, key, answer)
            return answer

        return await self._making.run((version, key), make_and_keep)

    def get(self, version: int, key: Hashable) -> ListAnswer | InfoAnswer | None:
        if version != self._version:
            self._version, self._answers, self._kept_bytes = version, {}, 0
        return self._answers.get(key)

    def keep(self, version: int, key: Hashable, answer: ListAnswer | InfoAnswer) -> None:
        if version != self._version:
            return  # the library moved on meanwhile; the next get() starts afresh
        if self._kept_bytes + len(answer.body) > MAX_KEPT_BYTES:
            self._answers, self._kept_bytes = {}, 0
        self._answers[key] = answer
        self._kept_bytes += len(answer.body)


def etag(*parts: bytes) -> str:
    return '"' + hashlib.blake2b(b"\0".join(parts), digest_size=16).hexdigest() + '"'


def record_etag(record: AudioRecord) -> str:
    """The ETag of a record's JSON, from the row, without encoding it."""
    return etag(repr(tuple(record)).encode())
