"""Conditional requests on metadata: /info and /list send an ETag and
answer If-None-Match with 304 and no body while nothing they show changed."""

import audiofiles


async def test_info_answers_304_while_the_row_is_the_same(client, upload):
    assert (await upload("a.wav", audiofiles.wav(0.1))).status == 201
    first = await client.get("/info", params={"name": "a.wav"})
    etag = first.headers["ETag"]
    again = await client.get("/info", params={"name": "a.wav"}, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204
    assert (await upload("a.wav", audiofiles.wav(0.2))).status == 201
    changed = await client.get("/info", params={"name": "a.wav"},
                               headers={"If-None-Match": etag})
    assert changed.status == 200
    assert (await changed.json())["duration"] == 0.2
    assert changed.headers["ETag"] != etag


async def test_info_of_another_file_is_not_a_304(client, upload):
    for name in ("a.wav", "b.wav"):
        assert (await upload(name, audiofiles.wav(0.1))).status == 201
    etag = (await client.get("/info", params={"name": "a.wav"})).headers["ETag"]
    other = await client.get("/info", params={"name": "b.wav"}, headers={"If-None-Match": etag})
    assert other.status == 200


async def test_list_answers_304_until_the_library_changes(client, upload):
    for name in ("a.wav", "b.wav"):
        assert (await upload(name, audiofiles.wav(0.1))).status == 201
    first = await client.get("/list", params={"limit": "1"})
    etag = first.headers["ETag"]
    again = await client.get("/list", params={"limit": "1"}, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    other_query = await client.get("/list", params={"limit": "2"},
                                   headers={"If-None-Match": etag})
    assert other_query.status == 200
    assert (await upload("c.wav", audiofiles.wav(0.1))).status == 201
    # The same first page, but one more file in all: X-Total-Count changed.
    changed = await client.get("/list", params={"limit": "1"}, headers={"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["X-Total-Count"] == "3"
    assert changed.headers["ETag"] != etag
    assert [r["name"] for r in await changed.json()] == ["a.wav"]


async def test_a_page_for_people_has_no_etag_of_the_json(client, upload, browser_headers):
    assert (await upload("a.wav", audiofiles.wav(0.1))).status == 201
    etag = (await client.get("/list")).headers["ETag"]
    page = await client.get("/list", headers={**browser_headers, "If-None-Match": etag})
    assert page.status == 200
    assert "text/html" in page.headers["Content-Type"]
