import pytest
from pgserver import PostgresServer

import audiofiles
from audioserver.config import Config
from audioserver.web.app import create_app
from audioserver.web.keys import library_key

MAX_UPLOAD_SIZE = 4 * 1024 * 1024


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data", max_upload_size=MAX_UPLOAD_SIZE,
                  probe_timeout=10, probe_workers=1)


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
