"""A FLAC's length from its last frame, whatever STREAMINFO claims."""

import pytest
import soundfile

import audiofiles
from audioserver.media import flac
from audioserver.media.flac import count_flac_frames


def count(tmp_path, data: bytes) -> int | None:
    path = tmp_path / "x.flac"
    path.write_bytes(data)
    return count_flac_frames(path)


@pytest.mark.parametrize("seconds, samplerate, channels, subtype", [
    (1.0, 44100, 1, "PCM_16"), (2.5, 48000, 2, "PCM_24"), (0.001, 44100, 1, "PCM_16"),
    (3.0, 8000, 1, "PCM_S8"), (1.0, 96000, 6, "PCM_16"), (12.0, 22050, 2, "PCM_16"),
], ids=["mono", "stereo-24", "one-short-frame", "8-bit", "six-channels", "longer"])
def test_an_honest_file_counts_what_it_says(tmp_path, seconds, samplerate, channels, subtype):
    data = audiofiles.encode(seconds, "FLAC", subtype, samplerate=samplerate, channels=channels)
    path = tmp_path / "x.flac"
    path.write_bytes(data)
    assert count_flac_frames(path) == soundfile.info(path).frames == round(seconds * samplerate)


@pytest.mark.parametrize("claimed", [0, 100 * 44100, 36000 * 44100, 1])
def test_a_lying_count_is_not_believed(tmp_path, claimed):
    assert count(tmp_path, audiofiles.flac_claiming(1.0, claimed)) == 44100


def test_an_id3v1_tag_after_the_frames_is_skipped(tmp_path):
    tag = b"TAG" + bytes(125)
    assert count(tmp_path, audiofiles.flac_claiming(1.0, 0) + tag) == 44100


def test_a_last_frame_longer_than_the_tail_read_is_not_guessed(tmp_path, monkeypatch):
    data = audiofiles.encode(1.0, "FLAC")
    monkeypatch.setattr(flac, "TAIL_SIZE", 100)
    assert count(tmp_path, data) is None


@pytest.mark.parametrize("data", [
    b"", b"fLaC", b"not a flac" * 100, audiofiles.wav(1.0),
    audiofiles.flac_claiming(1.0, 0) + b"junk after the frames",
    audiofiles.flac_claiming(1.0, 0)[:-1],  # the last frame cut short
], ids=["empty", "magic-only", "text", "wav", "trailing-junk", "cut-short"])
def test_no_sure_last_frame_is_none(tmp_path, data):
    assert count(tmp_path, data) is None
