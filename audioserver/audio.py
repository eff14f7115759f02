"""Reading audio metadata with libsndfile. Runs inside the probe worker.

Untrusted bytes are parsed here, in a separate process (see probe.py), so a
parser crash or hang costs one upload, never the server.
"""

import logging
import os

import soundfile

from .models import AudioInfo

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "WAV": "audio/wav", "WAVEX": "audio/wav", "RF64": "audio/wav",
    "W64": "audio/x-w64", "FLAC": "audio/flac", "OGG": "audio/ogg",
    "MP3": "audio/mpeg", "AIFF": "audio/aiff", "CAF": "audio/x-caf",
    "AU": "audio/basic",
}
FALLBACK_CONTENT_TYPE = "application/octet-stream"


class ProbeFailed(Exception):
    """libsndfile cannot read the file as audio; the message says why."""


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read the audio metadata of the file at `path`, decided by content."""
    try:
        info = soundfile.info(path)
    except soundfile.LibsndfileError as exc:
        # error_string leaves out the temporary path, which means nothing to a client.
        raise ProbeFailed(f"libsndfile says: {exc.error_string}") from None
    except RuntimeError as exc:
        raise ProbeFailed(f"libsndfile says: {exc}") from None
    if info.channels <= 0 or info.samplerate <= 0:
        raise ProbeFailed("it has no channels or no sample rate")
    frames = info.frames
    if info.format == "MP3":
        frames = _mp3_frames(path, info.frames)
    return AudioInfo(
        frames=frames,
        samplerate=info.samplerate,
        channels=info.channels,
        format=info.format,
        subtype=info.subtype,
        content_type=CONTENT_TYPES.get(info.format, FALLBACK_CONTENT_TYPE),
    )


def _mp3_frames(path, libsndfile_frames: int) -> int:
    """libsndfile believes a VBR MP3's missing or wrong header: count ourselves."""
    from .mp3 import count_mp3_frames

    count = count_mp3_frames(path)
    if count is None:
        return libsndfile_frames
    if count.header_frames is not None and count.header_frames != count.mpeg_frames:
        log.warning(
            "%s: the MP3 header claims %d frames but the stream has %d; using the stream",
            path, count.header_frames, count.mpeg_frames,
        )
    return count.frames
