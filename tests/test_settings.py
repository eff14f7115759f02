import pytest

import audiofiles
from audioserver.config import (
    Config,
    defaults_from_environment,
    parse_allowed_hosts,
    parse_database,
    parse_host_name,
    parse_size,
)
from audioserver.metadata import audio_store
from audioserver.web.templating import format_duration, format_size
from serverprocess import ServerProcess, audioserver


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


@pytest.mark.parametrize("text, name", [
    ("Music.Example", "music.example"), ("music.example.", "music.example"),
    ("Bücher.example", "xn--bcher-kva.example"), ("[::1]", "::1"), ("0:0::1", "::1"),
    ("127.0.0.1", "127.0.0.1"), ("my_nas", "my_nas"),
])
def test_host_names_are_written_as_a_host_header_compares_them(text, name):
    assert parse_host_name(text) == name


@pytest.mark.parametrize("text", ["", "music.example:8080", "http://music.example", "a..b",
                                  "[127.0.0.1]", "-", "a b", "*.example"])
def test_what_is_not_a_host_name_says_so(text):
    with pytest.raises(ValueError):
        parse_host_name(text)


def test_allowed_hosts_come_as_a_list_or_a_star():
    assert parse_allowed_hosts("NAS.example, *,") == ("nas.example", "*")


@pytest.mark.parametrize("host, names", [
    ("127.0.0.1", ("127.0.0.1", "localhost", "::1")),
    ("::1", ("::1", "localhost", "127.0.0.1")),
    ("localhost", ("localhost", "127.0.0.1", "::1")),
    ("192.0.2.7", ("192.0.2.7",)),
    ("0.0.0.0", ("0.0.0.0", "localhost", "127.0.0.1", "::1")),
])
def test_the_names_served_follow_the_address_listened_on(host, names):
    assert set(Config(host=host).host_names) == set(names)
    assert set(Config(host=host, allowed_hosts=("nas.example",)).host_names) == {
        *names, "nas.example"}


def test_the_shutdown_timeout_is_a_positive_number_of_seconds():
    assert defaults_from_environment({"AUDIOSERVER_SHUTDOWN_TIMEOUT": "2.5"}) == {
        "shutdown_timeout": 2.5}
    for bad in ["0", "-1", "soon", "inf"]:
        with pytest.raises(ValueError, match="AUDIOSERVER_SHUTDOWN_TIMEOUT"):
            defaults_from_environment({"AUDIOSERVER_SHUTDOWN_TIMEOUT": bad})


@pytest.mark.parametrize("text, path", [
    ("library.sqlite3", "library.sqlite3"), ("/var/lib/a.db", "/var/lib/a.db"),
    ("sqlite:///var/lib/a.db", "/var/lib/a.db"), ("sqlite:relative.db", "relative.db"),
])
def test_a_sqlite_database_is_a_path(text, path):
    assert parse_database(text) == path
    assert Config(database=parse_database(text)).db_path.as_posix() == path


@pytest.mark.parametrize("text", ["", "sqlite:", "mysql://host/db"])
def test_what_is_not_a_database_says_so(text):
    with pytest.raises(ValueError, match="is not a database"):
        parse_database(text)


def test_the_database_may_live_outside_the_data_directory(tmp_path):
    """--database and AUDIOSERVER_DATABASE put the SQLite file where they
    say, for the server and the commands alike."""
    elsewhere = tmp_path / "db" / "library.sqlite3"
    elsewhere.parent.mkdir()
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1,
                           env={"AUDIOSERVER_DATABASE": str(elsewhere)})
    try:
        server.start()
        assert server.put("a.wav", audiofiles.wav())[0] == 201
        assert server.stop() == 0
        assert elsewhere.stat().st_size > 0
        assert not (server.data_dir / "audioserver.sqlite3").exists()
        server.start()  # the variable again: the same library
        assert server.names() == ["a.wav"]
    finally:
        server.kill()
    listed = audioserver(server.data_dir, "user", "list", "--database", f"sqlite://{elsewhere}")
    assert listed.returncode == 0, listed.stderr
    assert not (server.data_dir / "audioserver.sqlite3").exists()


def test_the_database_pool_bounds_each_processes_connections():
    config = Config(database=parse_database("postgresql://u:p@db.example/library"),
                    database_pool=3)
    assert audio_store(config).max_size == 3
    assert defaults_from_environment({"AUDIOSERVER_DATABASE_POOL": "7"})["database_pool"] == 7
    with pytest.raises(ValueError, match="AUDIOSERVER_DATABASE_POOL='0'"):
        defaults_from_environment({"AUDIOSERVER_DATABASE_POOL": "0"})


def test_a_postgresql_url_names_a_database():
    assert parse_database(" postgresql://u:p@h:5432/lib ") == "postgresql://u:p@h:5432/lib"
    with pytest.raises(ValueError, match="is not a database"):
        parse_database("postgresql://u:p@h:5432/")


def test_object_storage_settings_from_the_environment():
    values = defaults_from_environment({
        "AUDIOSERVER_STORAGE": "s3://audio/library", "AUDIOSERVER_CACHE_SIZE": "0",
        "AUDIOSERVER_CACHE_DIR": "/var/cache/audio", "AUDIOSERVER_S3_PATH_STYLE": "1",
        "AUDIOSERVER_S3_REDIRECT": "off"})
    assert values["storage"] == "s3://audio/library" and values["cache_size"] == 0
    assert values["s3_path_style"] is True and values["s3_redirect"] is False
    assert str(values["cache_dir"]) == "/var/cache/audio"
    assert Config(**values).on_s3
    for variable, text in [("AUDIOSERVER_STORAGE", "s3://"), ("AUDIOSERVER_STORAGE", "ftp://x"),
                           ("AUDIOSERVER_S3_REDIRECT", "maybe")]:
        with pytest.raises(ValueError, match=variable):
            defaults_from_environment({variable: text})
