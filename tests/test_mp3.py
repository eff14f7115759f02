"""Frame counting: the duration of an MP3 whatever its header says.

libsndfile writes MP3s with a Xing and LAME tag; lameenc writes none, which
is how the files that fooled libsndfile came about. Frame layouts worked out
by hand from the MPEG spec check the tables without an encoder.
"""

import io

import numpy as np
import pytest
import soundfile

import audiofiles
from audioserver.media import mp3
from audioserver.media.mp3 import Mp3Count, count_mp3_frames

XING_FRAMES_AT = 36 + 8  # MPEG-1 stereo: side info, "Xing", flags, then the frame count
MPEG1_LAYER3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def libsndfile_mp3(seconds: float, samplerate: int = 44100, channels: int = 2) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audiofiles.tone(seconds, samplerate, channels), samplerate,
                    format="MP3")
    return buffer.getvalue()


def frame_starts(data: bytes) -> list[int]:
    """Where each whole frame of a tagless 44.1 kHz MPEG-1 Layer III stream
    starts, by the spec's arithmetic rather than by the module under test."""
    starts = []
    pos = 0
    while pos + 4 <= len(data):
        assert data[pos:pos + 2] in (b"\xff\xfb", b"\xff\xfa")
        assert (data[pos + 2] >> 2) & 0b11 == 0  # 44.1 kHz
        length = 144_000 * MPEG1_LAYER3_KBPS[data[pos + 2] >> 4] // 44100
        length += (data[pos + 2] >> 1) & 1
        if pos + length > len(data):
            break
        starts.append(pos)
        pos += length
    return starts


def frames_of(header: bytes, length: int, count: int, payload: bytes = b"") -> bytes:
    """`count` frames with `header`, `length` bytes each, silent past `payload`."""
    frame = header + payload
    return (frame + bytes(length - len(frame))) * count


def count(tmp_path, data: bytes) -> Mp3Count | None:
    path = tmp_path / "x.mp3"
    path.write_bytes(data)
    return count_mp3_frames(path)


@pytest.mark.parametrize("samplerate, channels, samples_per_frame", [
    (44100, 2, 1152), (48000, 1, 1152), (22050, 2, 576), (8000, 1, 576),
])
def test_a_lame_tag_gives_the_exact_sample_count(tmp_path, samplerate, channels,
                                                 samples_per_frame):
    path = tmp_path / "x.mp3"
    path.write_bytes(libsndfile_mp3(2.0, samplerate, channels))
    result = count_mp3_frames(path)
    # Delay and padding taken off: what was written, as libsndfile reads it.
    assert result.frames == 2 * samplerate == soundfile.info(path).frames
    assert (result.samplerate, result.channels, result.layer) == (samplerate, channels, 3)
    assert result.header_frames == result.mpeg_frames
    # Encoder delay (576) and padding to a whole frame (529 more, then the rest).
    assert 0 < result.mpeg_frames * samples_per_frame - result.frames < 3 * samples_per_frame


@pytest.mark.parametrize("vbr", [True, False], ids=["vbr", "cbr"])
def test_without_a_header_every_frame_is_counted(tmp_path, vbr):
    data = audiofiles.lame_mp3(45.0, vbr=vbr)
    path = tmp_path / "x.mp3"
    path.write_bytes(data)
    result = count_mp3_frames(path)
    assert result.header_frames is None
    assert result.mpeg_frames == len(frame_starts(data))
    assert result.frames == result.mpeg_frames * 1152  # no LAME tag, nothing taken off
    # So the encoder's delay and padding (under 0.05 s) stay in.
    assert result.frames / result.samplerate == pytest.approx(45.0, abs=0.1)
    libsndfile_seconds = soundfile.info(path).duration
    if vbr:  # the bug: libsndfile guesses from the first frame's bitrate
        assert libsndfile_seconds < 20
    else:  # size over bitrate, about right
        assert libsndfile_seconds == pytest.approx(45.0, abs=0.2)


@pytest.mark.parametrize("channels", [1, 2])
def test_channels_come_from_the_channel_mode(tmp_path, channels):
    result = count(tmp_path, audiofiles.lame_mp3(1.0, channels=channels, vbr=False))
    assert (result.channels, result.samplerate) == (channels, 44100)


@pytest.mark.parametrize("samplerate, first_byte", [(22050, b"\xff\xf3"), (8000, b"\xff\xe3")],
                         ids=["mpeg2", "mpeg2.5"])
def test_mpeg2_and_mpeg25_frames_hold_576_samples(tmp_path, samplerate, first_byte):
    data = audiofiles.lame_mp3(2.0, samplerate=samplerate)
    assert data[:2] == first_byte  # lameenc keeps the rate: MPEG-2, MPEG-2.5
    result = count(tmp_path, data)
    assert (result.samplerate, result.layer, result.header_frames) == (samplerate, 3, None)
    assert result.frames == result.mpeg_frames * 576
    # Encoder delay and padding stay in: 0.16 s at 8 kHz, under three frames.
    assert 0 <= result.frames - 2 * samplerate < 3 * 576


# Lengths worked out by hand: Layer I (12 * bitrate / rate + pad) * 4,
# Layer II and MPEG-1 Layer III 144 * bitrate / rate + pad, MPEG-2/2.5 Layer III 72 *.
@pytest.mark.parametrize("header, length, samplerate, channels, layer, samples", [
    ("ffffe8c0", 672, 32000, 1, 1, 384),   # MPEG-1 Layer I 448 kbit/s
    ("ffff1200", 36, 44100, 2, 1, 384),    # MPEG-1 Layer I 32 kbit/s, padded
    ("fffde800", 1728, 32000, 2, 2, 1152),  # MPEG-1 Layer II 384 kbit/s: the longest frame
    ("fff5e8c0", 1440, 16000, 1, 2, 1152),  # MPEG-2 Layer II 160 kbit/s
    ("fffb1240", 105, 44100, 2, 3, 1152),  # MPEG-1 Layer III 32 kbit/s, padded
    ("fff3e440", 480, 24000, 2, 3, 576),   # MPEG-2 Layer III 160 kbit/s (half of 144 *)
    ("ffe318c0", 72, 8000, 1, 3, 576),     # MPEG-2.5 Layer III 8 kbit/s
])
def test_every_version_and_layer(tmp_path, header, length, samplerate, channels, layer,
                                 samples):
    result = count(tmp_path, frames_of(bytes.fromhex(header), length, 20))
    assert result == Mp3Count(frames=20 * samples, samplerate=samplerate, channels=channels,
                              mpeg_frames=20, header_frames=None, layer=layer)


def test_a_plain_xing_tag_takes_nothing_off(tmp_path):
    header = bytes.fromhex("fffb9064")  # MPEG-1 Layer III 128 kbit/s, 44.1 kHz: 417 bytes
    tag = bytes(32) + b"Xing" + (1).to_bytes(4, "big") + (20).to_bytes(4, "big")
    data = frames_of(header, 417, 1, tag) + frames_of(header, 417, 20)
    result = count(tmp_path, data)
    assert (result.mpeg_frames, result.header_frames, result.frames) == (20, 20, 20 * 1152)


def test_a_vbri_tag_frame_is_not_audio(tmp_path):
    header = bytes.fromhex("fffb9064")
    vbri = bytes(32) + b"VBRI" + bytes(10) + (30).to_bytes(4, "big")
    data = frames_of(header, 417, 1, vbri) + frames_of(header, 417, 20)
    result = count(tmp_path, data)
    assert (result.mpeg_frames, result.header_frames, result.frames) == (20, 30, 20 * 1152)


def id3v2_around(payload: bytes) -> bytes:
    size = len(payload)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + payload


def apev2_around(payload: bytes) -> bytes:
    item = len(payload).to_bytes(4, "little") + bytes(4) + b"Cover Art (Front)\x00" + payload
    size = len(item) + 32  # the footer counts, the header does not

    def header_or_footer(flags: int) -> bytes:
        return (b"APETAGEX" + (2000).to_bytes(4, "little") + size.to_bytes(4, "little")
                + (1).to_bytes(4, "little") + flags.to_bytes(4, "little") + bytes(8))
    return header_or_footer(0xA0000000) + item + header_or_footer(0x80000000)


@pytest.mark.parametrize("chunk_size", [mp3.CHUNK_SIZE, 1000], ids=["chunk", "small-chunks"])
def test_tags_and_garbage_around_the_frames_are_skipped(tmp_path, monkeypatch, chunk_size):
    # Small chunks make frames and resyncs straddle chunk boundaries.
    monkeypatch.setattr(mp3, "CHUNK_SIZE", chunk_size)
    clean = audiofiles.lame_mp3(3.0)
    expected = count(tmp_path, clean)
    starts = frame_starts(clean)
    some_frames = clean[starts[5]:starts[8]]  # as a picture could hold by chance
    # A 32 kbit/s frame that would end exactly at the end of the file.
    id3v1 = b"TAG" + bytes(21) + frames_of(bytes.fromhex("fffb10c4"), 104, 1)
    garbage = b"junk \xff\xff\xff \xff\xfb\x90\xc4 junk"
    middle = starts[len(starts) // 2]
    damaged = (id3v2_around(some_frames) + clean[:middle] + garbage + clean[middle:]
               + apev2_around(some_frames) + id3v1)
    assert count(tmp_path, damaged) == expected


def fake_headers(size: int) -> bytes:
    """Junk thick with frame headers that no frame follows: each one a sync
    word to check, none confirmed (and the first not where a frame ends)."""
    return bytes(3) + (bytes.fromhex("fffb90c4") + bytes(4)) * ((size - 3) // 8)


@pytest.mark.parametrize("junk", [bytes(40_000), b"\xff" * 40_000, fake_headers(40_000)],
                         ids=["zeros", "ff", "fake-headers"])
def test_the_walk_gives_up_after_a_long_stretch_without_frames(tmp_path, monkeypatch, junk):
    # A decoder gives up too: what follows so much junk is not played.
    monkeypatch.setattr(mp3, "MAX_JUNK_RUN", 30_000)
    clean = audiofiles.lame_mp3(2.0, vbr=False)
    assert count(tmp_path, clean + junk + clean) == count(tmp_path, clean)
    # Under the limit, the frames after it count.
    both = count(tmp_path, clean + junk[:20_000] + clean)
    assert both.mpeg_frames == 2 * count(tmp_path, clean).mpeg_frames


def test_the_walk_gives_up_when_junk_outweighs_the_frames(tmp_path, monkeypatch):
    monkeypatch.setattr(mp3, "MAX_JUNK_RUN", 10_000)
    clean = audiofiles.lame_mp3(2.0, vbr=False)
    starts = frame_starts(clean)
    two_frames = clean[starts[0]:starts[2]]
    # Each stretch of junk is under the limit, together they dwarf the audio.
    assert count(tmp_path, (two_frames + bytes(6_000)) * 10).mpeg_frames == 4
    assert count(tmp_path, (two_frames + bytes(500)) * 10).mpeg_frames == 20


def test_frames_of_another_stream_are_garbage(tmp_path):
    ours = frames_of(bytes.fromhex("fffb90c4"), 417, 20)  # 44.1 kHz
    other = frames_of(bytes.fromhex("fffb94c4"), 384, 3)  # 48 kHz, confirmed among themselves
    result = count(tmp_path, ours + other + ours)
    assert (result.mpeg_frames, result.samplerate) == (40, 44100)


def test_a_sync_word_first_in_a_chunk_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(mp3, "CHUNK_SIZE", 1000)
    leading_zeros = bytes(1000)  # the resync reads 0-999 in vain, then from 1000
    result = count(tmp_path, leading_zeros + frames_of(bytes.fromhex("fffb90c4"), 417, 20))
    assert result.mpeg_frames == 20


@pytest.mark.parametrize("which", [0.1, 0.5, 1.0])
def test_a_frame_cut_short_is_not_counted(tmp_path, which):
    data = audiofiles.lame_mp3(3.0)
    starts = frame_starts(data) + [len(data)]
    cut_frame = min(int(which * (len(starts) - 1)), len(starts) - 2)
    cut = (starts[cut_frame] + starts[cut_frame + 1]) // 2
    result = count(tmp_path, data[:cut])
    assert result.mpeg_frames == cut_frame
    assert result.frames == cut_frame * 1152


def test_the_walk_wins_over_a_lying_header(tmp_path):
    data = bytearray(libsndfile_mp3(2.0))
    honest = count(tmp_path, bytes(data))
    data[XING_FRAMES_AT:XING_FRAMES_AT + 4] = (10).to_bytes(4, "big")
    path = tmp_path / "lies.mp3"
    path.write_bytes(data)
    lied_to = count_mp3_frames(path)
    assert lied_to.header_frames == 10
    assert lied_to.frames == honest.frames == 88200
    assert lied_to.mpeg_frames == honest.mpeg_frames == honest.header_frames
    assert soundfile.info(path).frames == 10 * 1152 - 576 - 1080  # libsndfile believes it


@pytest.mark.parametrize("data", [
    b"", b"\xff", b"\xff\xfb\x90", b"not an mp3 at all" * 100, bytes(range(256)) * 40,
    np.random.default_rng(0).bytes(100_000),
    audiofiles.wav(1.0),
    frames_of(bytes.fromhex("fffb00c4"), 417, 20),  # free format: no length in the header
    frames_of(bytes.fromhex("fffb9cc4"), 417, 20),  # reserved sample rate
    frames_of(bytes.fromhex("fffb90c6"), 417, 20),  # reserved emphasis
    frames_of(bytes.fromhex("fff990c4"), 417, 20),  # reserved layer
], ids=["empty", "ff", "short", "text", "bytes", "random", "wav", "free-format",
        "reserved-rate", "reserved-emphasis", "reserved-layer"])
def test_no_frames_is_none(tmp_path, data):
    assert count(tmp_path, data) is None
