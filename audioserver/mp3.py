"""Counting an MP3's frames by walking its frame headers.

libsndfile takes an MP3's length from its Xing/VBRI header, and without one
guesses it from the first frame's bitrate: a VBR file with no header can come
out at a fifth of its real duration. Walking every frame header gives the
true count; the LAME tag, when there is one, says how many samples of
encoder delay and padding to take off so the count matches what decodes.

The file is read through mmap, so memory does not grow with its size.
"""

import mmap
import os
from dataclasses import dataclass

# Bitrates in kbit/s by (MPEG-1?, layer) and the header's 4-bit index;
# index 0 (free format) and 15 are not usable.
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
# Where a Xing/Info tag starts in the first frame, by (MPEG-1?, mono?):
# after the 4-byte header and the side information.
XING_OFFSETS = {(True, False): 36, (True, True): 21, (False, False): 21, (False, True): 13}
VBRI_OFFSET = 36
# The LAME extension: the encoder delay and padding, 12 bits each, lie 21
# bytes after the start of its 9-byte encoder string.
LAME_DELAY_OFFSET = 21
ID3V1_SIZE = 128
APE_FOOTER_SIZE = 32


@dataclass(frozen=True)
class Mp3Count:
    frames: int  # sample frames per channel, delay and padding removed
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
    length: int

    @property
    def samples(self) -> int:
        if self.layer == 1:
            return 384
        if self.layer == 3 and self.version != "1":
            return 576
        return 1152

    def same_stream(self, other: "_Header") -> bool:
        return (self.version, self.layer, self.samplerate) == (
            other.version, other.layer, other.samplerate)


@dataclass(frozen=True)
class _Tag:
    frames: int | None
    delay: int = 0
    padding: int = 0


def count_mp3_frames(path: str | os.PathLike) -> Mp3Count | None:
    """The frame count of the MP3 at `path`, or None if no frames are found."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < 4:
            return None
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _walk(data, _audio_start(data), _audio_end(data, size))


def _walk(data: mmap.mmap, pos: int, end: int) -> Mp3Count | None:
    first: _Header | None = None
    tag: _Tag | None = None
    in_sync = False
    count = 0
    while pos + 4 <= end:
        header = _parse(data, pos)
        acceptable = header is not None and (first is None or header.same_stream(first))
        if acceptable and not in_sync:
            acceptable = _confirmed(data, pos, header, end)
        if not acceptable or pos + header.length > end:
            # Garbage, or a frame cut short: look for the next sync word.
            in_sync = False
            pos = data.find(b"\xff", pos + 1, end)
            if pos < 0:
                break
            continue
        if first is None:
            first = header
            tag = _read_tag(data, pos, header)
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


def _parse(data: mmap.mmap, pos: int) -> _Header | None:
    word = int.from_bytes(data[pos:pos + 4], "big")
    if word >> 21 != 0x7FF:
        return None
    version = VERSIONS.get((word >> 19) & 0b11)
    layer = LAYERS.get((word >> 17) & 0b11)
    bitrate_index = (word >> 12) & 0b1111
    rate_index = (word >> 10) & 0b11
    if version is None or layer is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == "1"
    bitrate = BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    samplerate = SAMPLE_RATES[version][rate_index]
    padding = (word >> 9) & 1
    if layer == 1:
        length = (12 * bitrate // samplerate + padding) * 4
    elif layer == 3 and not mpeg1:
        length = 72 * bitrate // samplerate + padding
    else:
        length = 144 * bitrate // samplerate + padding
    channels = 1 if (word >> 6) & 0b11 == 0b11 else 2
    return _Header(version, layer, samplerate, channels, length)


def _confirmed(data: mmap.mmap, pos: int, header: _Header, end: int) -> bool:
    """A sync word can occur by chance in audio or tags; a real frame is
    followed by another of the same stream, or by the end of the audio."""
    following = pos + header.length
    if following == end:
        return True
    if following + 4 > end:
        return False
    after = _parse(data, following)
    return after is not None and after.same_stream(header)


def _read_tag(data: mmap.mmap, pos: int, header: _Header) -> _Tag | None:
    """The Xing/Info or VBRI tag in the first frame, if it has one."""
    at = pos + XING_OFFSETS[(header.version == "1", header.channels == 1)]
    if data[at:at + 4] in (b"Xing", b"Info"):
        flags = int.from_bytes(data[at + 4:at + 8], "big")
        cursor = at + 8
        frames = None
        if flags & 0x1:
            frames = int.from_bytes(data[cursor:cursor + 4], "big")
            cursor += 4
        cursor += 4 * bool(flags & 0x2) + 100 * bool(flags & 0x4) + 4 * bool(flags & 0x8)
        delay, padding = _lame_delay(data, cursor, pos + header.length)
        return _Tag(frames, delay, padding)
    at = pos + VBRI_OFFSET
    if data[at:at + 4] == b"VBRI":
        return _Tag(int.from_bytes(data[at + 14:at + 18], "big"))
    return None


def _lame_delay(data: mmap.mmap, at: int, frame_end: int) -> tuple[int, int]:
    """Encoder delay and padding from a LAME extension at `at`, else (0, 0)."""
    field = at + LAME_DELAY_OFFSET
    encoder = data[at:at + 9]
    if field + 3 > frame_end or not encoder[:4].isalpha():
        return 0, 0
    b0, b1, b2 = data[field:field + 3]
    return (b0 << 4) | (b1 >> 4), ((b1 & 0x0F) << 8) | b2


def _audio_start(data: mmap.mmap) -> int:
    """Skip an ID3v2 tag: 10-byte header, syncsafe size, optional footer."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return min(len(data), 10 + size + footer)


def _audio_end(data: mmap.mmap, size: int) -> int:
    """Stop before an ID3v1 tag and an APEv2 tag at the end of the file."""
    end = size
    if end >= ID3V1_SIZE and data[end - ID3V1_SIZE:end - ID3V1_SIZE + 3] == b"TAG":
        end -= ID3V1_SIZE
    footer = end - APE_FOOTER_SIZE
    if footer >= 0 and data[footer:footer + 8] == b"APETAGEX":
        tag_size = int.from_bytes(data[footer + 12:footer + 16], "little")
        has_header = data[footer + 23] & 0x80
        end = max(0, end - tag_size - (APE_FOOTER_SIZE if has_header else 0))
    return end
