"""A damaged database stops the server at once, with one line saying what to do.

A process that prints a traceback and then stays alive without listening
looks, to a service manager, like a server that runs. Each test damages the
database of a real library the way disks and careless copies do, starts
`python -m audioserver` and expects a prompt exit, non-zero, that changes
nothing in the data directory.
"""

import os
import shutil
import sqlite3

import pytest

import audiofiles
from serverprocess import ServerProcess, snapshot

DB_NAME = "audioserver.sqlite3"
# Long enough to tell "exits" from "hangs" on a busy machine; a server
# that hangs is stopped by run_until_exit's timeout and the test fails.
EXIT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def library_of_one(tmp_path_factory):
    """A data directory whose database lists a.wav, made once."""
    tmp = tmp_path_factory.mktemp("library-of-one")
    server = ServerProcess(tmp / "data", tmp, workers=1)
    try:
        server.start()
        assert server.put("a.wav", audiofiles.wav())[0] == 201
        assert server.stop() == 0
    finally:
        server.kill()
    return server.data_dir


def garbage_header(path) -> None:
    with open(path, "r+b") as file:
        file.write(b"this is not SQLite at all")


def half(path) -> None:
    os.truncate(path, os.path.getsize(path) // 2)


def first_100_bytes(path) -> None:
    os.truncate(path, 100)


def garbage_in_the_table(path) -> None:
    """The header and the schema intact: the damage shows only when the
    table of files is read, at start-up by the check of the disk."""
    with sqlite3.connect(path) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audio'"
                               ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * page_size)


def emptied(path) -> None:
    """SQLite takes an empty file for a new database: migrated as one, it
    would make every stored file look unreferenced, and start-up removes those."""
    os.truncate(path, 0)



@pytest.mark.parametrize("auth", ["open", "users"])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("damage", [garbage_header, half, first_100_bytes,
                                    garbage_in_the_table, emptied])
def test_a_damaged_database_stops_the_server_with_one_clear_line(
        tmp_path, library_of_one, damage, workers, auth):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=workers)
    shutil.copytree(library_of_one, server.data_dir)
    damage(server.data_dir / DB_NAME)
    before = snapshot(server.data_dir)
    try:
        code = server.run_until_exit("--auth", auth, timeout=EXIT_TIMEOUT)
    finally:
        server.kill()
    assert code == 1
    assert "AudioServer is serving" not in server.stdout
    assert "Traceback" not in server.stderr
    lines = server.stderr.strip().splitlines()
    assert len(lines) == 1, server.stderr
    line = lines[0]
    assert line.startswith("audioserver: not starting:")
    assert str(server.data_dir / DB_NAME) in line  # which file
    # What is wrong: an empty file with stored files beside it is a lost database.
    assert ("empty (0 bytes)" if damage is emptied else "damaged") in line
    assert "backup" in line and "python -m audioserver recover" in line  # what to do
    assert snapshot(server.data_dir) == before  # nothing created, migrated or removed
