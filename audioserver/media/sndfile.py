"""Reading audio metadata with libsndfile. Runs inside the probe worker.

Untrusted bytes are parsed here, in a separate process (see probe.py), so a
parser crash or hang costs one upload, never the server.
"""

import logging
import os
import shutil
import threading
from contextlib import contextmanager

import numpy as np
import soundfile

from ..models import AudioInfo

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "WAV": "audio/wav", "WAVEX": "audio/wav", "RF64": "audio/wav",
    "W64": "audio/x-w64", "FLAC": "audio/flac", "OGG": "audio/ogg",
    "MP3": "audio/mpeg", "AIFF": "audio/aiff", "CAF": "audio/x-caf",
    "AU": "audio/basic",
}
FALLBACK_CONTENT_TYPE = "application/octet-stream"
# Decode this many frames at a time for peaks, whatever the file's length.
PEAKS_BLOCK_FRAMES = 1 << 16
# Files up to this length are decoded whole for their peaks (25 minutes at
# 44.1 kHz, a few seconds' work). Past it, evenly spaced blocks of about
# SAMPLED_FRAMES in all are read, so the time stays bounded for any length:
# a crafted FLAC of a few MB can claim thousands of hours.
FULL_DECODE_FRAMES = 1 << 26
SAMPLED_FRAMES = 1 << 22
INT16_MAX = 32767
# The most sample frames one byte can hold, from each format's most compact
# encoding. A header that claims more is a lie (or "unknown", which libsndfile
# reports as the largest count there is), and the frames are counted by decoding.
MOST_FRAMES_PER_BYTE = {
    # A block of 65,535 samples of one constant channel is a 12-byte frame.
    "FLAC": 65535 // 12,
    # Generous: an Opus packet holds at most 120 ms (5,760 samples at 48 kHz),
    # a Vorbis one at most 4,096 new samples, and each takes a byte or more.
    "OGG": 5760,
    # MPEG-2 Layer III at 8 kbit/s and 24 kHz: 576 samples in a 24-byte frame.
    "MP3": 24,
}
# A header's length within 1/100 of the counted one is the file's length.
MP3_LENGTH_TOLERANCE = 100
# One bit a frame: fewer than any PCM or ADPCM subtype libsndfile writes.
DEFAULT_MOST_FRAMES_PER_BYTE = 8
# What libsndfile's error codes mean, in words for the person who sent the
# file: its own messages ("Internal psf_fseek() failed.") describe its
# internals and go to the log. Some even mislead: "System error." and "File
# does not exist or is not a regular file" come for a file that is there and
# regular, whose audio is what is wrong.
SFE_UNRECOGNISED = 1
SFE_SYSTEM = 2
SFE_MALFORMED = 3
SFE_UNSUPPORTED_ENCODING = 4
SFE_BAD_FILE = 7
SFE_BAD_FILE_READ = 8
LIBSNDFILE_REASONS = {
    SFE_UNRECOGNISED: "it is not in any audio format this server reads, or its start is damaged",
    SFE_SYSTEM: "the file could not be opened",
    SFE_MALFORMED: "it is damaged: its header or its audio does not follow its format",
    SFE_UNSUPPORTED_ENCODING: "its audio is in an encoding this server cannot decode",
    SFE_BAD_FILE: "it starts like audio, but what follows is not readable audio",
    SFE_BAD_FILE_READ: "it ends before the audio its header announces: it may be cut short",
}
UNREADABLE = "its audio could not be read to the end: the file may be damaged or cut short"


class ProbeFailed(Exception):
    """libsndfile cannot read the file as audio; the message says why."""


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read the audio metadata of the file at `path`, decided by content."""
    try:
        info = soundfile.info(path)
    except (RuntimeError, OSError) as exc:
        raise failed(exc, path) from None
    if info.channels <= 0 or info.samplerate <= 0:
        raise ProbeFailed("it has no channels or no sample rate")
    return AudioInfo(
        frames=_true_frames(path, info),
        samplerate=info.samplerate,
        channels=info.channels,
        format=info.format,
        subtype=info.subtype,
        content_type=CONTENT_TYPES.get(info.format, FALLBACK_CONTENT_TYPE),
    )


def _true_frames(path: str | os.PathLike, info) -> int:
    """The length in frames of `info` (soundfile.info's answer), which
    libsndfile takes from the header on trust."""
    frames = info.frames
    if info.format == "MP3":
        frames = _mp3_frames(path, frames)
    elif info.format == "FLAC":
        frames = _flac_frames(path, frames)
    most = MOST_FRAMES_PER_BYTE.get(info.format, DEFAULT_MOST_FRAMES_PER_BYTE)
    if frames > os.path.getsize(path) * most:
        log.warning("%s: the header claims %d frames, more than its bytes hold; decoding",
                    path, frames)
        frames = _decoded_frames(path, info.format)
    return frames


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


def _flac_frames(path, libsndfile_frames: int) -> int:
    """libsndfile believes STREAMINFO's count, which may be 0 or a lie: the
    last frame's position says how long the stream is."""
    from .flac import count_flac_frames

    count = count_flac_frames(path)
    if count is None:
        return libsndfile_frames
    if count != libsndfile_frames:
        log.warning("%s: the FLAC header claims %d frames but the last frame ends at %d; "
                    "using the frames", path, libsndfile_frames, count)
    return count


def _decoded_frames(path: str | os.PathLike, format: str) -> int:
    """The frames that decode, counted: for a header that cannot be believed.
    As long as the file, so the probe's time limit bounds it."""
    frames = 0
    try:
        with open_for_decoding(path, format) as audio:
            while count := len(audio.read(PEAKS_BLOCK_FRAMES, dtype="int16")):
                frames += count
    except (RuntimeError, OSError) as exc:
        raise failed(exc, path) from None
    return frames


def peaks(path: str | os.PathLike, points: int, frames: int, format: str) -> dict:
    """Min and max of the mono mix over each of `points` equal stretches of
    the file, in the JSON layout of BBC audiowaveform (version 2, 16 bits).

    The file is decoded block by block, so memory stays flat for any length;
    a long one is sampled (see FULL_DECODE_FRAMES). `frames` is the counted
    length, which for an MP3 libsndfile may not know.
    """
    points = max(1, min(points, frames))
    try:
        # An MP3 may come through a pipe, which cannot seek: it is decoded whole.
        if frames > FULL_DECODE_FRAMES and format != "MP3":
            # `frames` was counted, never taken from a header on trust (see
            # probe), so every seek lands inside the audio.
            with _decoder(path, format) as audio:
                samplerate = audio.samplerate
                lows, highs = _sampled_extremes(audio, points, frames)
        else:
            with open_for_decoding(path, format, frames) as audio:
                samplerate = audio.samplerate
                lows, highs = _decoded_extremes(audio, points, frames)
    except (RuntimeError, OSError) as exc:
        raise failed(exc, path) from None
    pairs = np.column_stack([lows, highs]).ravel()
    data = np.clip(np.round(pairs * INT16_MAX), -INT16_MAX - 1, INT16_MAX).astype(int)
    return {
        "version": 2, "channels": 1, "sample_rate": samplerate,
        "samples_per_pixel": max(1, round(frames / points)), "bits": 16, "length": points,
        "data": data.tolist(),
    }


def failed(exc: Exception, path: str | os.PathLike) -> ProbeFailed:
    """The ProbeFailed for libsndfile's or the system's refusal of `path`.

    Their own messages name the path they were given, which is the server's
    business: it goes to the log, and the client gets words without it."""
    log.warning("reading %s failed: %s", path, exc)
    if isinstance(exc, soundfile.LibsndfileError):
        reason = LIBSNDFILE_REASONS.get(exc.code, UNREADABLE)
    elif isinstance(exc, OSError):
        reason = LIBSNDFILE_REASONS[SFE_SYSTEM]
    else:
        reason = UNREADABLE
    return ProbeFailed(reason)


def _decoded_extremes(audio: soundfile.SoundFile, points: int,
                      frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each stretch, from every frame of the file."""
    lows = np.full(points, np.inf, dtype=np.float32)
    highs = np.full(points, -np.inf, dtype=np.float32)
    position = 0
    while len(block := audio.read(PEAKS_BLOCK_FRAMES, dtype="float32", always_2d=True)):
        mono = _finite_mono(block)
        # The stretch each frame falls in; frames past the count go to the last.
        index = np.minimum((np.arange(position, position + len(mono)) * points) // frames,
                           points - 1)
        starts = np.flatnonzero(np.diff(index, prepend=-1))
        stretch = index[starts]
        lows[stretch] = np.minimum(lows[stretch], np.minimum.reduceat(mono, starts))
        highs[stretch] = np.maximum(highs[stretch], np.maximum.reduceat(mono, starts))
        position += len(mono)
    # Stretches the decoder never reached (a short stream) are silence. The
    # samples themselves are finite, so infinity can only mean that.
    lows[np.isinf(lows)] = 0
    highs[np.isinf(highs)] = 0
    return lows, highs


def _sampled_extremes(audio: soundfile.SoundFile, points: int,
                      frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of one block read at the start of each stretch: a seek and
    SAMPLED_FRAMES / points frames each, however long the file."""
    lows = np.zeros(points, dtype=np.float32)
    highs = np.zeros(points, dtype=np.float32)
    length = max(1, SAMPLED_FRAMES // points)
    for point in range(points):
        try:
            audio.seek(point * frames // points)
        except (soundfile.LibsndfileError, RuntimeError):
            break  # shorter than counted: the rest is silence, as when decoding whole
        block = audio.read(length, dtype="float32", always_2d=True)
        if len(block):
            mono = _finite_mono(block)
            lows[point], highs[point] = mono.min(), mono.max()
    return lows, highs


def _finite_mono(block: np.ndarray) -> np.ndarray:
    """The mono mix of a block, within full scale. Float files may hold NaN
    (drawn as silence) and ±Inf or overs (drawn at full scale)."""
    finite = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(finite.mean(axis=1), -1.0, 1.0)


@contextmanager
def open_for_decoding(path: str | os.PathLike, format: str, frames: int | None = None):
    """Open `path` for reading to its real end, forward only.

    soundfile seeks to where each read ended, and libsndfile cannot seek past
    the end a header claimed (a lying FLAC's, an MP3's Xing count) when the
    audio ends before it: the last read then fails, so nothing is sought.
    """
    with _decoder(path, format, frames) as audio:
        audio.seekable = lambda: False
        yield audio


@contextmanager
def _decoder(path: str | os.PathLike, format: str, frames: int | None = None):
    """A SoundFile reading `path`, which holds `frames` frames (None: unknown).

    An MP3 is opened as SoundFile opens it, by its path, when libsndfile
    knows its length: from a Xing/Info/VBRI header (what LAME writes) or a
    constant bitrate. libsndfile stops reading at the length it believes,
    which for a VBR MP3 without a header is a guess far too short; from a
    pipe it cannot guess and reads to the end, so only those come through
    one. A pipe cannot seek, and libsndfile skips an ID3v2 tag by seeking
    when it is larger than its header buffer (cover art makes it so), so the
    pipe starts at the first frame, after the tag.
    """
    if format == "MP3" and (frames is None or not _knows_mp3_length(path, frames)):
        with _piped_mp3(path) as audio:
            yield audio
        return
    with soundfile.SoundFile(path) as audio:
        yield audio


def _knows_mp3_length(path: str | os.PathLike, frames: int) -> bool:
    """Whether libsndfile, reading `path` itself, reads all `frames` frames."""
    return soundfile.info(path).frames >= frames


def mp3_length_is_known(path: str | os.PathLike, frames: int) -> bool:
    """Whether a reader that trusts the MP3's header, as libsndfile and the
    browsers do, finds its length within 1% of the `frames` counted: a
    Xing/Info/VBRI header or a constant bitrate. A VBR MP3 without a header
    is guessed from its first frame, which can be far off."""
    return abs(soundfile.info(path).frames - frames) <= frames // MP3_LENGTH_TOLERANCE


@contextmanager
def _piped_mp3(path: str | os.PathLike):
    from .mp3 import audio_start

    # Opened here, so a file that cannot be opened is an error of this call,
    # not of the feeder thread, whose end of the pipe would then never close.
    source = open(path, "rb")
    try:
        source.seek(audio_start(path))
    except BaseException:
        source.close()
        raise
    read_end, write_end = os.pipe()
    feeder = threading.Thread(target=_feed, args=(source, write_end), daemon=True)
    feeder.start()
    try:
        with soundfile.SoundFile(read_end, closefd=True) as audio:
            yield audio
    finally:
        feeder.join()


def _feed(source, write_end: int) -> None:
    with source, os.fdopen(write_end, "wb") as pipe:
        try:
            shutil.copyfileobj(source, pipe, PEAKS_BLOCK_FRAMES)
        except BrokenPipeError:
            pass  # the decoder gave up early; its error says why
