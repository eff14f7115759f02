"""`python -m audioserver migrate`: a library moved between SQLite and
PostgreSQL through the command line, then served from its new database."""

import asyncio
import json
import signal
import subprocess
import sys
import urllib.parse

import asyncpg
import pytest

import audiofiles
from audioserver.metadata.sqlite import Database
from audioserver.models import AudioRecord
from serverprocess import ServerProcess, account, audioserver

PASSWORD = "correct horse battery"
SUMMARY = "; verified: counts and checksums match"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


def migrate(data_dir, *args: str) -> subprocess.CompletedProcess:
    return audioserver(data_dir, "migrate", *args)


def summary(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr


class Library:
    """A data directory on SQLite with files of two owners, private and
    public, and API tokens made before any move."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.data = tmp_path / "data"
        self.alice = account(self.data, "alice", PASSWORD, "--admin")
        self.bob = account(self.data, "bob", PASSWORD)
        expiring = audioserver(self.data, "token", "create", "bob", "--expires", "30d")
        self.bob_expiring = {"Authorization": f"Bearer {expiring.stdout.strip()}"}
        self.runs = 0

    def server(self, *env: str) -> ServerProcess:
        self.runs += 1
        logs = self.tmp_path / f"logs-{self.runs}"
        logs.mkdir()
        server = ServerProcess(self.data, logs, workers=1,
                               env=dict(zip(["AUDIOSERVER_DATABASE"], env)))
        return server.start(server.command("--auth", "users"))

    def upload(self, server, headers: dict, name: str, visibility: str, seconds: float = 1.0):
        status, _, body = server.request("PUT", f"/upload?name={name}&visibility={visibility}",
                                         audiofiles.wav(seconds), headers)
        assert status == 201, body

    def seen(self, server) -> dict:
        """What each of anonymous, alice and bob's tokens lists."""
        return {who: json.loads(server.request("GET", "/list", headers=headers)[2])
                for who, headers in [("anonymous", {}), ("alice", self.alice),
                                     ("bob", self.bob), ("bob expiring", self.bob_expiring)]}


@pytest.fixture
def library(tmp_path):
    library = Library(tmp_path)
    server = library.server()
    try:
        library.upload(server, library.alice, "a-private.wav", "private")
        library.upload(server, library.alice, "a-public.wav", "public", 2.0)
        library.upload(server, library.bob, "b-private.wav", "private", 0.5)
        library.before = library.seen(server)
    finally:
        server.stop()
    return library


def signs_in(server, name: str, password: str) -> bool:
    status, _, _ = server.request(
        "POST", "/login", urllib.parse.urlencode({"name": name, "password": password}), FORM)
    return status == 200


def test_a_library_moves_to_postgresql_and_back(library, postgres):
    url = postgres.create_database("template0")  # empty: migrate makes the tables
    done = migrate(library.data, "--to", url)
    assert summary(done) == "migrated 3 files and 2 accounts" + SUMMARY
    assert "Sessions and failed sign-ins were not copied" in done.stdout
    assert str(library.data) in done.stdout
    server = library.server(url)
    try:
        assert library.seen(server) == library.before
        assert [item["name"] for item in library.before["bob"]] == ["a-public.wav",
                                                                     "b-private.wav"]
        assert signs_in(server, "bob", PASSWORD) and not signs_in(server, "bob", "wrong one!")
        status, _, body = server.request("GET", "/download?name=b-private.wav",
                                         headers=library.bob)
        assert status == 200 and body == audiofiles.wav(0.5)
        # The new database is the library now: what is added there goes back too.
        library.upload(server, library.bob, "b-new.wav", "public")
        after = library.seen(server)
    finally:
        server.stop()
    back = library.tmp_path / "back.sqlite3"
    assert summary(migrate(library.data, "--from", url, "--to", str(back))) \
        == "migrated 4 files and 2 accounts" + SUMMARY
    server = library.server(str(back))
    try:
        assert library.seen(server) == after
        assert signs_in(server, "alice", PASSWORD)
    finally:
        server.stop()


def test_a_second_run_copies_nothing(library, postgres_url):
    assert summary(migrate(library.data, "--to", postgres_url)).startswith("migrated 3 files")
    assert summary(migrate(library.data, "--to", postgres_url)) \
        == "migrated 0 files and 0 accounts" + SUMMARY


def test_a_row_that_differs_in_the_target_stops_the_move(library, postgres_url):
    async def plant() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(
                "INSERT INTO audio (name, name_folded, storage_key, duration, frames,"
                " samplerate, channels, format, subtype, content_type, size, sha256,"
                " created_at) VALUES ('b-private.wav', 'b-private.wav', 'elsewhere', 1, 1,"
                " 44100, 1, 'WAV', 'PCM_16', 'audio/wav', 1, $1, '2026-01-01T00:00:00.000000Z')",
                "f" * 64)
        finally:
            await conn.close()
    asyncio.run(plant())
    error = one_line_error(migrate(library.data, "--to", postgres_url))
    assert "'b-private.wav'" in error and "sha256" in error and "storage_key" in error
    # The batch holding the conflict was not written.
    assert rows(postgres_url, "SELECT name FROM audio") == [("b-private.wav",)]


def test_a_target_holding_more_than_the_source_fails_the_check(library, postgres_url):
    migrate(library.data, "--to", postgres_url)
    server = library.server(postgres_url)
    try:
        library.upload(server, library.bob, "only-there.wav", "public")
    finally:
        server.stop()
    done = migrate(library.data, "--to", postgres_url)
    assert "copied, but the databases differ: 3 files in --from, 4 in --to" \
        in one_line_error(done)


def rows(url: str, sql: str) -> list[tuple]:
    async def fetch():
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()
    return asyncio.run(fetch())


def test_rows_added_after_a_move_are_copied_by_the_next(library, postgres_url):
    """A target that holds part of the rows: the next run adds the rest."""
    migrate(library.data, "--to", postgres_url)
    server = library.server()
    try:
        library.upload(server, library.bob, "b-later.wav", "public")
    finally:
        server.stop()
    assert summary(migrate(library.data, "--to", postgres_url)) \
        == "migrated 1 file and 0 accounts" + SUMMARY


def test_a_run_killed_while_copying_is_finished_by_the_next(tmp_path, postgres_url):
    data = tmp_path / "data"
    total = 12_000

    async def fill() -> None:
        db = Database(data / "audioserver.sqlite3")
        data.mkdir()
        await db.open()
        try:
            await db.insert([AudioRecord(
                f"{i:05}.wav", 1.0, 44100, 44100, 1, "WAV", "PCM_16", "audio/wav", 100,
                f"{i:064x}", "2026-01-01T00:00:00.000000Z", None, "public", f"key-{i}")
                for i in range(total)])
        finally:
            await db.close()
    asyncio.run(fill())
    running = subprocess.Popen(
        [sys.executable, "-m", "audioserver", "migrate", "--data-dir", str(data),
         "--to", postgres_url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not rows(postgres_url, "SELECT count(*) FROM audio")[0][0]:
            assert running.poll() is None, "migrate ended before it copied a row"
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    (already,), = rows(postgres_url, "SELECT count(*) FROM audio")
    assert already % 1000 == 0 or already == total  # whole batches only
    assert summary(migrate(data, "--to", postgres_url)) \
        == f"migrated {total - already} files and 0 accounts" + SUMMARY


def test_mistakes_are_one_line_and_change_nothing(library, tmp_path):
    data = library.data
    assert "same database" in one_line_error(
        migrate(data, "--to", str(data / "audioserver.sqlite3")))
    assert "is missing" in one_line_error(
        migrate(data, "--from", str(tmp_path / "none.sqlite3"), "--to", str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()
    assert "cannot use the database" in one_line_error(
        migrate(data, "--to", "postgresql://nobody@127.0.0.1:1/none"))
    assert migrate(data, "--to", "mysql://x/y").returncode == 2
    help = audioserver(data, "migrate", "--help")
    assert help.returncode == 0 and "the data directory" in help.stdout
