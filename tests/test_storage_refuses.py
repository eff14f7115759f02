"""When the storage refuses a change (an immutable or read-only audio folder),
the server says so, and a delete takes the row and the file or neither.

The audio folder is made immutable with `chattr +i`, which stops even root
(the tests run as root in CI, where permission bits would not).
"""

import json
import os
import subprocess
from contextlib import contextmanager

import pytest

import audiofiles
from audioserver.metadata import audio_store
from audioserver.web.app import create_app
from audioserver.web.keys import library_key


@contextmanager
def immutable(path):
    """`path` refuses every change (rename, create, unlink) while inside."""
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a folder immutable here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def backend() -> str:
    """An immutable folder is the local disk's own refusal (an object store's
    are in test_s3.py)."""
    return "sqlite"


def audio_dir(config):
    return config.data_dir / "audio"


def assert_refusal(response, body: dict, config, doing: str) -> None:
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    assert "storage refused" in body["detail"] and doing in body["detail"]
    assert str(config.data_dir) not in json.dumps(body)  # no path of the machine


async def test_a_refused_delete_keeps_the_row_and_the_file(client, config, upload, library):
    data = audiofiles.wav()
    assert (await upload("a.wav", data)).status == 201
    files = sorted(os.listdir(audio_dir(config)))
    with immutable(audio_dir(config)):
        response = await client.delete("/delete", params={"name": "a.wav"})
        body = await response.json()
        assert sorted(os.listdir(audio_dir(config))) == files
    assert_refusal(response, body, config, "delete")
    assert "nothing was deleted" in body["detail"]
    # Both are still there, and it still downloads.
    assert (await client.get("/info", params={"name": "a.wav"})).status == 200
    response = await client.get("/download", params={"name": "a.wav"})
    assert response.status == 200 and await response.read() == data
    # Once the storage takes changes again, the delete goes through, all of it.
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204
    assert os.listdir(audio_dir(config)) == []
    assert not await library.db.exists("a.wav")


async def test_a_refused_upload_says_so_and_keeps_nothing(client, config, upload):
    assert (await upload("a.wav")).status == 201
    files = sorted(os.listdir(audio_dir(config)))
    with immutable(audio_dir(config)):
        response = await upload("b.wav")
        body = await response.json()
    assert_refusal(response, body, config, "store")
    assert "nothing was stored" in body["detail"]
    assert sorted(os.listdir(audio_dir(config))) == files
    assert os.listdir(config.data_dir / "tmp") == []
    names = [item["name"] for item in await (await client.get("/list")).json()]
    assert names == ["a.wav"]


async def test_a_waveform_is_served_when_it_cannot_be_kept(client, config, upload, caplog):
    assert (await upload("a.wav")).status == 201
    files = sorted(os.listdir(audio_dir(config)))
    with immutable(audio_dir(config)):
        response = await client.get("/waveform", params={"name": "a.wav", "points": "10"})
        assert response.status == 200
        peaks = await response.json()
    assert len(peaks["data"]) == 20  # min and max of each point
    assert sorted(os.listdir(audio_dir(config))) == files  # computed, not kept
    assert any("storage refused" in record.getMessage() for record in caplog.records)
    # Kept the next time, once it can be.
    assert (await client.get("/waveform", params={"name": "a.wav", "points": "10"})).status == 200
    assert len(os.listdir(audio_dir(config))) == len(files) + 1


async def test_start_up_finishes_or_undoes_a_delete_a_crash_interrupted(aiohttp_client, config):
    """A delete renames the file aside, removes the row, then the file. A
    crash before the row went leaves the file aside with its row: it is put
    back. A crash after leaves it aside with no row: it is removed."""
    client = await aiohttp_client(create_app(config))
    for name in ("kept.wav", "deleted.wav"):
        assert (await client.put("/upload", params={"name": name},
                                 data=audiofiles.wav())).status == 201
    keys = {name: (await client.app[library_key].db.get(name)).storage_key
            for name in ("kept.wav", "deleted.wav")}
    await client.close()
    for key in keys.values():
        os.rename(audio_dir(config) / key, audio_dir(config) / f"{key}.deleting")
    db = audio_store(config)
    await db.open()
    try:
        await db.delete("deleted.wav")
    finally:
        await db.close()

    client = await aiohttp_client(create_app(config))
    assert sorted(os.listdir(audio_dir(config))) == [keys["kept.wav"], f"{keys['kept.wav']}.meta"]
    assert (await client.get("/download", params={"name": "kept.wav"})).status == 200
    assert (await client.get("/info", params={"name": "deleted.wav"})).status == 404
