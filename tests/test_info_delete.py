import os

import audiofiles


async def test_info_is_the_metadata_object(client, upload):
    created = await (await upload("a.flac", audiofiles.encode(2.5, "FLAC", channels=2))).json()
    response = await client.get("/info", params={"name": "a.flac"})
    assert response.status == 200
    assert await response.json() == created
    assert created["duration"] == 2.5 and created["channels"] == 2


async def test_info_errors(client, browser_headers):
    response = await client.get("/info", params={"name": "ghost.wav"})
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["title"] == "Not Found" and "ghost.wav" in body["detail"]
    assert (await client.get("/info")).status == 400
    assert (await client.get("/info", params={"name": ".."})).status == 400
    response = await client.get("/info", params={"name": "ghost.wav"}, headers=browser_headers)
    assert response.status == 404 and response.content_type == "text/html"
    assert "ghost.wav" in await response.text()


async def test_info_page_escapes_the_name(client, upload, browser_headers):
    name = "<img src=x onerror=alert(1)>.wav"
    await upload(name)
    response = await client.get("/info", params={"name": name}, headers=browser_headers)
    page = await response.text()
    assert "&lt;img src=x onerror=alert(1)&gt;.wav" in page and "<img src=x" not in page
    assert "/download?name=%3Cimg" in page


async def test_delete_removes_the_row_and_the_file(client, upload, library):
    await upload("a.wav")
    await upload("b.wav")
    record = await library.db.get("a.wav")
    path = library.storage.path(record.storage_key)
    assert path.exists()
    response = await client.delete("/delete", params={"name": "a.wav"})
    assert response.status == 204
    assert await response.read() == b""
    assert not path.exists()
    assert (await client.get("/info", params={"name": "a.wav"})).status == 404
    assert [item["name"] for item in await (await client.get("/list")).json()] == ["b.wav"]
    assert len(os.listdir(library.storage.audio_dir)) == 1
    # The name is free again.
    assert (await upload("a.wav")).status == 201


async def test_delete_unknown_is_404(client):
    response = await client.delete("/delete", params={"name": "ghost.wav"})
    assert response.status == 404
    assert "ghost.wav" in (await response.json())["detail"]
    assert (await client.delete("/delete")).status == 400


async def test_a_browser_form_deletes_and_goes_back_to_the_library(client, upload, library,
                                                                   browser_headers):
    await upload("a.wav")
    await upload("b.wav")
    response = await client.post("/delete", params={"name": "a.wav"}, headers=browser_headers,
                                 allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/list"
    response = await client.post("/delete", data={"name": "b.wav"}, headers=browser_headers,
                                 allow_redirects=False)
    assert response.status == 303
    assert await library.db.summary() == (0, 0)


async def test_post_delete_from_a_script_is_204(client, upload):
    await upload("a.wav")
    response = await client.post("/delete", data={"name": "a.wav"})
    assert response.status == 204


async def test_delete_page_asks_for_a_name(client):
    response = await client.get("/delete")
    assert response.status == 200
    page = await response.text()
    assert 'method="post"' in page and 'name="name"' in page
