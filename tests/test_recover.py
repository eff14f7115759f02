"""A lost database: the server refuses to start instead of wiping the
library, and `python -m audioserver recover` rebuilds it from the store.

Each test runs the real server (see serverprocess.py) on a temporary data
directory and talks to it over real sockets.
"""

import json
import os
import shutil
import sqlite3

import pytest

import audiofiles
from serverprocess import ServerProcess, account, audioserver, query, sha256, snapshot


@pytest.fixture
def server(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    yield server
    server.kill()



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
    assert "lists none" in server.stderr
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


# Rebuilding the library with `recover`

PASSWORD = "correct horse battery"


def users_server(tmp_path) -> ServerProcess:
    return ServerProcess(tmp_path / "data", tmp_path, workers=1)


def as_user(server, headers: dict):
    """Requests of `server` signed in with `headers` from here on."""
    server.headers = headers
    return server


def put(server, name: str, data: bytes, visibility: str = "public") -> dict:
    status, _, body = server.request("PUT", f"/upload?{query(name)}&visibility={visibility}",
                                     data)
    assert status == 201, body
    return json.loads(body)


def library_seen_by_an_admin(server) -> list[dict]:
    listing = server.listing()
    return sorted(listing, key=lambda item: item["name"])


def make_library(server) -> dict[str, bytes]:
    """Several owners, private and public files, a visibility changed, a
    file deleted; return the bytes of every file left."""
    data = server.data_dir
    admin = account(data, "root", PASSWORD, "--admin")
    alice = account(data, "alice", PASSWORD)
    bob = account(data, "bob", PASSWORD)
    server.start(server_command(server))
    files = {
        "alice-public.wav": audiofiles.wav(1),
        "alice-private.flac": audiofiles.encode(0.5, "FLAC", channels=2),
        "alice-later-private.wav": audiofiles.wav(0.25, samplerate=22050),
        "bob-private.ogg": audiofiles.encode(0.75, "OGG", subtype="VORBIS"),
        "root.mp3": audiofiles.lame_mp3(1.5),
        "deleted.wav": audiofiles.wav(0.3),
    }
    as_user(server, alice)
    put(server, "alice-public.wav", files["alice-public.wav"])
    put(server, "alice-private.flac", files["alice-private.flac"], "private")
    put(server, "alice-later-private.wav", files["alice-later-private.wav"])
    status, _, _ = server.request(
        "POST", f"/visibility?{query('alice-later-private.wav')}&visibility=private")
    assert status == 200
    as_user(server, bob)
    put(server, "bob-private.ogg", files["bob-private.ogg"], "private")
    put(server, "deleted.wav", files.pop("deleted.wav"))
    assert server.request("DELETE", "/delete?" + query("deleted.wav"))[0] == 204
    as_user(server, admin)
    put(server, "root.mp3", files["root.mp3"])
    return files


def server_command(server, *extra):
    return server.command("--auth", "users", *extra)


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_recover_rebuilds_the_library_from_the_stored_files(tmp_path, how):
    server = users_server(tmp_path)
    try:
        files = make_library(server)
        before = library_seen_by_an_admin(server)
        assert [item["visibility"] for item in before] == [
            "private", "private", "public", "private", "public"]
        assert server.stop() == 0
        stored = snapshot(server.data_dir / "audio")
        lose_database(server.data_dir, how)
        assert server.run_until_exit("--auth", "users") == 1
        assert "python -m audioserver recover" in server.stderr
        assert snapshot(server.data_dir / "audio") == stored

        done = audioserver(server.data_dir, "recover")
        assert done.returncode == 0, done.stderr
        summary = done.stdout.strip().splitlines()[-1]
        assert summary.startswith("recovered 5, skipped 0")
        assert "alice, bob, root" in done.stdout and "user passwd" in done.stdout
        # The accounts are back without a usable password; an admin is made anew.
        admin = account(server.data_dir, "admin", PASSWORD, "--admin")
        server.start(server_command(server))
        as_user(server, admin)
        after = library_seen_by_an_admin(server)
        assert after == before
        for name, data in files.items():
            assert server.download_sha256(name) == sha256(data)
        assert audioserver(server.data_dir, "user", "passwd", "alice", "--password-stdin",
                           stdin=PASSWORD + "\n").returncode == 0
        listed = audioserver(server.data_dir, "user", "list").stdout
        assert "alice\tuser\t3 files" in listed and "bob\tuser\t1 file\t" in listed
    finally:
        server.kill()


def meta_of(data_dir, key: str) -> dict:
    return json.loads((data_dir / "audio" / f"{key}.meta").read_bytes())


def storage_key(data_dir, name: str) -> str:
    db = sqlite3.connect(data_dir / "audioserver.sqlite3")
    try:
        (key,) = db.execute("SELECT storage_key FROM audio WHERE name = ?", (name,)).fetchone()
        return key
    finally:
        db.close()


def start_with_an_account(server, name: str = "alice") -> None:
    """Start in users mode, signed in as a new account `name` from here on."""
    headers = account(server.data_dir, name, PASSWORD)
    server.start(server_command(server))
    as_user(server, headers)


def test_the_sidecar_follows_the_row_and_is_backfilled_at_start(server):
    start_with_an_account(server)
    uploaded = put(server, "song.wav", audiofiles.wav())
    key = storage_key(server.data_dir, "song.wav")
    assert meta_of(server.data_dir, key) == {
        "version": 1, "name": "song.wav", "owner": "alice", "visibility": "public",
        "created_at": uploaded["created_at"], "sha256": uploaded["sha256"],
        "size": uploaded["size"]}
    status, _, _ = server.request("POST", f"/visibility?{query('song.wav')}&visibility=private")
    assert status == 200
    assert meta_of(server.data_dir, key)["visibility"] == "private"
    assert server.stop() == 0
    # A library from before sidecars: start writes them.
    sidecar = server.data_dir / "audio" / f"{key}.meta"
    written = sidecar.read_bytes()
    sidecar.unlink()
    server.start(server_command(server))
    assert "wrote the metadata sidecar of 1 stored file" in server.stderr
    assert sidecar.read_bytes() == written
    assert server.stop() == 0
    # A crash after the sidecar was written but before the row committed:
    # the row is the truth, and start puts the sidecar back in line.
    sidecar.write_bytes(written.replace(b'"private"', b'"public"'))
    server.start(server_command(server))
    assert sidecar.read_bytes() == written
    assert server.info("song.wav")[1]["visibility"] == "private"


def test_recover_skips_a_file_that_is_not_the_one_uploaded(server):
    server.start()
    put(server, "good.wav", audiofiles.wav())
    put(server, "changed.wav", audiofiles.wav(0.5))
    put(server, "unnamed.wav", audiofiles.wav(0.25))
    put(server, "garbled.wav", audiofiles.wav(0.2))
    assert server.stop() == 0
    garbled = storage_key(server.data_dir, "garbled.wav")
    (server.data_dir / "audio" / f"{garbled}.meta").write_bytes(b"{not json")
    changed = server.data_dir / "audio" / storage_key(server.data_dir, "changed.wav")
    changed.write_bytes(audiofiles.wav(0.6))  # not what was uploaded
    unnamed = storage_key(server.data_dir, "unnamed.wav")
    (server.data_dir / "audio" / f"{unnamed}.meta").unlink()
    lose_database(server.data_dir, "deleted")
    done = audioserver(server.data_dir, "recover")
    assert done.returncode == 1  # something was left out
    assert done.stdout.strip() == (
        "recovered 1, skipped 3 (1 bad sidecar, 1 no sidecar, 1 sha256 mismatch)")
    assert f"skipped {garbled}: its .meta sidecar cannot be used: it is not JSON" in done.stderr
    assert f"skipped {changed.name}: 'changed.wav' is not the file that was uploaded" in done.stderr
    assert f"skipped {unnamed}: it has no .meta sidecar" in done.stderr
    assert changed.exists() and (server.data_dir / "audio" / unnamed).exists()
    server.start()
    assert server.names() == ["good.wav"]
    assert "kept " + changed.name in server.stderr and "kept " + unnamed in server.stderr


def test_recover_leaves_a_database_with_rows_alone_unless_told_to_merge(server):
    start_with_an_account(server)
    put(server, "kept.wav", audiofiles.wav())
    put(server, "stray.wav", audiofiles.wav(0.5), "private")
    assert server.stop() == 0
    # A crash between publishing a file and committing its row leaves this.
    db = sqlite3.connect(server.data_dir / "audioserver.sqlite3")
    with db:
        db.execute("DELETE FROM audio WHERE name = 'stray.wav'")
    db.close()
    before = snapshot(server.data_dir)
    refused = audioserver(server.data_dir, "recover")
    assert refused.returncode == 1
    assert "lists 1 files, so it was not lost" in refused.stderr and "--merge" in refused.stderr
    assert snapshot(server.data_dir) == before
    merged = audioserver(server.data_dir, "recover", "--merge")
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.strip() == "recovered 1, skipped 0"
    server.start(server_command(server))
    assert server.names() == ["kept.wav", "stray.wav"]
    assert server.info("stray.wav")[1]["visibility"] == "private"
    assert server.download_sha256("stray.wav") == sha256(audiofiles.wav(0.5))


def test_removing_an_account_disowns_its_files_in_their_sidecars_too(server):
    start_with_an_account(server)
    put(server, "mine.wav", audiofiles.wav(), "private")
    key = storage_key(server.data_dir, "mine.wav")
    # With the server running, as an operator would.
    removed = audioserver(server.data_dir, "user", "remove", "alice")
    assert removed.returncode == 0, removed.stderr
    assert meta_of(server.data_dir, key)["owner"] is None
    assert server.stop() == 0
    lose_database(server.data_dir, "deleted")
    done = audioserver(server.data_dir, "recover")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "recovered 1, skipped 0"  # no account to recreate
    admin = account(server.data_dir, "admin", PASSWORD, "--admin")
    server.start(server_command(server))
    as_user(server, admin)
    (item,) = server.listing()
    assert (item["name"], item["owner"], item["visibility"]) == ("mine.wav", None, "private")
