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


def png(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG (zlib and CRCs by hand), `padding` bytes larger through a
    private ancillary chunk, so a test can make cover art of any size."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xc0\x40\x20" * width for _ in range(height))
    extra = chunk(b"teXt", bytes(padding)) if padding else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def with_id3(data: bytes, cover: bytes | None = None, **tags: str) -> bytes:
    """`data` (an MP3) behind an ID3v2 tag written by mutagen: TIT2 title,
    TPE1 artist, TALB album... and APIC cover art (PNG) when given."""
    from mutagen import id3

    frames = {"title": id3.TIT2, "artist": id3.TPE1, "album": id3.TALB, "track": id3.TRCK,
              "date": id3.TDRC, "genre": id3.TCON}
    tag = id3.ID3()
    for field, text in tags.items():
        if field == "comment":
            tag.add(id3.COMM(encoding=3, lang="eng", desc="", text=text))
        else:
            tag.add(frames[field](encoding=3, text=text))
    if cover is not None:
        tag.add(id3.APIC(encoding=3, mime="image/png", type=3, desc="cover", data=cover))
    buffer = io.BytesIO(data)
    tag.save(buffer)
    return buffer.getvalue()
