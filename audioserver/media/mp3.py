"""Counting an MP3's frames by walking its frame headers.

libsndfile takes an MP3's length from its Xing/VBRI header, and without one
guesses it from the first frame's bitrate: a VBR file with no header can come
out at a fifth of its real duration. Walking every frame header gives the
true count; the LAME tag, when there is one, says how many samples of
encoder delay and padding to take off so the count matches what decodes.

The file is read a chunk at a time, so memory does not grow with its size.
Not mmap: the probe worker runs under an address-space limit (RLIMIT_AS) that
mapping a multi-gigabyte file whole would run into.
"""

import functools
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

# Bitrates in kbit/s by (MPEG-1?, layer) and the header's 4-bit index;
# index 0 (free format: the length is not in the header) and 15 are not usable.
BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# The header's 2 version bits -> MPEG version; 0b01 is reserved.
VERSIONS = {0b00: "2.5", 0b10: "2", 0b11: "1"}
SAMPLE_RATES = {"1": (44100, 48000, 32000), "2": (22050, 24000, 16000),
                "2.5": (11025, 12000, 8000)}
# The header's 2 layer bits -> layer; 0b00 is reserved.
LAYERS = {0b01: 3, 0b10: 2, 0b11: 1}
RESERVED_EMPHASIS = 0b10
# Where a Xing/Info tag starts in the first frame, by (MPEG-1?, mono?):
# after the 4-byte header and the side information.
XING_OFFSETS = {(True, False): 36, (True, True): 21, (False, False): 21, (False, True): 13}
XING_FRAMES, XING_BYTES, XING_TOC, XING_QUALITY = 0x1, 0x2, 0x4, 0x8
VBRI_OFFSET = 36
VBRI_FRAMES_OFFSET = 14  # after "VBRI", version, delay, quality and byte count
# The LAME extension: the encoder delay and padding, 12 bits each, lie 21
# bytes after the start of its 9-byte encoder string ("LAME3.100", "Lavf58.76").
LAME_ENCODER_SIZE = 9
LAME_DELAY_OFFSET = 21
ID3V2_HEADER_SIZE = 10
ID3V1_SIZE = 128
APE_FOOTER_SIZE = 32
# Far more than a frame (at most 1,729 bytes) or a tag frame needs to see at once.
CHUNK_SIZE = 1024 * 1024
# Past this many bytes with no frame, or once junk outweighs the frames, the
# walk stops where the audio stopped: a decoder gives up on such a file too,
# and a crafted one thick with false sync words costs a check per few bytes.
MAX_JUNK_RUN = 1024 * 1024


def _header_pattern() -> re.Pattern:
    """4 bytes that could be a usable frame header (see _parse), so junk is
    skipped by the regex engine in C rather than a byte at a time in Python."""
    def any_of(test) -> bytes:
        return b"[" + b"".join(re.escape(bytes([b])) for b in range(256) if test(b)) + b"]"
    return re.compile(
        b"\xff"
        + any_of(lambda b: b >> 5 == 0b111 and (b >> 3) & 0b11 != 0b01 and (b >> 1) & 0b11)
        + any_of(lambda b: b >> 4 not in (0, 15) and (b >> 2) & 0b11 != 3)
        + any_of(lambda b: b & 0b11 != RESERVED_EMPHASIS)
    )


HEADER_PATTERN = _header_pattern()


@dataclass(frozen=True)
class Mp3Count:
    frames: int  # sample frames per channel, encoder delay and padding removed
    samplerate: int
    channels: int
    mpeg_frames: int  # audio frames walked; a Xing/Info/VBRI frame is not audio
    header_frames: int | None  # what a Xing/Info/VBRI header claims, if any
    layer: int


@dataclass(frozen=True)
class _Header:
    version: str
    layer: int
    samplerate: int
    channels: int
    length: int  # bytes, header included

    @property
    def stream(self) -> tuple[str, int, int]:
        """What stays the same from frame to frame; bitrate and mode may not."""
        return self.version, self.layer, self.samplerate

    @property
    def samples(self) -> int:
        if self.layer == 1:
            return 384
        if self.layer == 3 and self.version != "1":
            return 576
        return 1152


@dataclass(frozen=True)
class _Tag:
    frames: int | None
    delay: int = 0
    padding: int = 0


class _Reader:
    """The bytes of [0, end) of a file, kept one chunk at a time: the walk only
    looks a frame or two ahead of where it is."""

    def __init__(self, file: BinaryIO, end: int):
        self.end = end
        self._file = file
        self._base = 0
        self._chunk = b""

    def read(self, pos: int, size: int) -> bytes:
        """Up to `size` bytes at `pos`, fewer where the audio ends."""
        stop = min(pos + size, self.end)
        if pos < self._base or stop > self._base + len(self._chunk):
            self._load(pos, stop - pos)
        return self._chunk[pos - self._base:stop - self._base]

    def word(self, pos: int) -> int:
        """The 4 bytes at `pos` as a big-endian number (`pos` + 4 <= end)."""
        return int.from_bytes(self.read(pos, 4), "big")

    def find_sync(self, pos: int, limit: int) -> int:
        """Where the next possible frame header in [pos, limit) starts, or -1."""
        limit = min(limit, self.end)
        while pos + 4 <= limit:
            if not self._base <= pos or pos + 4 > self._base + len(self._chunk):
                self._load(pos, 4)
            stop = min(len(self._chunk), limit - self._base)
            found = HEADER_PATTERN.search(self._chunk, pos - self._base, stop)
            if found:
                return self._base + found.start()
            pos = self._base + stop - 3  # a header may straddle the chunk's end
        return -1

    def _load(self, pos: int, size: int) -> None:
        self._file.seek(pos)
        self._chunk = self._file.read(max(size, CHUNK_SIZE))
        self._base = pos


def count_mp3_frames(path: str | os.PathLike) -> Mp3Count | None:
    """The frame count of the MP3 at `path`, or None if no frames are found."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        start = _audio_start(file, size)
        end = _audio_end(file, size)
        return _walk(_Reader(file, end), start)


def audio_start(path: str | os.PathLike) -> int:
    """Where the first MPEG frame may start: after an ID3v2 tag, if any."""
    with open(path, "rb") as file:
        return _audio_start(file, os.fstat(file.fileno()).st_size)


def _walk(reader: _Reader, pos: int) -> Mp3Count | None:
    first: _Header | None = None
    tag: _Tag | None = None
    in_sync = False  # the previous frame ended here, so a header here is no chance find
    count = 0
    lost_at = pos  # where the stretch of junk being skipped began
    junk = 0  # bytes skipped before it
    audio = 0  # bytes of frames walked
    end = reader.end
    while pos + 4 <= end:
        header = _parse(reader.word(pos))
        if header is not None and first is not None and header.stream != first.stream:
            header = None
        if header is not None and not in_sync and not _confirmed(reader, pos, header):
            header = None
        if header is None or pos + header.length > end:
            # Garbage, or a frame cut short: look for the next sync word.
            if in_sync:
                lost_at = pos
            in_sync = False
            pos = reader.find_sync(pos + 1, lost_at + MAX_JUNK_RUN + 1)
            if pos < 0 or junk + pos - lost_at > max(MAX_JUNK_RUN, audio):
                break
            continue
        if not in_sync:
            junk += pos - lost_at
        audio += header.length
        if first is None:
            first = header
            tag = _read_tag(reader.read(pos, header.length), header)
            if tag is not None:  # the tag frame carries no audio
                pos += header.length
                in_sync = True
                continue
        count += 1
        pos += header.length
        in_sync = True
    if first is None or count == 0:
        return None
    tag = tag or _Tag(frames=None)
    samples = max(0, count * first.samples - tag.delay - tag.padding)
    return Mp3Count(samples, first.samplerate, first.channels, count, tag.frames, first.layer)


# A stream repeats a few dozen distinct header words, so parsing is mostly a lookup.
@functools.lru_cache(maxsize=1024)
def _parse(word: int) -> _Header | None:
    """The frame header in the 32-bit `word`, or None if it is not a usable one."""
    if word >> 21 != 0x7FF:  # 11 sync bits
        return None
    version = VERSIONS.get((word >> 19) & 0b11)
    layer = LAYERS.get((word >> 17) & 0b11)
    bitrate_index = (word >> 12) & 0b1111
    rate_index = (word >> 10) & 0b11
    if (version is None or layer is None or bitrate_index in (0, 15) or rate_index == 3
            or word & 0b11 == RESERVED_EMPHASIS):
        return None
    mpeg1 = version == "1"
    bitrate = BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    samplerate = SAMPLE_RATES[version][rate_index]
    padding = (word >> 9) & 1
    if layer == 1:
        length = (12 * bitrate // samplerate + padding) * 4
    elif layer == 3 and not mpeg1:  # half the samples of an MPEG-1 frame
        length = 72 * bitrate // samplerate + padding
    else:
        length = 144 * bitrate // samplerate + padding
    channels = 1 if (word >> 6) & 0b11 == 0b11 else 2  # channel mode 3 is mono
    return _Header(version, layer, samplerate, channels, length)


def _confirmed(reader: _Reader, pos: int, header: _Header) -> bool:
    """A sync word can occur by chance in audio or tags; a real frame is
    followed by another of the same stream, or by the end of the audio."""
    following = pos + header.length
    if following == reader.end:
        return True
    if following + 4 > reader.end:
        return False
    after = _parse(reader.word(following))
    return after is not None and after.stream == header.stream


def _read_tag(frame: bytes, header: _Header) -> _Tag | None:
    """The Xing/Info or VBRI tag in the first frame, if it has one."""
    if header.layer != 3:  # the tags are Layer III side information's stand-ins
        return None
    at = XING_OFFSETS[(header.version == "1", header.channels == 1)]
    if frame[at:at + 4] in (b"Xing", b"Info"):
        flags = int.from_bytes(frame[at + 4:at + 8], "big")
        cursor = at + 8
        frames = None
        if flags & XING_FRAMES:
            frames = int.from_bytes(frame[cursor:cursor + 4], "big")
            cursor += 4
        cursor += (4 * bool(flags & XING_BYTES) + 100 * bool(flags & XING_TOC)
                   + 4 * bool(flags & XING_QUALITY))
        delay, padding = _lame_delay(frame, cursor)
        return _Tag(frames, delay, padding)
    at = VBRI_OFFSET
    if frame[at:at + 4] == b"VBRI":
        field = at + VBRI_FRAMES_OFFSET
        return _Tag(int.from_bytes(frame[field:field + 4], "big"))
    return None


def _lame_delay(frame: bytes, at: int) -> tuple[int, int]:
    """Encoder delay and padding from a LAME extension at `at`, else (0, 0).

    The extension starts with the encoder's name and version; a plain Xing
    tag has zeros there instead, and then nothing is taken off."""
    encoder = frame[at:at + LAME_ENCODER_SIZE]
    field = frame[at + LAME_DELAY_OFFSET:at + LAME_DELAY_OFFSET + 3]
    if len(field) < 3 or not (encoder[:4].isascii() and encoder[:4].isalpha()):
        return 0, 0
    b0, b1, b2 = field
    return (b0 << 4) | (b1 >> 4), ((b1 & 0x0F) << 8) | b2


def _audio_start(file: BinaryIO, size: int) -> int:
    """Skip an ID3v2 tag: 10-byte header, syncsafe size, optional footer."""
    file.seek(0)
    header = file.read(ID3V2_HEADER_SIZE)
    if len(header) < ID3V2_HEADER_SIZE or header[:3] != b"ID3":
        return 0
    tag_size = 0
    for byte in header[6:10]:  # 7 bits a byte, so no byte looks like a sync
        tag_size = (tag_size << 7) | (byte & 0x7F)
    footer = ID3V2_HEADER_SIZE if header[5] & 0x10 else 0
    return min(size, ID3V2_HEADER_SIZE + tag_size + footer)


def _audio_end(file: BinaryIO, size: int) -> int:
    """Stop before an ID3v1 tag and an APEv2 tag at the end of the file
    (the APEv2 tag, when both are there, comes first)."""
    end = size
    if end >= ID3V1_SIZE:
        file.seek(end - ID3V1_SIZE)
        if file.read(3) == b"TAG":
            end -= ID3V1_SIZE
    if end >= APE_FOOTER_SIZE:
        file.seek(end - APE_FOOTER_SIZE)
        footer = file.read(APE_FOOTER_SIZE)
        if footer[:8] == b"APETAGEX":
            tag_size = int.from_bytes(footer[12:16], "little")  # footer included
            has_header = footer[23] & 0x80  # flags bit 31; the header is not in tag_size
            end = max(0, end - tag_size - (APE_FOOTER_SIZE if has_header else 0))
    return end
