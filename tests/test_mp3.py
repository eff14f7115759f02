"""Frame counting: the duration of an MP3 whatever its header says."""

import io

import pytest
import soundfile

import audiofiles
from audioserver.mp3 import count_mp3_frames

XING_FRAMES_AT = 36 + 8  # MPEG-1 stereo: tag, flags, then the frame count


def libsndfile_mp3(seconds: float, samplerate: int = 44100, channels: int = 2) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audiofiles.tone(seconds, samplerate, channels), samplerate,
                    format="MP3")
    return buffer.getvalue()


def count(tmp_path, data: bytes):
    path = tmp_path / "x.mp3"
    path.write_bytes(data)
    return count_mp3_frames(path)


@pytest.mark.parametrize("samplerate, channels, samples_per_frame", [
    (44100, 2, 1152), (48000, 1, 1152), (22050, 2, 576), (8000, 1, 576),
])
def test_a_lame_tag_gives_the_exact_sample_count(tmp_path, samplerate, channels,
                                                 samples_per_frame):
    result = count(tmp_path, libsndfile_mp3(2.0, samplerate, channels))
    assert result.frames == 2 * samplerate  # delay and padding taken off
    assert (result.samplerate, result.channels, result.layer) == (samplerate, channels, 3)
    assert result.header_frames == result.mpeg_frames
    assert result.mpeg_frames * samples_per_frame > result.frames


@pytest.mark.parametrize("vbr", [True, False])
def test_without_a_header_every_frame_is_counted(tmp_path, vbr):
    data = audiofiles.lame_mp3(45.0, vbr=vbr)
    path = tmp_path / "x.mp3"
    path.write_bytes(data)
    result = count_mp3_frames(path)
    assert result.header_frames is None
    # No LAME tag, so the encoder's delay (under 0.05 s) stays in.
    assert result.frames / result.samplerate == pytest.approx(45.0, abs=0.06)
    if vbr:  # what the bug looked like: libsndfile guesses from the first frame
        assert soundfile.info(path).duration < 20


def test_tags_and_garbage_around_the_frames_are_skipped(tmp_path):
    clean = audiofiles.lame_mp3(3.0)
    expected = count(tmp_path, clean)
    id3v2 = b"ID3\x04\x00\x00" + bytes([0, 0, 0x10, 0]) + b"\xff\xfb\x90\x00" * 512
    id3v1 = b"TAG" + b"\xff\xfb" * 62 + b"\x00"
    ape = b"APETAGEX" + (2000).to_bytes(4, "little") + (32).to_bytes(4, "little") + bytes(16)
    middle = len(clean) // 2
    # Cut at a frame boundary so the garbage adds no partial frame.
    boundary = clean.index(b"\xff\xfb", middle)
    damaged = id3v2 + clean[:boundary] + b"junk \xff\xff\xff junk" + clean[boundary:] + ape + id3v1
    assert count(tmp_path, damaged).mpeg_frames == expected.mpeg_frames


def test_a_cut_off_last_frame_is_not_counted(tmp_path):
    data = audiofiles.lame_mp3(3.0)
    whole = count(tmp_path, data)
    assert count(tmp_path, data[:-100]).mpeg_frames == whole.mpeg_frames - 1


def test_the_walk_wins_over_a_lying_header(tmp_path):
    data = bytearray(libsndfile_mp3(2.0))
    honest = count(tmp_path, bytes(data))
    data[XING_FRAMES_AT:XING_FRAMES_AT + 4] = (10).to_bytes(4, "big")
    lied_to = count(tmp_path, bytes(data))
    assert lied_to.header_frames == 10
    assert lied_to.frames == honest.frames == 88200


@pytest.mark.parametrize("data", [
    b"", b"\xff", b"not an mp3 at all" * 100, bytes(range(256)) * 40,
    audiofiles.wav(1.0),
])
def test_no_frames_is_none(tmp_path, data):
    assert count(tmp_path, data) is None
