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

from .models import AudioInfo

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


def peaks(path: str | os.PathLike, points: int, frames: int, format: str) -> dict:
    """Min and max of the mono mix over each of `points` equal stretches of
    the file, in the JSON layout of BBC audiowaveform (version 2, 16 bits).

    The file is decoded block by block, so memory stays flat for any length;
    a long one is sampled (see FULL_DECODE_FRAMES). `frames` is the counted
    length, which for an MP3 libsndfile may not know.
    """
    points = max(1, min(points, frames))
    try:
        with _open_for_decoding(path, format) as audio:
            samplerate = audio.samplerate
            # An MP3 comes through a pipe, which cannot seek: it is decoded whole.
            if frames > FULL_DECODE_FRAMES and audio.seekable():
                lows, highs = _sampled_extremes(audio, points, frames)
            else:
                lows, highs = _decoded_extremes(audio, points, frames)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ProbeFailed(f"libsndfile says: {exc}") from None
    pairs = np.column_stack([lows, highs]).ravel()
    data = np.clip(np.round(pairs * INT16_MAX), -INT16_MAX - 1, INT16_MAX).astype(int)
    return {
        "version": 2, "channels": 1, "sample_rate": samplerate,
        "samples_per_pixel": max(1, round(frames / points)), "bits": 16, "length": points,
        "data": data.tolist(),
    }


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
def _open_for_decoding(path: str | os.PathLike, format: str):
    """Open `path` for reading to its real end.

    libsndfile stops reading an MP3 at the length it guessed, which for VBR
    without a header is far too short; from a pipe it cannot guess and reads
    to the end, so MP3s are fed through one.
    """
    if format != "MP3":
        with soundfile.SoundFile(path) as audio:
            yield audio
        return
    read_end, write_end = os.pipe()
    feeder = threading.Thread(target=_feed, args=(path, write_end), daemon=True)
    feeder.start()
    try:
        with soundfile.SoundFile(read_end, closefd=True) as audio:
            yield audio
    finally:
        feeder.join()


def _feed(path: str | os.PathLike, write_end: int) -> None:
    with open(path, "rb") as source, os.fdopen(write_end, "wb") as pipe:
        try:
            shutil.copyfileobj(source, pipe, PEAKS_BLOCK_FRAMES)
        except BrokenPipeError:
            pass  # the decoder gave up early; its error says why
