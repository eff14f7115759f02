"""What goes over the wire beyond the routes themselves: answers to requests
aiohttp cannot parse, one limit for every form field, both form encodings,
what caches may keep, and no path of the machine in any answer."""

import json

import aiohttp
import pytest

import audiofiles
from audioserver.accounts import User
from audioserver.auth import SESSION_COOKIE
from audioserver.main import create_app
from audioserver.settings import Config
from audioserver.storage import AUDIO_DIR
from audioserver.typedefs import auth_key
from conftest import MAX_UPLOAD_SIZE

PASSWORD = "correct horse battery"
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html"}


@pytest.fixture
def users_config(tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data", max_upload_size=MAX_UPLOAD_SIZE,
                  probe_timeout=10, probe_workers=1, auth="users")


@pytest.fixture
async def users_client(aiohttp_client, users_config):
    # No cookie jar: each test says which session a request carries.
    return await aiohttp_client(create_app(users_config), cookie_jar=aiohttp.DummyCookieJar())


@pytest.fixture
async def alice(users_client) -> dict:
    """An account, and the headers of an API token for it."""
    rules = users_client.app[auth_key]
    user = User("alice", "user")
    await rules.add_user(user, PASSWORD)
    secret, _ = await rules.create_token(user, "tests")
    return {"Authorization": f"Bearer {secret}"}


# No path of the machine in an answer


@pytest.mark.parametrize("headers", [JSON, BROWSER])
async def test_a_stored_file_that_cannot_be_opened_names_no_path(client, upload, config, capfd,
                                                                 headers):
    assert (await upload("a.wav")).status == 201
    [stored] = (config.data_dir / AUDIO_DIR).iterdir()
    stored.write_bytes(b"not audio any more" * 100)
    response = await client.get("/waveform", params={"name": "a.wav"}, headers=headers)
    assert response.status == 422
    body = await response.text()
    assert "a.wav" in body and "Format not recognised" in body
    for path in (str(config.data_dir.resolve()), str(config.data_dir), stored.name):
        assert path not in body, body
    # The operator learns which file it was, from the parser worker's log.
    assert str(stored) in capfd.readouterr().err
