"""GET /list: filters, sorting, keyset pages, errors, and the plans SQLite runs.

The read-only tests share one library, filled once per module (a server per
test would spend most of the time starting probe workers and uploading).
"""

import base64
import json
import re
import sqlite3

import aiosqlite
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

import audiofiles
from audioserver.config import Config
from audioserver.models import AudioRecord
from audioserver.web.app import create_app
from audioserver.web.keys import config_key

# name -> (seconds, format, subtype, samplerate, channels), uploaded in this order.
LIBRARY = {
    "b-short.wav": (1.0, "WAV", "PCM_16", 44100, 1),
    "a-long.flac": (5.0, "FLAC", "PCM_16", 48000, 2),
    "C-mid.ogg": (3.0, "OGG", "VORBIS", 44100, 2),
    "d-wavex.wav": (2.0, "WAVEX", "PCM_16", 22050, 1),
    "e-rf64.wav": (4.0, "RF64", "PCM_16", 44100, 1),
    "Éclair.aiff": (2.0, "AIFF", "PCM_16", 44100, 1),
    # Three more one-second files: ties on duration (and two on size) that
    # pages must split correctly.
    "tie-b.wav": (1.0, "WAV", "PCM_16", 8000, 1),
    "tie-a.wav": (1.0, "WAV", "PCM_16", 8000, 1),
    # '%' and '_' are LIKE's wildcards: q must take them literally.
    "100%_real.wav": (0.5, "WAV", "PCM_16", 8000, 1),
}
# Names sort by code point, as SQLite's BINARY collation does: upper case first, É last.
BY_NAME = sorted(LIBRARY)
FIELDS = {"name", "duration", "frames", "samplerate", "channels", "format", "subtype",
          "content_type", "size", "sha256", "created_at", "owner", "visibility",
          # Tags and edits (issue 16), and the cover art's media type.
          "title", "artist", "album", "track", "date", "genre", "comment", "description",
          "cover"}

shared = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def filled(tmp_path_factory):
    """A client of a server holding LIBRARY; tests using it must not change it."""
    config = Config(data_dir=tmp_path_factory.mktemp("list") / "data",
                    max_upload_size=4 * 1024 * 1024, probe_timeout=10, probe_workers=1)
    async with TestClient(TestServer(create_app(config))) as client:
        for name, (seconds, format, subtype, samplerate, channels) in LIBRARY.items():
            data = audiofiles.encode(seconds, format, subtype, samplerate=samplerate,
                                     channels=channels)
            response = await client.put("/upload", params={"name": name}, data=data)
            assert response.status == 201, await response.text()
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def everything(filled) -> dict[str, dict]:
    """Every metadata object, by name: the facts the expected orders come from."""
    response = await filled.get("/list", params={"limit": "1000"})
    return {item["name"]: item for item in await response.json()}


def pairs(params: dict) -> list[tuple[str, str]]:
    """{"format": ["a", "b"]} -> [("format", "a"), ("format", "b")]."""
    return [(key, value) for key, values in params.items()
            for value in (values if isinstance(values, list) else [values])]


async def names(client, params=()) -> list[str]:
    response = await client.get("/list", params=pairs(dict(params)))
    assert response.status == 200, await response.text()
    return [item["name"] for item in await response.json()]


def next_link(response) -> URL | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return URL(match.group(1))


async def follow_pages(client, params: dict) -> tuple[list[str], int, set[str]]:
    """Every name on every page, following Link: rel="next" exactly as given;
    also how many pages there were and each page's X-Total-Count."""
    response = await client.get("/list", params=pairs(params))
    seen, pages, totals = [], 0, set()
    while True:
        assert response.status == 200, await response.text()
        seen += [item["name"] for item in await response.json()]
        pages += 1
        totals.add(response.headers["X-Total-Count"])
        url = next_link(response)
        if url is None:
            return seen, pages, totals
        # Absolute, and on this server: a client needs nothing else to go on.
        assert url.is_absolute() and url.origin() == client.make_url("/").origin()
        async with client.session.get(url) as next_response:
            await next_response.read()
        response = next_response


@shared
async def test_the_whole_library_sorted_by_name(filled):
    response = await filled.get("/list")
    assert response.content_type == "application/json"
    body = await response.json()
    assert [item["name"] for item in body] == BY_NAME
    assert response.headers["X-Total-Count"] == str(len(LIBRARY))
    assert "Link" not in response.headers
    for item in body:
        assert set(item) == FIELDS
        seconds, format, subtype, samplerate, channels = LIBRARY[item["name"]]
        assert (item["duration"], item["format"], item["subtype"], item["samplerate"],
                item["channels"]) == (seconds, format, subtype, samplerate, channels)
        assert item["frames"] == round(seconds * samplerate)


@shared
@pytest.mark.parametrize("params, expected", [
    ({"maxduration": "2"},
     ["100%_real.wav", "b-short.wav", "d-wavex.wav", "tie-a.wav", "tie-b.wav", "Éclair.aiff"]),
    ({"minduration": "4"}, ["a-long.flac", "e-rf64.wav"]),
    # Both bounds are inclusive, exactly at a file's duration.
    ({"minduration": "2", "maxduration": "2"}, ["d-wavex.wav", "Éclair.aiff"]),
    ({"minduration": "5"}, ["a-long.flac"]),
    ({"maxduration": "0.5"}, ["100%_real.wav"]),
    ({"maxduration": "0.49"}, []),
    ({"minduration": "5.01"}, []),
    ({"minduration": "3", "maxduration": "2"}, []),
    ({"format": "wav"},
     ["100%_real.wav", "b-short.wav", "d-wavex.wav", "e-rf64.wav", "tie-a.wav", "tie-b.wav"]),
    ({"format": "WAV"},
     ["100%_real.wav", "b-short.wav", "d-wavex.wav", "e-rf64.wav", "tie-a.wav", "tie-b.wav"]),
    ({"format": "WAVEX"}, ["d-wavex.wav"]),
    ({"format": "rf64"}, ["e-rf64.wav"]),
    ({"format": ["Flac", "ogg"]}, ["C-mid.ogg", "a-long.flac"]),
    ({"format": ["aiff", "flac", "aiff"]}, ["a-long.flac", "Éclair.aiff"]),
    ({"format": "mp3"}, []),
    ({"samplerate": "44100"}, ["C-mid.ogg", "b-short.wav", "e-rf64.wav", "Éclair.aiff"]),
    ({"samplerate": "8000"}, ["100%_real.wav", "tie-a.wav", "tie-b.wav"]),
    ({"samplerate": "96000"}, []),
    ({"channels": "2"}, ["C-mid.ogg", "a-long.flac"]),
    ({"q": "SHORT"}, ["b-short.wav"]),
    ({"q": "É"}, ["Éclair.aiff"]),
    ({"q": "éCL"}, ["Éclair.aiff"]),
    ({"q": "E\u0301"}, ["Éclair.aiff"]),  # É decomposed, as some keyboards send it
    ({"q": "%"}, ["100%_real.wav"]),
    ({"q": "_"}, ["100%_real.wav"]),
    ({"q": "tie-"}, ["tie-a.wav", "tie-b.wav"]),
    ({"q": "nothing like it"}, []),
    ({"q": ".wav", "maxduration": "2", "channels": "1"},
     ["100%_real.wav", "b-short.wav", "d-wavex.wav", "tie-a.wav", "tie-b.wav"]),
    ({"format": "wav", "samplerate": "44100", "minduration": "1"},
     ["b-short.wav", "e-rf64.wav"]),
    ({"format": ["wav", "aiff"], "minduration": "2", "maxduration": "4", "channels": "1"},
     ["d-wavex.wav", "e-rf64.wav", "Éclair.aiff"]),
    ({"format": "wav", "q": "TIE", "sort": "-name"}, ["tie-b.wav", "tie-a.wav"]),
    # ?format=json picks the representation; it filters nothing.
    ({"format": ["json", "flac"]}, ["a-long.flac"]),
])
async def test_filters(filled, params, expected):
    response = await filled.get("/list", params=pairs(params))
    assert response.status == 200, await response.text()
    assert [item["name"] for item in await response.json()] == expected
    assert response.headers["X-Total-Count"] == str(len(expected))
    assert "Link" not in response.headers


@shared
@pytest.mark.parametrize("sort, expected", [
    ("name", BY_NAME),
    ("-name", BY_NAME[::-1]),
    ("duration", ["100%_real.wav", "b-short.wav", "tie-a.wav", "tie-b.wav", "d-wavex.wav",
                  "Éclair.aiff", "C-mid.ogg", "e-rf64.wav", "a-long.flac"]),
    ("-duration", ["a-long.flac", "e-rf64.wav", "C-mid.ogg", "Éclair.aiff", "d-wavex.wav",
                   "tie-b.wav", "tie-a.wav", "b-short.wav", "100%_real.wav"]),
    ("created", list(LIBRARY)),
    ("-created", list(LIBRARY)[::-1]),
])
async def test_sorting_breaks_ties_by_name(filled, sort, expected):
    assert await names(filled, {"sort": sort}) == expected


@shared
async def test_sorting_by_size(filled, everything):
    by_size = sorted(everything.values(), key=lambda item: (item["size"], item["name"]))
    assert everything["tie-a.wav"]["size"] == everything["tie-b.wav"]["size"]  # a real tie
    assert await names(filled, {"sort": "size"}) == [item["name"] for item in by_size]
    assert await names(filled, {"sort": "-size"}) == [item["name"] for item in by_size[::-1]]


def expected_order(everything: dict, sort: str, keep=lambda item: True) -> list[str]:
    column = {"created": "created_at"}.get(sort.lstrip("-"), sort.lstrip("-"))
    items = sorted((item for item in everything.values() if keep(item)),
                   key=lambda item: (item[column], item["name"]), reverse=sort.startswith("-"))
    return [item["name"] for item in items]


@shared
@pytest.mark.parametrize("sort", ["name", "-name", "duration", "-duration", "size", "-size",
                                  "created", "-created"])
@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_following_next_links_visits_every_item_once(filled, everything, sort, limit):
    seen, pages, totals = await follow_pages(filled, {"sort": sort, "limit": str(limit)})
    assert seen == expected_order(everything, sort)
    assert pages == -(-len(LIBRARY) // limit)  # the last page has no Link
    assert totals == {str(len(LIBRARY))}


@shared
@pytest.mark.parametrize("limit", [1, 2, 3, 5])
@pytest.mark.parametrize("params, keep", [
    ({"format": "wav", "sort": "-duration"}, lambda item: item["format"] in
     ("WAV", "WAVEX", "RF64")),
    ({"samplerate": "44100", "sort": "-size"}, lambda item: item["samplerate"] == 44100),
    ({"maxduration": "2", "sort": "-name"}, lambda item: item["duration"] <= 2),
    ({"q": "wav", "channels": "1", "sort": "-created"},
     lambda item: "wav" in item["name"] and item["channels"] == 1),
])
async def test_pages_keep_the_filter_and_the_order(filled, everything, params, keep, limit):
    # Small limits make SQLite walk the sort's index; larger ones use the filter's.
    expected = expected_order(everything, params["sort"], keep)
    assert len(expected) >= 3
    seen, pages, totals = await follow_pages(filled, {**params, "limit": str(limit)})
    assert seen == expected
    assert pages == -(-len(expected) // limit)
    assert totals == {str(len(expected))}


@shared
async def test_the_link_carries_the_filters_and_a_cursor(filled):
    response = await filled.get("/list", params=pairs({"format": ["wav", "flac"], "q": "A",
                                                        "sort": "-duration", "limit": "1"}))
    query = next_link(response).query
    assert query.getall("format") == ["WAV", "WAVEX", "RF64", "FLAC"]
    assert (query["q"], query["sort"], query["limit"]) == ("A", "-duration", "1")
    assert query["cursor"]


@shared
async def test_limits(filled):
    assert await names(filled, {"limit": "1"}) == BY_NAME[:1]
    assert await names(filled, {"limit": "1000"}) == BY_NAME
    response = await filled.get("/list", params={"limit": "3"})
    assert len(await response.json()) == 3
    assert response.headers["X-Total-Count"] == str(len(LIBRARY))
    assert next_link(response) is not None


@shared
@pytest.mark.parametrize("params, named", [
    ({"maxduration": "abc"}, "maxduration"),
    ({"maxduration": "nan"}, "maxduration"),
    ({"maxduration": "inf"}, "maxduration"),
    ({"minduration": "inf"}, "minduration"),
    ({"minduration": "-1"}, "minduration"),
    ({"maxduration": "-1"}, "maxduration"),
    ({"samplerate": "0"}, "samplerate"),
    ({"samplerate": "99999999999999999999999"}, "samplerate"),
    ({"channels": "x"}, "channels"),
    ({"channels": "1.5"}, "channels"),
    ({"sort": "bogus"}, "sort"),
    ({"sort": "-"}, "sort"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "abc"}, "limit"),
    ({"maxduration": ["1", "2"]}, "maxduration"),
    ({"limit": ["1", "2"]}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
async def test_bad_parameters_are_400_naming_the_parameter(filled, params, named):
    response = await filled.get("/list", params=pairs(params))
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == 400 and body["title"] == "Bad Request"
    assert named in body["detail"]


def cursor_of(url: URL) -> str:
    return url.query["cursor"]


def tampered(cursor: str, change) -> str:
    items = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw = json.dumps(change(items)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@shared
@pytest.mark.parametrize("change", [
    pytest.param(lambda items: [items[0], [items[1]], items[2]], id="list"),  # SQLite can't bind
    pytest.param(lambda items: [items[0], {"v": items[1]}, items[2]], id="object"),
    pytest.param(lambda items: [items[0], 10**30, items[2]], id="past-64-bits"),
    pytest.param(lambda items: [items[0], items[1], "\ud800"], id="lone-surrogate"),
    pytest.param(lambda items: [items[0], items[1], None], id="no-name"),
    pytest.param(lambda items: [items[0], items[1]], id="too-short"),
    pytest.param(lambda items: ["duration", items[1], items[2]], id="another-sort"),
])
async def test_a_tampered_cursor_is_400(filled, change):
    response = await filled.get("/list", params={"sort": "-size", "limit": "2"})
    cursor = cursor_of(next_link(response))
    response = await filled.get("/list", params={"sort": "-size", "limit": "2",
                                                 "cursor": tampered(cursor, change)})
    assert response.status == 400, await response.text()
    assert response.content_type == "application/problem+json"
    assert "cursor" in (await response.json())["detail"]
    # Cut short, it is no cursor at all.
    response = await filled.get("/list", params={"sort": "-size", "cursor": cursor[:-3]})
    assert response.status == 400


@shared
@pytest.mark.parametrize("made_by, used_with", [
    ("duration", "name"), ("duration", "-duration"), ("-size", "-created"), ("name", "-name"),
])
async def test_a_cursor_from_another_sort_is_refused(filled, made_by, used_with):
    response = await filled.get("/list", params={"sort": made_by, "limit": "1"})
    cursor = cursor_of(next_link(response))
    response = await filled.get("/list", params={"sort": used_with, "cursor": cursor})
    assert response.status == 400
    assert "another sort" in (await response.json())["detail"]


def plan(db: sqlite3.Connection, sql: str, params) -> list[str]:
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@shared
@pytest.mark.parametrize("params", [
    {"maxduration": "4.5", "sort": "duration"},
    {"maxduration": "4.5", "sort": "-duration", "limit": "1"},
    {"minduration": "0.75", "sort": "-duration", "limit": "2", "page": "2"},
    {"minduration": "0.6", "sort": "size"},
    {"minduration": "0.6", "sort": "-created", "limit": "1", "page": "2"},
    {"format": ["wav", "flac"]},
    {"samplerate": "44100", "sort": "-duration", "limit": "1"},  # many match: the sort index
    {"samplerate": "22050", "sort": "-duration", "limit": "1"},  # few: the filter's
    {"channels": "2", "sort": "name", "page": "2", "limit": "1"},
    {"q": "tie", "sort": "-name"},
])
async def test_list_queries_use_indexes(filled, monkeypatch, params):
    """Record the statements /list really runs, then ask SQLite how it plans
    them: through an index, never by reading the whole table."""
    params = dict(params)
    pages = int(params.pop("page", 1))
    statements = []
    execute = aiosqlite.Connection.execute

    def recording(self, sql, parameters=None):
        statements.append((sql, parameters))
        return execute(self, sql, parameters)

    monkeypatch.setattr(aiosqlite.Connection, "execute", recording)
    url = URL("/list").with_query(pairs(params))
    for _ in range(pages):
        response = await filled.get(url)
        assert response.status == 200
        url = next_link(response)
        url = url and url.relative()
    monkeypatch.undo()

    selects = [(sql, args) for sql, args in statements if "FROM audio" in sql]
    assert any(sql.startswith("SELECT name,") for sql, _ in selects)  # the page itself
    path = filled.app[config_key].db_path
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for sql, args in selects:
            steps = plan(db, sql, args)
            assert any("USING INDEX" in step or "USING COVERING INDEX" in step
                       for step in steps), (sql, steps)
            assert not any(re.fullmatch(r"SCAN audio", step) for step in steps), (sql, steps)
    finally:
        db.close()


@shared
async def test_html_for_browsers_and_for_format_html(filled, browser_headers):
    for headers, params in ((browser_headers, {}), ({"Accept": "*/*"}, {"format": "html"})):
        response = await filled.get("/list", params={**params, "limit": "2", "sort": "-name"},
                                    headers=headers)
        assert response.status == 200 and response.content_type == "text/html"
        # The page keeps what the JSON says in headers.
        assert response.headers["X-Total-Count"] == str(len(LIBRARY))
        assert any('rel="next"' in link for link in response.headers.getall("Link"))
        page = await response.text()
        assert "Éclair.aiff" in page and "tie-b.wav" in page and "tie-a.wav" not in page
    response = await filled.get("/list", params={"format": "json"}, headers=browser_headers)
    assert response.content_type == "application/json"


async def test_a_page_escapes_names(client, upload, browser_headers):
    name = "<img src=x onerror=alert(1)>.wav"
    assert (await upload(name)).status == 201
    for headers, params in ((browser_headers, {}), ({}, {"format": "html"})):
        response = await client.get("/list", params=params, headers=headers)
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        assert "&lt;img src=x onerror=alert(1)&gt;.wav" in page
        assert "<img src=x" not in page
    # JSON carries the name as it is.
    assert await names(client) == [name]


async def test_an_empty_library(client):
    response = await client.get("/list")
    assert await response.json() == []
    assert response.headers["X-Total-Count"] == "0"
    assert "Link" not in response.headers


async def test_the_default_limit_is_100(client, library):
    # Rows straight into the database: a hundred uploads would take seconds.
    await library.db.insert([
        AudioRecord(f"{n:03}.wav", 1.0, 8000, 8000, 1, "WAV", "PCM_16", "audio/wav", 16044,
                    "0" * 64, f"2026-01-01T00:00:00.{n:06}Z", None, "public", f"key{n:03}")
        for n in range(101)])
    response = await client.get("/list")
    assert [item["name"] for item in await response.json()] == [f"{n:03}.wav" for n in range(100)]
    assert response.headers["X-Total-Count"] == "101"
    url = next_link(response)
    assert url.query["limit"] == "100"
    response = await client.get(url.relative())
    assert [item["name"] for item in await response.json()] == ["100.wav"]
    assert next_link(response) is None


async def test_unavailable_files_are_left_out(client, upload, library):
    for name in ("a.wav", "b.wav"):
        assert (await upload(name)).status == 201
    keys = await library.db.storage_keys()
    key = next(key for key, (name, _) in keys.items() if name == "a.wav")
    await library.db.set_available([key], False)
    response = await client.get("/list")
    assert [item["name"] for item in await response.json()] == ["b.wav"]
    assert response.headers["X-Total-Count"] == "1"
    assert (await client.get("/info", params={"name": "a.wav"})).status == 410


async def test_the_count_follows_every_change(client, upload, library):
    async def total():
        response = await client.get("/list", params={"maxduration": "10"})
        return int(response.headers["X-Total-Count"])

    assert await total() == 0
    await upload("a.wav")
    assert await total() == 1
    await upload("b.wav")
    assert await total() == 2
    await client.delete("/delete", params={"name": "a.wav"})
    assert await total() == 1
    keys = await library.db.storage_keys()
    await library.db.set_available(list(keys), False)
    assert await total() == 0
