"""A FLAC's true length, from its last frame.

STREAMINFO's sample count may be 0 ("unknown", legal for a stream encoded
on the fly) or simply wrong, and libsndfile believes it. Every frame header
carries its position in the stream, so the last frame's position plus its
block size is the length: found by searching back from the end for a frame
header whose CRC-8 holds, and confirmed by the frame's CRC-16 ending exactly
where the audio ends. Only the tail of the file is read.
"""

import os
from typing import BinaryIO

STREAMINFO_SIZE = 34
METADATA_HEADER_SIZE = 4
# A frame is at most 65,535 samples of 8 channels of 32 bits, with headers.
TAIL_SIZE = 2 * 1024 * 1024 + 64
ID3V1_SIZE = 128
# Frame headers tried from the end before giving up: a sync word and a CRC-8
# that hold by chance are rare, and each try costs a CRC-16 to the end.
MAX_CANDIDATES = 4
# A frame header's first two bytes: 14 sync bits, a reserved 0, then the
# blocking strategy (0: fixed block size, numbered by frame).
FIXED_SYNC = b"\xff\xf8"
# Block sizes by the header's 4-bit code; 6 and 7 mean "read it from the end
# of the header", 0 is reserved.
BLOCK_SIZES = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608,
               **{code: 256 << (code - 8) for code in range(8, 16)}}
# Bytes of sample rate at the end of the header, by the 4-bit rate code; 15 is invalid.
RATE_FIELD_SIZES = {12: 1, 13: 2, 14: 2}
INVALID_RATE = 15
SAMPLE_SIZE_RESERVED = 3


def _crc_table(polynomial: int, width: int) -> list[int]:
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ polynomial if crc & top else crc << 1) & mask
        table.append(crc)
    return table


CRC8_TABLE = _crc_table(0x07, 8)
CRC16_TABLE = _crc_table(0x8005, 16)


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = CRC8_TABLE[crc ^ byte]
    return crc


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ CRC16_TABLE[(crc >> 8) ^ byte]
    return crc


def count_flac_frames(path: str | os.PathLike) -> int | None:
    """Samples per channel in the FLAC at `path`, counted from its last frame;
    None where that frame cannot be found for sure (then decode to count)."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        streaminfo, audio_start = _streaminfo(file)
        if streaminfo is None:
            return None
        min_block, max_block, channels = streaminfo
        if min_block != max_block:  # the frame number says nothing of the samples
            return None
        start = max(audio_start, size - TAIL_SIZE)
        file.seek(start)
        tail = file.read(size - start)
    ends = [len(tail)]
    if tail[-ID3V1_SIZE:-ID3V1_SIZE + 3] == b"TAG":
        ends.append(len(tail) - ID3V1_SIZE)
    for end in ends:
        last = _last_frame(tail[:end], channels)
        if last is not None:
            frame_number, block_size = last
            return frame_number * max_block + block_size
    return None


def _streaminfo(file: BinaryIO) -> tuple[tuple[int, int, int] | None, int]:
    """(min block size, max block size, channels) and where the frames start."""
    if file.read(4) != b"fLaC":
        return None, 0
    header = file.read(METADATA_HEADER_SIZE)
    if len(header) < METADATA_HEADER_SIZE or header[0] & 0x7F != 0:
        return None, 0  # STREAMINFO must come first
    info = file.read(STREAMINFO_SIZE)
    if len(info) < STREAMINFO_SIZE:
        return None, 0
    channels = ((info[12] >> 1) & 0b111) + 1
    streaminfo = (int.from_bytes(info[0:2], "big"), int.from_bytes(info[2:4], "big"), channels)
    last = header[0] & 0x80
    position = 4 + METADATA_HEADER_SIZE + int.from_bytes(header[1:4], "big")
    while not last:  # the other metadata blocks: skipped by their lengths
        file.seek(position)
        header = file.read(METADATA_HEADER_SIZE)
        if len(header) < METADATA_HEADER_SIZE:
            return None, 0
        last = header[0] & 0x80
        position += METADATA_HEADER_SIZE + int.from_bytes(header[1:4], "big")
    return streaminfo, position


def _last_frame(tail: bytes, channels: int) -> tuple[int, int] | None:
    """(frame number, block size) of the frame that ends where `tail` ends."""
    pos = len(tail)
    candidates = 0
    while candidates < MAX_CANDIDATES and (pos := tail.rfind(FIXED_SYNC, 0, pos)) >= 0:
        header = _frame_header(tail, pos, channels)
        if header is not None:
            # The frame's CRC-16 covers it all, its header included.
            if int.from_bytes(tail[-2:], "big") == crc16(tail[pos:-2]):
                return header
            candidates += 1
    return None


def _frame_header(data: bytes, pos: int, channels: int) -> tuple[int, int] | None:
    """(frame number, block size) of a fixed-block-size frame header at `pos`
    whose fields are valid and whose CRC-8 holds, else None."""
    fields = data[pos + 2:pos + 4]
    if len(fields) < 2:
        return None
    block_code, rate_code = fields[0] >> 4, fields[0] & 0x0F
    assignment, sample_size = fields[1] >> 4, (fields[1] >> 1) & 0b111
    if (block_code == 0 or rate_code == INVALID_RATE or sample_size == SAMPLE_SIZE_RESERVED
            or fields[1] & 1 or assignment > 10):
        return None
    if (assignment + 1 if assignment < 8 else 2) != channels:
        return None
    number, cursor = _coded_number(data, pos + 4)
    if number is None:
        return None
    block_size = BLOCK_SIZES.get(block_code)
    if block_size is None:  # 6: one more byte, 7: two more, holding size - 1
        width = block_code - 5
        block_size = int.from_bytes(data[cursor:cursor + width], "big") + 1
        cursor += width
    cursor += RATE_FIELD_SIZES.get(rate_code, 0)
    if cursor >= len(data) or crc8(data[pos:cursor]) != data[cursor]:
        return None
    return number, block_size


def _coded_number(data: bytes, pos: int) -> tuple[int | None, int]:
    """The frame number, coded as UTF-8 codes characters (up to 6 bytes for
    31 bits), and where the header goes on after it."""
    if pos >= len(data):
        return None, pos
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    length = 8 - (~first & 0xFF).bit_length()  # the leading 1 bits
    if not 2 <= length <= 6 or pos + length > len(data):
        return None, pos
    number = first & (0x7F >> length)
    for byte in data[pos + 1:pos + length]:
        if byte & 0xC0 != 0x80:
            return None, pos
        number = (number << 6) | (byte & 0x3F)
    return number, pos + length
