import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from datetime import timedelta

import pytest

import audiofiles

DATA = audiofiles.wav(1.0)  # 88,244 bytes
SIZE = len(DATA)


@pytest.fixture
async def stored(upload):
    response = await upload("a.wav", DATA)
    return await response.json()


async def download(client, name="a.wav", **kwargs):
    return await client.get("/download", params={"name": name}, **kwargs)


async def test_the_bytes_and_their_headers(client, stored):
    response = await download(client)
    assert response.status == 200
    assert await response.read() == DATA
    headers = response.headers
    assert headers["Content-Type"] == "audio/wav"
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"a.wav\"; filename*=UTF-8''a.wav")
    modified = parsedate_to_datetime(headers["Last-Modified"])
    assert modified.isoformat()[:19] == stored["created_at"][:19]


@pytest.mark.parametrize("format, content_type", [
    ("FLAC", "audio/flac"), ("OGG", "audio/ogg"), ("AIFF", "audio/aiff"), ("MP3", "audio/mpeg"),
])
async def test_content_type_follows_the_detected_format(client, upload, format, content_type):
    await upload("x", audiofiles.encode(1.0, format))
    assert (await download(client, "x")).headers["Content-Type"] == content_type


@pytest.mark.parametrize("name, disposition", [
    ("Ünïcødé ♫.wav",
     "attachment; filename=\"Unic_de _.wav\"; "
     "filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20%E2%99%AB.wav"),
    ('say "hi" 100%.wav',
     "attachment; filename=\"say _hi_ 100_.wav\"; filename*=UTF-8''say%20%22hi%22%20100%25.wav"),
    ("日本.wav", "attachment; filename=\"__.wav\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.wav"),
])
async def test_disposition_has_an_ascii_fallback_and_the_exact_name(client, upload, name,
                                                                    disposition):
    await upload(name, DATA)
    assert (await download(client, name)).headers["Content-Disposition"] == disposition


async def test_inline_for_players(client, stored):
    response = await client.get("/download", params={"name": "a.wav", "inline": "1"})
    assert response.headers["Content-Disposition"].startswith("inline; ")


@pytest.mark.parametrize("header, first, last", [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, SIZE - 1),
    ("bytes=-100", SIZE - 100, SIZE - 1),
    (f"bytes=50-{SIZE + 1000}", 50, SIZE - 1),
    (f"bytes=-{SIZE * 2}", 0, SIZE - 1),
    (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
])
async def test_one_range_is_206(client, stored, header, first, last):
    response = await download(client, headers={"Range": header})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert await response.read() == DATA[first:last + 1]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416(client, stored, header):
    response = await download(client, headers={"Range": header})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert response.content_type == "application/problem+json"
    assert str(SIZE) in (await response.json())["detail"]


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "bytes=abc", "items=0-9", "bytes=9-1"])
async def test_ranges_we_do_not_serve_give_the_whole_file(client, stored, header):
    response = await download(client, headers={"Range": header})
    assert response.status == 200
    assert await response.read() == DATA


async def test_if_none_match(client, stored):
    etag = f'"{stored["sha256"]}"'
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        response = await download(client, headers={"If-None-Match": header})
        assert response.status == 304, header
        assert response.headers["ETag"] == etag
        assert await response.read() == b""
    response = await download(client, headers={"If-None-Match": '"other"'})
    assert response.status == 200


async def test_if_modified_since(client, stored):
    modified = parsedate_to_datetime((await download(client)).headers["Last-Modified"])
    for when, status in ((modified, 304), (modified + timedelta(days=1), 304),
                         (modified - timedelta(seconds=1), 200)):
        response = await download(client, headers={
            "If-Modified-Since": format_datetime(when, usegmt=True)})
        assert response.status == status
    # If-None-Match wins over If-Modified-Since.
    response = await download(client, headers={
        "If-None-Match": '"other"', "If-Modified-Since": format_datetime(modified, usegmt=True)})
    assert response.status == 200


async def test_if_range(client, stored):
    etag = f'"{stored["sha256"]}"'
    last_modified = (await download(client)).headers["Last-Modified"]
    for if_range, status in ((etag, 206), ('"stale"', 200), (f"W/{etag}", 200),
                             (last_modified, 206), ("Mon, 01 Jan 2001 00:00:00 GMT", 200)):
        response = await download(client, headers={"Range": "bytes=0-9", "If-Range": if_range})
        assert response.status == status, if_range
        assert len(await response.read()) == (10 if status == 206 else SIZE)


async def test_head_has_the_headers_and_no_body(client, stored):
    response = await client.head("/download", params={"name": "a.wav"})
    assert response.status == 200
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["ETag"] == f'"{stored["sha256"]}"'
    assert await response.read() == b""


async def test_unknown_missing_and_bad_names(client, browser_headers):
    response = await download(client, "nope.wav")
    assert response.status == 404
    assert "nope.wav" in (await response.json())["detail"]
    response = await client.get("/download")
    assert response.status == 400
    assert "?name=" in (await response.json())["detail"]
    response = await download(client, "a/b.wav")
    assert response.status == 400
    response = await client.get("/download", headers=browser_headers)
    assert response.status == 200 and response.content_type == "text/html"
    assert 'name="name"' in await response.text()
