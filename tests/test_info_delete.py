"""GET /info and /delete (DELETE, and POST from the page's form)."""

import os

import audiofiles
from stored import stored_names

FIELDS = {"name", "duration", "frames", "samplerate", "channels", "format", "subtype",
          "content_type", "size", "sha256", "created_at", "owner", "visibility",
          # Tags and edits (issue 16), and the cover art's media type.
          "title", "artist", "album", "track", "date", "genre", "comment", "description",
          "cover"}


async def listed(client) -> list[str]:
    return [item["name"] for item in await (await client.get("/list")).json()]


async def test_info_is_the_metadata_object(client, upload):
    data = audiofiles.encode(2.5, "FLAC", samplerate=48000, channels=2)
    created = await (await upload("a.flac", data)).json()
    response = await client.get("/info", params={"name": "a.flac"})
    assert response.status == 200 and response.content_type == "application/json"
    body = await response.json()
    assert body == created
    assert set(body) == FIELDS
    assert (body["duration"], body["frames"], body["samplerate"], body["channels"]) == (
        2.5, 120000, 48000, 2)
    assert (body["format"], body["content_type"], body["size"]) == ("FLAC", "audio/flac",
                                                                    len(data))
    # The same object /list has for it.
    assert await (await client.get("/list")).json() == [body]


async def test_info_finds_a_name_in_any_normal_form(client, upload):
    await upload("Éclair.wav")  # stored in NFC
    response = await client.get("/info", params={"name": "E\u0301clair.wav"})
    assert response.status == 200
    assert (await response.json())["name"] == "Éclair.wav"


async def test_info_errors(client, browser_headers):
    response = await client.get("/info", params={"name": "ghost.wav"})
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["title"] == "Not Found" and "ghost.wav" in body["detail"]
    for params in ({}, {"name": ""}, {"name": ".."}, {"name": "a/b"}):
        response = await client.get("/info", params=params)
        assert response.status == 400, params
        assert response.content_type == "application/problem+json"
    response = await client.get("/info", params={"name": "ghost.wav"}, headers=browser_headers)
    assert response.status == 404 and response.content_type == "text/html"
    assert "ghost.wav" in await response.text()
    # Without a name, a browser is asked for one.
    response = await client.get("/info", headers=browser_headers)
    assert response.status == 200 and response.content_type == "text/html"
    assert 'name="name"' in await response.text()


async def test_info_page_escapes_the_name(client, upload, browser_headers):
    name = "<img src=x onerror=alert(1)>.wav"
    await upload(name)
    for headers, params in ((browser_headers, {}), ({}, {"format": "html"})):
        response = await client.get("/info", params={"name": name, **params}, headers=headers)
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        assert "&lt;img src=x onerror=alert(1)&gt;.wav" in page and "<img src=x" not in page
        assert "/download?name=%3Cimg" in page


async def test_delete_removes_the_row_and_the_file(client, upload, library):
    await upload("a.wav")
    await upload("b.wav")
    key = (await library.db.get("a.wav")).storage_key
    assert await library.storage.exists(key)
    response = await client.delete("/delete", params={"name": "a.wav"})
    assert response.status == 204
    assert await response.read() == b""
    assert not await library.storage.exists(key)
    assert (await client.get("/info", params={"name": "a.wav"})).status == 404
    assert (await client.get("/download", params={"name": "a.wav"})).status == 404
    assert await listed(client) == ["b.wav"]
    assert (await client.get("/list")).headers["X-Total-Count"] == "1"
    kept = (await library.db.get("b.wav")).storage_key
    assert await stored_names(library.storage) == [kept, kept + ".meta"]
    # Deleting again finds nothing; the name is free for a new file.
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 404
    assert (await upload("a.wav")).status == 201


async def test_delete_a_non_ascii_name(client, upload, library):
    await upload("Ünïcødé ♫.wav")
    key = (await library.db.get("Ünïcødé ♫.wav")).storage_key
    response = await client.delete("/delete", params={"name": "Ünïcødé ♫.wav"})
    assert response.status == 204
    assert not await library.storage.exists(key) and await listed(client) == []


async def test_delete_unknown_is_404_and_no_name_is_400(client, upload):
    await upload("a.wav")
    response = await client.delete("/delete", params={"name": "ghost.wav"})
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert "ghost.wav" in (await response.json())["detail"]
    for params in ({}, {"name": "a/b"}, {"name": ""}):
        response = await client.delete("/delete", params=params)
        assert response.status == 400, params
        assert response.content_type == "application/problem+json"
    assert await listed(client) == ["a.wav"]  # nothing else went


async def test_a_browser_form_deletes_and_goes_back_to_the_library(client, upload, library,
                                                                   browser_headers):
    for name in ("a.wav", "b.wav", "c.wav"):
        await upload(name)
    keys = [(await library.db.get(name)).storage_key for name in ("a.wav", "b.wav")]
    # The name in the query string...
    response = await client.post("/delete", params={"name": "a.wav"}, headers=browser_headers,
                                 allow_redirects=False)
    # Back to the library, which says what went (tests/test_pages.py).
    assert response.status == 303 and response.headers["Location"] == "/list?deleted=a.wav"
    # ... or in the form body, as the ask-name page sends it.
    response = await client.post("/delete", data={"name": "b.wav"}, headers=browser_headers,
                                 allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/list?deleted=b.wav"
    assert not any([await library.storage.exists(key) for key in keys])
    assert await listed(client) == ["c.wav"]
    # Followed, the redirect lands on the library page.
    response = await client.post("/delete", data={"name": "c.wav"}, headers=browser_headers)
    assert response.status == 200 and response.content_type == "text/html"
    assert response.url.path == "/list"
    assert await library.db.summary() == (0, 0)


async def test_a_browser_deleting_an_unknown_name_gets_a_404_page(client, browser_headers):
    response = await client.post("/delete", data={"name": "ghost.wav"}, headers=browser_headers,
                                 allow_redirects=False)
    assert response.status == 404 and response.content_type == "text/html"
    assert "ghost.wav" in await response.text()


async def test_post_delete_from_a_script_is_204(client, upload):
    await upload("a.wav")
    await upload("b.wav")
    response = await client.post("/delete", data={"name": "a.wav"})
    assert response.status == 204
    response = await client.post("/delete", params={"name": "b.wav"})
    assert response.status == 204
    assert await listed(client) == []
    response = await client.post("/delete", data={"other": "x"})
    assert response.status == 400
    assert response.content_type == "application/problem+json"


async def test_delete_page_asks_for_a_name(client, browser_headers):
    for headers in ({}, browser_headers):
        response = await client.get("/delete", headers=headers)
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        assert 'method="post"' in page and 'name="name"' in page


async def test_delete_page_fills_in_the_name_to_confirm(client, upload, library):
    name = '"><img src=x>.wav'
    await upload(name)
    response = await client.get("/delete", params={"name": name})
    assert response.status == 200
    page = await response.text()
    assert 'value="&#34;&gt;&lt;img src=x&gt;.wav"' in page or \
        'value="&quot;&gt;&lt;img src=x&gt;.wav"' in page
    # Asking is not deleting.
    assert await library.db.exists(name)
