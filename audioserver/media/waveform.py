"""Waveform peaks: computed once per file and size, then kept beside the file.

Decoding runs in parser workers (probe.py), not in a thread: it is
libsndfile reading untrusted bytes, further than probing did, and a crash
there must cost one waveform, never the server. It is also off the event
loop that way, and under the workers' time and memory limits. Waveforms have
a pool of their own, so an upload never queues behind them.

The JSON is stored as a sidecar of the audio file, so it is deleted with it;
so is a failure (the parser gave up, crashed or ran out of time), which is
answered again at once rather than tried again on every request. Stored
files never change under their key, so neither goes stale.
"""

import json

from ..errors import BadRequest, NotFound, Undecodable
from ..models import AudioRecord
from ..singleflight import SingleFlight
from ..storage import Storage
from . import derived
from .probe import ProbePool

DEFAULT_POINTS = 1000
MAX_POINTS = 10_000
# Part of the ETag and the file names: bump it when the computation changes.
PEAKS_VERSION = 1
FAILED_SUFFIX = f"peaks{PEAKS_VERSION}-failed.txt"


def parse_points(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_POINTS
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_POINTS:
        raise BadRequest(f"points={text!r}: give a whole number from 1 to {MAX_POINTS}")
    return int(text)


def etag(record: AudioRecord, points: int) -> str:
    return f'"peaks{PEAKS_VERSION}-{points}-{record.sha256}"'


class Waveforms:
    """Peaks from a pool of their own, each file and size computed by one
    request while any others asking at the same time wait for it."""

    def __init__(self, storage: Storage, pool: ProbePool):
        self.storage = storage
        self.pool = pool
        self._computing: SingleFlight[bytes] = SingleFlight()

    async def peaks_json(self, record: AudioRecord, points: int) -> bytes:
        """The peaks of `record` as JSON bytes: stored, being computed, or computed now."""
        key = record.storage_key
        cached = await self.storage.read_sidecar(key, _peaks_suffix(points))
        if cached is not None:
            return cached
        failure = await self.storage.read_sidecar(key, FAILED_SUFFIX)
        if failure is not None:
            raise Undecodable(failure.decode(), name=record.name)
        return await self._computing.run((key, points), lambda: self._compute(record, points))

    async def _compute(self, record: AudioRecord, points: int) -> bytes:
        key = record.storage_key
        try:
            async with self.storage.local_copy(key) as path:
                peaks = await self.pool.peaks(path, record.name, points,
                                              record.frames, record.format)
        except Undecodable as exc:
            await derived.keep(self.storage, record, FAILED_SUFFIX, exc.detail.encode(),
                               "waveform failure")
            raise
        except FileNotFoundError:
            raise NotFound("the file was deleted while its waveform was computed") from None
        data = json.dumps(peaks, separators=(",", ":")).encode()
        await derived.keep(self.storage, record, _peaks_suffix(points), data, "waveform")
        return data

    async def close(self) -> None:
        """Stop computations in flight (before the pool goes: a parser killed
        by the shutdown must not be remembered as the file's failure)."""
        await self._computing.close()


def _peaks_suffix(points: int) -> str:
    return f"peaks{PEAKS_VERSION}-{points}.json"
