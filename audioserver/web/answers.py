"""Metadata answers made cheap to repeat: ETags for /info and /list, and
the whole encoded JSON of /list kept while the library stays the same.

A kept /list answer is keyed by the query, by the viewer (which private
files it may see) and by the store's data version, which any commit of any
worker (and on PostgreSQL of any instance) moves. The version is read
before the rows, so a kept answer is never older than its version: when
the version has not moved since, nothing has changed since. Pages for
people are not kept: they name who is signed in.
"""

import hashlib
from typing import Hashable, NamedTuple

from yarl import URL

from ..models import AudioRecord

# Each answer of 100 records is about 30 KB: a few MB per worker at most.
MAX_KEPT = 128


class ListAnswer(NamedTuple):
    body: bytes
    etag: str
    total: int
    next_page: URL | None  # relative: the Link header joins it to this request's URL


class ListAnswers:
    """The kept /list answers of one data version, in one worker."""

    def __init__(self):
        self._version: int | None = None
        self._answers: dict[Hashable, ListAnswer] = {}

    def get(self, version: int, key: Hashable) -> ListAnswer | None:
        if version != self._version:
            self._version, self._answers = version, {}
        return self._answers.get(key)

    def keep(self, version: int, key: Hashable, answer: ListAnswer) -> None:
        if version != self._version:
            return  # the library moved on meanwhile; the next get() starts afresh
        if len(self._answers) >= MAX_KEPT:
            self._answers.clear()
        self._answers[key] = answer


def etag(*parts: bytes) -> str:
    return '"' + hashlib.blake2b(b"\0".join(parts), digest_size=16).hexdigest() + '"'


def record_etag(record: AudioRecord) -> str:
    """The ETag of a record's JSON, from the row, without encoding it."""
    return etag(repr(tuple(record)).encode())
