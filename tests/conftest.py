import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import asyncpg
import pytest

import audiofiles
from pgserver import PostgresServer
from redisserver import RedisServer
from s3server import S3Server
from audioserver.config import DEFAULT_CACHE_SIZE, Config
from audioserver.web.app import create_app
from audioserver.web.keys import library_key

MAX_UPLOAD_SIZE = 4 * 1024 * 1024


@pytest.fixture(params=["sqlite", "postgresql+s3", "sqlite+s3"])
def backend(request) -> str:
    """The metadata store and the file storage under the test, `+s3` for an
    object store (the local disk otherwise): every test of the API runs on
    each pair."""
    return request.param


@pytest.fixture
def config(tmp_path, backend, request) -> Config:
    database = request.getfixturevalue("postgres_url") if "postgresql" in backend else None
    storage = request.getfixturevalue("s3_url") if backend.endswith("+s3") else None
    # The mixed pair has no cache: every download streams from the store.
    cache_size = 0 if backend == "sqlite+s3" else DEFAULT_CACHE_SIZE
    return Config(data_dir=tmp_path / "data", database=database, storage=storage,
                  s3_path_style=storage is not None, cache_size=cache_size,
                  max_upload_size=MAX_UPLOAD_SIZE, probe_timeout=10, probe_workers=1)


@pytest.fixture
def db_rows(config):
    """Run one SQL statement (with ? for parameters) on the test's database,
    whichever backend it is, and return its rows as tuples: for checks and
    changes behind the API's back."""
    if config.on_postgres:
        return lambda sql, params=(): _postgres_rows(config.database, sql, params)

    def rows(sql: str, params=()) -> list[tuple]:
        with closing(sqlite3.connect(config.db_path)) as conn, conn:
            return conn.execute(sql, params).fetchall()
    return rows


def _postgres_rows(url: str, sql: str, params) -> list[tuple]:
    pieces = sql.split("?")
    numbered = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))

    async def run() -> list[tuple]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(numbered, *params)]
        finally:
            await conn.close()
    # Tests call this from inside their own event loop: run it in another.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


@pytest.fixture
async def client(aiohttp_client, config):
    return await aiohttp_client(create_app(config))


@pytest.fixture
def library(client):
    """The app's own database and storage, for checks behind the API."""
    return client.app[library_key]


@pytest.fixture
def upload(client):
    """Upload `data` as `name` the raw way; return the response."""
    async def upload(name: str, data: bytes | None = None, **kwargs):
        body = audiofiles.wav() if data is None else data
        return await client.put("/upload", params={"name": name}, data=body, **kwargs)
    return upload


@pytest.fixture
def browser_headers() -> dict:
    """What a browser sends: it prefers a page to JSON."""
    return {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the whole session, with a
    migrated template database."""
    from audioserver.metadata.postgres import PostgresDatabase

    async def migrate(url: str) -> None:
        db = PostgresDatabase(url)
        await db.open()
        await db.close()

    server = PostgresServer()
    try:
        server.start()
        server.make_template(migrate)
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres) -> str:
    """A fresh, migrated database of its own for one test."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def redis_server():
    """One throwaway Redis for the whole session."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """A Redis database of its own for one test."""
    return redis_server.url()


@pytest.fixture(scope="session")
def s3():
    """One throwaway SeaweedFS S3 server for the whole session."""
    server = S3Server()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3, monkeypatch) -> str:
    """A new, empty library in the store for one test, as --storage names
    it; the AWS variables that reach it are set for the test's own process."""
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    return s3.new_library()
