"""Previews: for a file the browsers cannot play as it is, a copy they can.

The decision goes by format and subtype, conservatively: the original bytes
go to the player only where every current browser (Chromium, Firefox,
Safari) plays them. Anything else gets a preview (encode.py), made once, on
its first play, and kept beside the audio as a large sidecar, so it works
on any storage backend. On first play, not at upload: an upload or an
import stays as fast as before, and only files someone plays pay for it;
the info page asks for it as it opens. An MP3 is judged by the worker,
which reads its header as a browser would: one whose length it misstates
(VBR without a Xing header) gets a preview, whose header is right.

What the worker found is kept as well: a small sidecar says that an MP3
plays as it is, another that the file cannot be decoded, which is answered
at once from then on, as for waveforms. Stored files never change under
their key, so none of these goes stale.
"""

from typing import NamedTuple

from ..errors import NotFound, Undecodable
from ..models import AudioRecord
from ..singleflight import SingleFlight
from ..storage import Storage
from . import derived
from .encode import CODECS, codec_for
from .probe import ProbePool

# Part of the ETag and the sidecars' names: bump it when previews change.
PREVIEW_VERSION = 1
NATIVE_SUFFIX = f"preview{PREVIEW_VERSION}-native.txt"
FAILED_SUFFIX = f"preview{PREVIEW_VERSION}-failed.txt"
# (format -> subtypes) every current browser plays from the original bytes.
NATIVE_SUBTYPES = {
    "WAV": frozenset({"PCM_16", "PCM_24", "FLOAT"}),
    "FLAC": frozenset({"PCM_S8", "PCM_16", "PCM_24"}),
    "OGG": frozenset({"VORBIS", "OPUS"}),
}
NATIVE_MAX_CHANNELS = 2
# A preview may take this many seconds for each second of audio, if that is
# longer than the parsers' usual limit: LAME runs at some 60 times real time
# on one core, a fifth of that when the machine is busy.
SECONDS_PER_AUDIO_SECOND = 0.2


class Preview(NamedTuple):
    """A stored preview: its sidecar, media type and size."""

    suffix: str
    content_type: str
    size: int


def plays_natively(record: AudioRecord) -> bool:
    """Whether every current browser plays the file's own bytes (an MP3:
    only the worker can tell, see the module's docstring)."""
    return (record.subtype in NATIVE_SUBTYPES.get(record.format, ())
            and record.channels <= NATIVE_MAX_CHANNELS)


def etag(record: AudioRecord) -> str:
    return f'"preview{PREVIEW_VERSION}-{record.sha256}"'


def preview_suffix(record: AudioRecord) -> str:
    return f"preview{PREVIEW_VERSION}.{codec_for(record.samplerate)}"


class Previews:
    """Previews from a parser pool of their own (one may take a while), each
    file's made by one request while others asking for it wait."""

    def __init__(self, storage: Storage, pool: ProbePool):
        self.storage = storage
        self.pool = pool
        self._making: SingleFlight[Preview | None] = SingleFlight()

    async def preview(self, record: AudioRecord) -> Preview | None:
        """The preview of `record`, made now if need be; None when the
        original plays as it is."""
        if record.format != "MP3" and plays_natively(record):
            return None
        key = record.storage_key
        stored = await self._stored(record)
        if stored is not None:
            return stored
        if await self.storage.read_sidecar(key, NATIVE_SUFFIX) is not None:
            return None
        failure = await self.storage.read_sidecar(key, FAILED_SUFFIX)
        if failure is not None:
            raise Undecodable(failure.decode(), name=record.name)
        return await self._making.run(key, lambda: self._make(record))

    async def _stored(self, record: AudioRecord) -> Preview | None:
        suffix = preview_suffix(record)
        size = await self.storage.sidecar_size(record.storage_key, suffix)
        if size is None:
            return None
        return Preview(suffix, CODECS[codec_for(record.samplerate)][2], size)


    async def _make(self, record: AudioRecord) -> Preview | None:
        # Written to a temporary file on the local disk, whatever the backend,
        # then stored: a storage that refuses it (503) or is full (507) keeps
        # nothing, and the next play tries again.
        target = await self.storage.open_upload()
        try:
            await self.storage.finish(target)
            if not await self._encode(record, target.path):
                await derived.keep(self.storage, record, NATIVE_SUFFIX, b"plays as it is\n",
                                   "preview finding")
                return None
            suffix = preview_suffix(record)
            await self.storage.write_sidecar_file(record.storage_key, suffix, target.path)
        finally:
            await self.storage.discard(target)
        if await derived.drop_if_deleted(self.storage, record, suffix):
            raise NotFound("the file was deleted while its preview was made")
        return await self._stored(record)

    async def _encode(self, record: AudioRecord, target) -> bool:
        time_limit = record.duration * SECONDS_PER_AUDIO_SECOND
        try:
            async with self.storage.local_copy(record.storage_key) as path:
                return await self.pool.preview(path, target, record.name, record.format,
                                               record.frames, time_limit)
        except Undecodable as exc:
            await derived.keep(self.storage, record, FAILED_SUFFIX, exc.detail.encode(),
                               "preview failure")
            raise
        except FileNotFoundError:
            raise NotFound("the file was deleted while its preview was made") from None

    async def close(self) -> None:
        """Stop previews in flight (before the pool goes, see Waveforms.close)."""
        await self._making.close()
