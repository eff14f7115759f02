"""Waveform peaks: computed once per file and size, then kept beside the file.

Decoding runs in the parser workers (probe.py), not in a thread: it is
libsndfile reading untrusted bytes, further than probing did, and a crash
there must cost one waveform, never the server. It is also off the event
loop that way, and under the workers' time and memory limits. The JSON is
stored as a sidecar of the audio file, so it is deleted with it.
"""

import asyncio
import json
import logging

from .errors import BadRequest, StorageRefused
from .library import Library
from .models import AudioRecord

DEFAULT_POINTS = 1000
MAX_POINTS = 10_000
# Part of the ETag and the file name: bump it when the computation changes.
PEAKS_VERSION = 1

log = logging.getLogger(__name__)


def parse_points(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_POINTS
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_POINTS:
        raise BadRequest(f"points={text!r}: give a whole number from 1 to {MAX_POINTS}")
    return int(text)


def etag(record: AudioRecord, points: int) -> str:
    return f'"peaks{PEAKS_VERSION}-{points}-{record.sha256}"'


async def peaks_json(library: Library, record: AudioRecord, points: int) -> bytes:
    """The peaks of `record` as JSON bytes, from the sidecar or computed now."""
    suffix = f"peaks{PEAKS_VERSION}-{points}.json"
    cached = await library.storage.read_sidecar(record.storage_key, suffix)
    if cached is not None:
        return cached
    path = library.storage.path(record.storage_key)
    peaks = await library.probes.peaks(path, record.name, points, record.frames, record.format)
    data = json.dumps(peaks, separators=(",", ":")).encode()
    try:
        await library.storage.write_sidecar(record.storage_key, suffix, data)
    except StorageRefused as exc:
        # Only a copy kept for next time failed: the answer is still good.
        log.warning("the storage refused to keep the waveform of %r (%s); served, not kept",
                    record.name, exc.__cause__)
        return data
    if not await asyncio.to_thread(path.exists):
        # Deleted while its peaks were computed: the delete removed the
        # sidecars there were, this one came after it. Only this one goes:
        # the file may be aside for a delete that is not over yet.
        await library.storage.remove_sidecar(record.storage_key, suffix)
    return data
