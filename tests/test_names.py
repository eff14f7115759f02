import pytest

from audioserver.names import InvalidName, validate_name


@pytest.mark.parametrize("raw, expected", [
    ("a.wav", "a.wav"),
    ("Cafe\u0301.wav", "Caf\u00e9.wav"),  # NFC
    ("  spaces kept  .wav", "  spaces kept  .wav"),
    ("...", "..."),
    (".hidden", ".hidden"),
    ("<script>.wav", "<script>.wav"),
    ("x" * 255, "x" * 255),
    ("é" * 127, "é" * 127),  # 254 bytes
    ("日本語の歌.flac", "日本語の歌.flac"),
])
def test_names_kept(raw, expected):
    assert validate_name(raw) == expected


@pytest.mark.parametrize("raw, reason", [
    (None, "required"),
    ("", "required"),
    (".", "'.' and '..'"),
    ("..", "'.' and '..'"),
    ("a/b", "'/'"),
    ("a\\b", "'\\\\'"),
    ("a\x00b", "U+0000"),
    ("a\nb", "U+000A"),
    ("a\x7fb", "U+007F"),
    ("a\x85b", "U+0085"),
    ("\ud800.wav", "U+D800"),
    ("x" * 256, "255 bytes"),
    ("é" * 128, "255 bytes"),
])
def test_names_refused_with_the_reason(raw, reason):
    with pytest.raises(InvalidName) as caught:
        validate_name(raw)
    assert reason in caught.value.detail
    assert caught.value.status == 400


def test_a_huge_name_is_not_echoed_whole():
    with pytest.raises(InvalidName) as caught:
        validate_name("x" * 10_000)
    assert len(caught.value.detail) < 200
