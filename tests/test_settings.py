import pytest

from audioserver.settings import defaults_from_environment, parse_size
from audioserver.templating import format_duration, format_size


@pytest.mark.parametrize("text, size", [
    ("1024", 1024), ("2G", 2 * 1024**3), ("500M", 500 * 1024**2), ("64k", 65536),
    ("1GiB", 1024**3), (" 3 M ", 3 * 1024**2),
])
def test_sizes_are_powers_of_1024(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1", "0", "12 parsecs", "1T"])
def test_bad_sizes_say_so(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_environment_gives_defaults_and_names_the_bad_variable():
    values = defaults_from_environment({"AUDIOSERVER_PORT": "9000",
                                        "AUDIOSERVER_MAX_UPLOAD_SIZE": "10M"})
    assert values == {"port": 9000, "max_upload_size": 10 * 1024**2}
    with pytest.raises(ValueError, match="AUDIOSERVER_PORT='x'"):
        defaults_from_environment({"AUDIOSERVER_PORT": "x"})


@pytest.mark.parametrize("seconds, shown", [
    (0, "0:00"), (59.4, "0:59"), (59.6, "1:00"), (61, "1:01"), (3600, "1:00:00"), (3725, "1:02:05"),
])
def test_durations_for_people(seconds, shown):
    assert format_duration(seconds) == shown


@pytest.mark.parametrize("size, shown", [
    (0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"), (5 * 1024**2, "5.0 MiB"),
    (3 * 1024**3, "3.0 GiB"),
])
def test_sizes_for_people(size, shown):
    assert format_size(size) == shown


def test_the_shutdown_timeout_is_a_positive_number_of_seconds():
    assert defaults_from_environment({"AUDIOSERVER_SHUTDOWN_TIMEOUT": "2.5"}) == {
        "shutdown_timeout": 2.5}
    for bad in ["0", "-1", "soon", "inf"]:
        with pytest.raises(ValueError, match="AUDIOSERVER_SHUTDOWN_TIMEOUT"):
            defaults_from_environment({"AUDIOSERVER_SHUTDOWN_TIMEOUT": bad})
