"""Making a file's preview: what every browser plays. Runs inside the parser
worker (probe.py), as decoding untrusted bytes must.

The preview is MP3, LAME through libsndfile: every current browser plays it
(Safari and older iPhones included), at about a tenth of the size of 16-bit
PCM, and libsndfile writes a Xing header, so players show the true length.
Ogg Opus would be smaller still, but Safari plays it only in its latest
releases; FLAC only halves the size. MPEG knows nine sample rates; a file at
any other (88.2 or 96 kHz, say) gets a 16-bit FLAC preview instead, which
every current browser plays too. More than two channels are mixed to one,
as the waveform is: a preview is for listening in a browser.
"""

import os

import numpy as np
import soundfile

from .sndfile import PEAKS_BLOCK_FRAMES, failed, mp3_length_is_known, open_for_decoding

MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
# (libsndfile format, subtype, media type) of a preview, by its codec name.
CODECS = {
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
}
# Browsers play at most stereo everywhere.
MAX_CHANNELS = 2


def codec_for(samplerate: int) -> str:
    """The preview's codec for audio at `samplerate` (see the module's docstring)."""
    return "mp3" if samplerate in MP3_RATES else "flac"


def make_preview(path: str | os.PathLike, target: str | os.PathLike, format: str,
                 frames: int) -> dict:
    """Write the preview of `path` (`frames` long, as counted) to `target`;
    {"native": True} instead, writing nothing, for an MP3 whose header tells
    players its true length (the original plays as it is)."""
    try:
        if format == "MP3" and mp3_length_is_known(path, frames):
            return {"native": True}
        with open_for_decoding(path, format, frames) as audio:
            _encode(audio, target)
    except (RuntimeError, OSError) as exc:
        raise failed(exc, path) from None
    return {"native": False}


def _encode(audio: soundfile.SoundFile, target: str | os.PathLike) -> None:
    format, subtype, _ = CODECS[codec_for(audio.samplerate)]
    mix = audio.channels > MAX_CHANNELS
    channels = 1 if mix else audio.channels
    with soundfile.SoundFile(target, "w", audio.samplerate, channels, format=format,
                             subtype=subtype) as out:
        while len(block := audio.read(PEAKS_BLOCK_FRAMES, dtype="float32", always_2d=True)):
            # Float files may hold NaN and overs, which encoders must not see.
            block = np.clip(np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
            out.write(block.mean(axis=1, keepdims=True) if mix else block)
