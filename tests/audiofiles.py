"""Test audio made on the spot: no binary fixtures in the repository."""

import io

import numpy as np
import soundfile

RATE = 44100


def tone(seconds: float, samplerate: int = RATE, channels: int = 1) -> np.ndarray:
    """A quiet 440 Hz sine, one column per channel."""
    t = np.arange(int(round(seconds * samplerate))) / samplerate
    wave = 0.25 * np.sin(2 * np.pi * 440 * t)
    return np.repeat(wave[:, None], channels, axis=1)


def encode(seconds: float = 1.0, format: str = "WAV", subtype: str | None = None,
           samplerate: int = RATE, channels: int = 1) -> bytes:
    """The bytes of an audio file written by libsndfile."""
    buffer = io.BytesIO()
    soundfile.write(buffer, tone(seconds, samplerate, channels), samplerate,
                    format=format, subtype=subtype)
    return buffer.getvalue()


def flac_claiming(seconds: float, total_samples: int, **kwargs) -> bytes:
    """A real FLAC whose STREAMINFO claims `total_samples` (0: "unknown").

    STREAMINFO is the first metadata block, right after "fLaC" and its
    4-byte block header; the count is the low 36 bits of its bytes 10 to 18.
    Nothing else is recomputed: the MD5 may stay, libFLAC does not check it."""
    data = bytearray(encode(seconds, "FLAC", **kwargs))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    field = slice(8 + 10, 8 + 18)
    packed = int.from_bytes(data[field], "big")
    packed = (packed & ~((1 << 36) - 1)) | total_samples
    data[field] = packed.to_bytes(8, "big")
    return bytes(data)


def wav(seconds: float = 1.0, **kwargs) -> bytes:
    return encode(seconds, "WAV", **kwargs)


def lame_mp3(seconds: float, vbr: bool = True, samplerate: int = RATE,
             channels: int = 1) -> bytes:
    """An MP3 with no Xing header, as LAME's library writes it (libsndfile
    cannot make one): its duration is only known by counting frames."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_channels(channels)
    encoder.set_in_sample_rate(samplerate)
    if vbr:
        encoder.set_vbr(4)
        encoder.set_vbr_quality(2)
    else:
        encoder.set_bit_rate(128)
    # Interleaved 16-bit samples: numpy's rows are frames, as LAME wants them.
    pcm = (tone(seconds, samplerate, channels) * 32767).astype("<i2")
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())
