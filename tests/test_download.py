"""GET /download: the bytes, their headers, one range, conditional requests.

The tests that only read share one server, filled once per module.
"""

import hashlib
import os
import urllib.parse
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

import audiofiles
from audioserver.config import Config
from audioserver.web.app import create_app

DATA = audiofiles.wav(1.0)  # 88,244 bytes
SIZE = len(DATA)
ETAG = f'"{hashlib.sha256(DATA).hexdigest()}"'
# name -> (format, subtype): what libsndfile writes, and the type it is served as.
FORMATS = {
    "x.flac": ("FLAC", None, "audio/flac"),
    "x.ogg": ("OGG", "VORBIS", "audio/ogg"),
    "x.aiff": ("AIFF", None, "audio/aiff"),
    "x.mp3": ("MP3", None, "audio/mpeg"),
    "x.wavex": ("WAVEX", None, "audio/wav"),
    "x.rf64": ("RF64", None, "audio/wav"),
    "x.au": ("AU", None, "audio/basic"),
    "x.caf": ("CAF", None, "audio/x-caf"),
    "no extension": ("FLAC", None, "audio/flac"),  # the content decides, not the name
}
NAMES = ["Ünïcødé ♫.wav", 'say "hi" 100%.wav', "日本.wav", "semi;colon, comma.wav",
         "nbsp\u00a0and é.wav", "a'b=c&d+e.wav"]
PROBLEM_KEYS = {"type", "title", "status", "detail"}

shared = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["disk", "s3"])
async def served(tmp_path_factory, request):
    """A client of a server holding a.wav (DATA), FORMATS and NAMES, on the
    local disk (sendfile) or in an object store with no cache (every
    download a ranged GET from the store)."""
    config = Config(data_dir=tmp_path_factory.mktemp("download") / "data",
                    max_upload_size=4 * 1024 * 1024, probe_timeout=10, probe_workers=1)
    if request.param == "s3":
        s3 = request.getfixturevalue("s3")
        os.environ.update(s3.environ())  # module-scoped: no monkeypatch
        config = replace(config, storage=s3.new_library(),
                         s3_path_style=True, cache_size=0)
    uploads = {"a.wav": DATA, **{name: DATA for name in NAMES}}
    for name, (format, subtype, _) in FORMATS.items():
        uploads[name] = audiofiles.encode(0.5, format, subtype)
    async with TestClient(TestServer(create_app(config))) as client:
        for name, data in uploads.items():
            response = await client.put("/upload", params={"name": name}, data=data)
            assert response.status == 201, await response.text()
        yield client
    if request.param == "s3":
        for name in s3.environ():
            del os.environ[name]


async def download(client, name="a.wav", method="GET", **kwargs):
    return await client.request(method, "/download", params={"name": name}, **kwargs)


async def last_modified(client) -> datetime:
    return parsedate_to_datetime((await download(client, method="HEAD")).headers["Last-Modified"])


def asctime(when: datetime) -> str:
    """The asctime form of an HTTP date, which RFC 9110 says recipients accept."""
    return f"{when:%a %b} {when.day:2d} {when:%H:%M:%S %Y}"


def rfc850(when: datetime) -> str:
    return f"{when:%A, %d-%b-%y %H:%M:%S} GMT"


async def problem(response, status: int) -> dict:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    return body


@shared
async def test_the_bytes_and_their_headers(served):
    response = await download(served)
    assert response.status == 200
    assert await response.read() == DATA
    headers = response.headers
    assert headers["Content-Type"] == "audio/wav"
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == ETAG  # strong: no W/
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"a.wav\"; filename*=UTF-8''a.wav")
    info = await (await served.get("/info", params={"name": "a.wav"})).json()
    created = datetime.fromisoformat(info["created_at"])
    assert parsedate_to_datetime(headers["Last-Modified"]) == created.replace(microsecond=0)
    assert headers["Last-Modified"].endswith(" GMT")


@shared
@pytest.mark.parametrize("name", FORMATS)
async def test_content_type_follows_the_detected_format(served, name):
    response = await download(served, name)
    assert response.status == 200
    assert response.headers["Content-Type"] == FORMATS[name][2]
    body = await response.read()
    assert response.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'


@shared
@pytest.mark.parametrize("name, disposition", [
    ("Ünïcødé ♫.wav",
     "attachment; filename=\"Unic_de _.wav\"; "
     "filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20%E2%99%AB.wav"),
    ('say "hi" 100%.wav',
     "attachment; filename=\"say _hi_ 100_.wav\"; filename*=UTF-8''say%20%22hi%22%20100%25.wav"),
    ("日本.wav", "attachment; filename=\"__.wav\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.wav"),
])
async def test_disposition_has_an_ascii_fallback_and_the_exact_name(served, name, disposition):
    assert (await download(served, name)).headers["Content-Disposition"] == disposition


@shared
@pytest.mark.parametrize("name", NAMES)
async def test_every_disposition_parses_back_to_the_name(served, name):
    header = (await download(served, name)).headers["Content-Disposition"]
    kind, fallback, exact = header.split("; ")
    assert kind == "attachment"
    # The fallback is one quoted-string of printable ASCII with nothing to unescape.
    assert fallback.startswith('filename="') and fallback.endswith('"')
    inside = fallback[len('filename="'):-1]
    assert inside.isascii() and inside.isprintable() and not set(inside) & set('"\\%')
    assert len(inside) == len(name)  # a character for a character: accents off, or '_'
    # RFC 8187: UTF-8, then percent-encoding of everything but attr-chars.
    assert exact.startswith("filename*=UTF-8''")
    value = exact[len("filename*=UTF-8''"):]
    assert set(value) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789!#$&+-.^_`|~%")
    assert urllib.parse.unquote(value, errors="strict") == name


@shared
@pytest.mark.parametrize("value, kind", [("1", "inline"), ("true", "inline"), ("YES", "inline"),
                                         ("0", "attachment"), ("", "attachment")])
async def test_inline_for_players(served, value, kind):
    response = await served.get("/download", params={"name": "a.wav", "inline": value})
    assert response.status == 200
    assert response.headers["Content-Disposition"] == (
        f"{kind}; filename=\"a.wav\"; filename*=UTF-8''a.wav")


@shared
@pytest.mark.parametrize("header, first, last", [
    ("bytes=0-99", 0, 99),
    ("bytes=0-0", 0, 0),
    ("bytes=100-", 100, SIZE - 1),  # open-ended
    ("bytes=-100", SIZE - 100, SIZE - 1),  # the last 100 bytes
    (f"bytes=50-{SIZE + 1000}", 50, SIZE - 1),  # an end past EOF is clamped
    (f"bytes=50-{SIZE - 1}", 50, SIZE - 1),
    (f"bytes=-{SIZE * 2}", 0, SIZE - 1),  # a suffix longer than the file is all of it
    (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
    (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
])
async def test_one_range_is_206(served, header, first, last):
    response = await download(served, headers={"Range": header})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.headers["ETag"] == ETAG
    assert await response.read() == DATA[first:last + 1]


@shared
async def test_head_of_a_range(served):
    response = await download(served, method="HEAD", headers={"Range": "bytes=-100"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {SIZE - 100}-{SIZE - 1}/{SIZE}"
    assert response.headers["Content-Length"] == "100"
    assert await response.read() == b""


@shared
@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE}",
                                    f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416(served, header):
    response = await download(served, headers={"Range": header})
    body = await problem(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert str(SIZE) in body["detail"]


@shared
@pytest.mark.parametrize("header", [
    "bytes=0-9,20-29",  # several ranges
    "bytes=0-9, -5",
    "bytes=abc",
    "bytes=-",
    "bytes=",
    "items=0-9",  # another unit
    "bytes=9-1",  # last before first
    "bytes=0x10-0x20",
    "bytes=1.5-2",
    "bytes=\u0660-\u0669",  # Arabic-Indic digits are no HTTP DIGIT
])
async def test_ranges_we_do_not_serve_give_the_whole_file(served, header):
    response = await download(served, headers={"Range": header})
    assert response.status == 200
    assert "Content-Range" not in response.headers
    assert await response.read() == DATA


@shared
@pytest.mark.parametrize("header", [
    ETAG, f'"other", {ETAG}', f'"other",{ETAG}', f"W/{ETAG}", f'W/"other", W/{ETAG}', "*",
])
async def test_if_none_match_is_304(served, header):
    response = await download(served, headers={"If-None-Match": header})
    assert response.status == 304, header
    assert response.headers["ETag"] == ETAG
    assert "Last-Modified" in response.headers
    assert await response.read() == b""


@shared
@pytest.mark.parametrize("header", ['"other"', ETAG[:-2] + '"', ETAG.strip('"'), '"", W/""'])
async def test_if_none_match_naming_something_else_is_200(served, header):
    response = await download(served, headers={"If-None-Match": header})
    assert response.status == 200
    assert await response.read() == DATA


@shared
async def test_if_modified_since(served):
    modified = await last_modified(served)
    for header, status in (
        (format_datetime(modified, usegmt=True), 304),  # at Last-Modified
        (format_datetime(modified + timedelta(seconds=1), usegmt=True), 304),  # after
        (format_datetime(modified - timedelta(seconds=1), usegmt=True), 200),  # before
        (asctime(modified), 304),  # the obsolete forms are HTTP dates too
        (asctime(modified - timedelta(seconds=1)), 200),
        (rfc850(modified), 304),
        ("not a date", 200),
    ):
        response = await download(served, headers={"If-Modified-Since": header})
        assert response.status == status, header
        assert len(await response.read()) == (0 if status == 304 else SIZE)


@shared
async def test_if_none_match_wins_over_if_modified_since(served):
    since = format_datetime(await last_modified(served), usegmt=True)
    response = await download(served, headers={"If-None-Match": '"other"',
                                               "If-Modified-Since": since})
    assert response.status == 200
    response = await download(served, headers={
        "If-None-Match": ETAG, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert response.status == 304


@shared
async def test_a_conditional_304_comes_before_a_range(served):
    response = await download(served, headers={"If-None-Match": ETAG, "Range": "bytes=0-9"})
    assert response.status == 304


@shared
async def test_if_range(served):
    modified = await last_modified(served)
    for if_range, status in (
        (ETAG, 206),
        ('"stale"', 200),
        (f"W/{ETAG}", 200),  # If-Range compares strongly: a weak tag never matches
        (format_datetime(modified, usegmt=True), 206),
        (asctime(modified), 206),
        (format_datetime(modified - timedelta(seconds=1), usegmt=True), 200),
        (format_datetime(modified + timedelta(seconds=1), usegmt=True), 200),  # exact only
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
        ("garbage", 200),
    ):
        response = await download(served, headers={"Range": "bytes=0-9", "If-Range": if_range})
        assert response.status == status, if_range
        assert await response.read() == (DATA[:10] if status == 206 else DATA)


@shared
async def test_head_has_the_headers_and_no_body(served):
    get = await download(served)
    response = await download(served, method="HEAD")
    assert response.status == 200
    for header in ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges",
                   "Content-Disposition"):
        assert response.headers[header] == get.headers[header], header
    assert await response.read() == b""


@shared
async def test_a_non_nfc_name_finds_the_nfc_file(served):
    response = await download(served, "U\u0308ni\u0308c\u00f8de\u0301 \u266b.wav")
    assert response.status == 200
    assert await response.read() == DATA


@shared
async def test_unknown_missing_and_bad_names(served, browser_headers):
    body = await problem(await download(served, "nope.wav"), 404)
    assert "nope.wav" in body["detail"]
    body = await problem(await served.get("/download"), 400)
    assert "?name=" in body["detail"]
    for bad in ("a/b", "a\\b.wav", "..", "", "x" * 256):
        await problem(await download(served, bad), 400)
    # A browser is asked for the name instead.
    response = await served.get("/download", headers=browser_headers)
    assert response.status == 200 and response.content_type == "text/html"
    assert 'name="name"' in await response.text()
    # ... and told in a page when there is no such file.
    response = await download(served, "nope.wav", headers=browser_headers)
    assert response.status == 404 and response.content_type == "text/html"
    assert "nope.wav" in await response.text()


# Deletes the file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_file_gone_from_disk_is_not_served(client, upload, library):
    assert (await upload("a.wav", DATA)).status == 201
    record = await library.db.get("a.wav")
    library.storage.path(record.storage_key).unlink()
    response = await download(client)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_downloads_survive_a_restart(client, upload, config, aiohttp_client):
    assert (await upload("a.wav", DATA)).status == 201
    await client.close()
    again = await aiohttp_client(create_app(config))
    response = await download(again)
    assert response.status == 200 and response.headers["ETag"] == ETAG
    assert await response.read() == DATA
