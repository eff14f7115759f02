"""A lost database: the server refuses to start instead of wiping the
library, and `python -m audioserver recover` rebuilds it from the store.

Each test runs the real server (see serverprocess.py) on a temporary data
directory and talks to it over real sockets.
"""

import os
import shutil

import pytest

import audiofiles
from serverprocess import ServerProcess, audioserver


@pytest.fixture
def server(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    yield server
    server.kill()


def snapshot(data_dir) -> dict:
    """Every file of the data directory and its bytes."""
    files = {}
    for root, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, data_dir)] = file.read()
    return files


def lose_database(data_dir, how: str) -> None:
    db = data_dir / "audioserver.sqlite3"
    for leftover in (data_dir / "audioserver.sqlite3-wal", data_dir / "audioserver.sqlite3-shm"):
        leftover.unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_a_lost_database_is_a_refusal_not_a_wipe(server, how, workers):
    server.workers = workers
    server.start()
    assert server.put("one.wav", audiofiles.wav())[0] == 201
    assert server.put("two.wav", audiofiles.wav(0.5))[0] == 201
    assert server.stop() == 0
    lose_database(server.data_dir, how)
    before = snapshot(server.data_dir)
    assert server.run_until_exit() == 1
    assert "not starting" in server.stderr
    assert "python -m audioserver recover" in server.stderr
    assert "backup" in server.stderr
    assert "AudioServer is serving" not in server.stdout
    assert snapshot(server.data_dir) == before  # nothing deleted, not even made


def test_a_database_that_lists_nothing_beside_stored_files_is_refused(server, tmp_path):
    server.start()
    assert server.put("one.wav", audiofiles.wav())[0] == 201
    assert server.stop() == 0
    # An empty but valid database, as a wrong backup or `user add` would leave.
    empty = tmp_path / "empty"
    assert audioserver(empty, "user", "add", "someone", "--password-stdin",
                       stdin="a long enough password\n").returncode == 0
    lose_database(server.data_dir, "deleted")
    shutil.copy(empty / "audioserver.sqlite3", server.data_dir / "audioserver.sqlite3")
    stored = sorted(os.listdir(server.data_dir / "audio"))
    assert server.run_until_exit() == 1
    assert "its database lists none" in server.stderr
    assert "python -m audioserver recover" in server.stderr
    assert sorted(os.listdir(server.data_dir / "audio")) == stored


def test_commands_other_than_recover_refuse_a_lost_database(server):
    server.start()
    assert server.put("one.wav", audiofiles.wav())[0] == 201
    assert server.stop() == 0
    lose_database(server.data_dir, "deleted")
    done = audioserver(server.data_dir, "user", "add", "someone", "--password-stdin",
                       stdin="a long enough password\n")
    assert done.returncode == 1
    assert "python -m audioserver recover" in done.stderr
    assert not (server.data_dir / "audioserver.sqlite3").exists()
