"""PATCH /info?name= (a JSON merge patch) and the info page's edit form:
title, artist, album, description, and renaming; never the stored bytes."""

import json
import re
from dataclasses import replace

import aiohttp
import pytest

import audiofiles
from audioserver.accounts import User
from audioserver.config import Config
from audioserver.web.app import create_app
from audioserver.web.keys import auth_key
from test_auth import BROWSER, JSON, browser_session
from test_tags import TAGS, tagged_mp3

MERGE_PATCH = "application/merge-patch+json"


async def patch(client, name: str, body, content_type: str = MERGE_PATCH, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return await client.patch("/info", params={"name": name}, data=data,
                              headers={"Content-Type": content_type, **headers})


async def meta_of(library, record) -> dict:
    return json.loads(await library.storage.read_meta(record.storage_key))


async def test_a_merge_patch_changes_the_text_fields(client, upload, library):
    await upload("whale.mp3", tagged_mp3())
    response = await patch(client, "whale.mp3", {"title": "Humpback", "album": None,
                                                 "description": "Line one\nline two"})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["title"], body["album"], body["description"]) == (
        "Humpback", None, "Line one\nline two")
    # The rest as it was.
    assert (body["artist"], body["genre"]) == (TAGS["artist"], TAGS["genre"])
    assert await (await client.get("/info", params={"name": "whale.mp3"})).json() == body
    # Searchable at once, and kept in the sidecar (recover restores it).
    listed = await (await client.get("/list", params={"q": "humpback"})).json()
    assert [item["name"] for item in listed] == ["whale.mp3"]
    record = await library.db.get("whale.mp3")
    assert (await meta_of(library, record))["texts"]["title"] == "Humpback"
    assert "album" not in (await meta_of(library, record))["texts"]


async def test_edits_never_touch_the_bytes_or_the_download_etag(client, upload, library):
    data = tagged_mp3()
    await upload("whale.mp3", data)
    before = await client.get("/download", params={"name": "whale.mp3"})
    record = await library.db.get("whale.mp3")
    assert (await patch(client, "whale.mp3", {"title": "New", "name": "renamed.mp3"})).status == 200
    after = await client.get("/download", params={"name": "renamed.mp3"})
    assert await after.read() == data == await before.read()
    assert after.headers["ETag"] == before.headers["ETag"]
    renamed = await library.db.get("renamed.mp3")
    # The key is the server's: a rename changes the row and the sidecar only.
    assert renamed.storage_key == record.storage_key
    assert (await meta_of(library, renamed))["name"] == "renamed.mp3"
    assert (await client.get("/info", params={"name": "whale.mp3"})).status == 404


async def test_a_rename_to_a_taken_name_is_409_and_changes_nothing(client, upload, library):
    await upload("a.wav")
    await upload("b.wav")
    response = await patch(client, "a.wav", {"name": "b.wav", "title": "T"})
    assert response.status == 409
    assert "taken" in (await response.json())["detail"]
    record = await library.db.get("a.wav")
    assert record.title is None and (await meta_of(library, record))["name"] == "a.wav"


@pytest.mark.parametrize("body, content_type, status, words", [
    ({"size": 1}, MERGE_PATCH, 400, "cannot be changed"),
    ({"title": 5}, MERGE_PATCH, 400, "text or null"),
    ({"name": None}, MERGE_PATCH, 400, "keeps a name"),
    ({"name": "a/b.wav"}, MERGE_PATCH, 400, "not allowed"),
    ({"title": "x" * 1001}, MERGE_PATCH, 400, "longer than 1000"),
    ({"title": "two\nlines"}, MERGE_PATCH, 400, "control character"),
    (["title"], MERGE_PATCH, 400, "JSON object"),
    ("{not json", MERGE_PATCH, 400, "not JSON"),
    ({"title": "t"}, "text/plain", 415, "merge-patch+json"),
    ("x" * 70000, MERGE_PATCH, 413, "at most"),
], ids=["unknown", "number", "no-name", "bad-name", "long", "newline", "array", "not-json",
        "type", "huge"])
async def test_bad_patches_say_what_is_wrong(client, upload, body, content_type, status, words):
    await upload("a.wav")
    response = await patch(client, "a.wav", body, content_type)
    assert response.status == status, await response.text()
    assert words in (await response.json())["detail"]


async def test_an_unknown_file_is_404(client):
    assert (await patch(client, "ghost.wav", {"title": "x"})).status == 404


# With accounts: the owner (or an admin) only; the page's form with CSRF.

@pytest.fixture
def users_config(config) -> Config:
    return replace(config, auth="users")


@pytest.fixture
async def users_client(aiohttp_client, users_config):
    return await aiohttp_client(create_app(users_config), cookie_jar=aiohttp.DummyCookieJar())


async def make_account(client, name: str) -> dict:
    rules = client.app[auth_key]
    user = User(name, "user")
    await rules.add_user(user, "correct horse battery")
    secret, _ = await rules.create_token(user, "tests")
    return {"Authorization": f"Bearer {secret}", **JSON}


async def test_only_the_owner_edits_and_a_private_name_is_not_revealed(users_client):
    alice = await make_account(users_client, "alice")
    bob = await make_account(users_client, "bob")
    for name, who, visibility in (("mine.wav", alice, "public"), ("hers.wav", alice, "private"),
                                  ("his.wav", bob, "public")):
        response = await users_client.put("/upload", params={"name": name, "visibility":
                                                             visibility},
                                          data=audiofiles.wav(), headers=who)
        assert response.status == 201
    assert (await patch(users_client, "mine.wav", {"title": "x"}, **bob)).status == 403
    assert (await patch(users_client, "mine.wav", {"title": "x"}, **JSON)).status == 401
    # Bob renaming his file onto alice's private one learns only "not available".
    response = await patch(users_client, "his.wav", {"name": "hers.wav"}, **bob)
    assert response.status == 409
    detail = (await response.json())["detail"]
    assert "not available" in detail and "taken" not in detail
    assert (await patch(users_client, "mine.wav", {"title": "Mine"}, **alice)).status == 200


async def test_the_info_page_form_edits_with_the_csrf_token(users_client):
    await make_account(users_client, "alice")
    cookie, csrf = await browser_session(users_client, "alice")
    response = await users_client.put("/upload", params={"name": "a.wav"},
                                      data=audiofiles.wav(), headers={**cookie, **JSON,
                                                                      "X-CSRF-Token": csrf})
    assert response.status == 201
    page = await (await users_client.get("/info", params={"name": "a.wav"},
                                         headers={**cookie, **BROWSER})).text()
    assert re.search(r'<form[^>]+id="edit"', page)
    fields = {"title": "From the page", "artist": "", "album": "", "description": "",
              "name": "b.wav"}
    refused = await users_client.post("/info", params={"name": "a.wav"}, data=fields,
                                      headers={**cookie, **BROWSER}, allow_redirects=False)
    assert refused.status == 403
    done = await users_client.post("/info", params={"name": "a.wav"},
                                   data={**fields, "csrf_token": csrf},
                                   headers={**cookie, **BROWSER}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/info?name=b.wav"
    body = await (await users_client.get("/info", params={"name": "b.wav"},
                                         headers={**cookie, **JSON})).json()
    assert body["title"] == "From the page" and body["artist"] is None


def test_recover_restores_tags_edits_and_the_cover(tmp_path):
    from serverprocess import ServerProcess, audioserver
    from test_recover import lose_database

    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    try:
        server.start()
        status, _ = server.put("whale.mp3", tagged_mp3(cover=audiofiles.png()))
        assert status == 201
        status, _, _ = server.request("PATCH", "/info?name=whale.mp3",
                                      json.dumps({"title": "Edited", "description": "mine",
                                                  "name": "renamed.mp3"}).encode(),
                                      {"Content-Type": MERGE_PATCH})
        assert status == 200
        _, before = server.info("renamed.mp3")
        assert server.stop() == 0
        lose_database(server.data_dir, "deleted")
        done = audioserver(server.data_dir, "recover")
        assert done.returncode == 0, done.stderr
        server.start()
        _, after = server.info("renamed.mp3")
        assert after == before
        assert (after["title"], after["description"], after["album"]) == (
            "Edited", "mine", TAGS["album"])
        assert after["cover"] == "image/png"
        assert server.request("GET", "/cover?name=renamed.mp3")[0] == 200
    finally:
        server.kill()
