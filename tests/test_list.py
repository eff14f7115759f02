import sqlite3

import pytest
from yarl import URL

import audiofiles

# name -> (seconds, format, subtype, samplerate, channels)
LIBRARY = {
    "b-short.wav": (1.0, "WAV", "PCM_16", 44100, 1),
    "a-long.flac": (5.0, "FLAC", "PCM_16", 48000, 2),
    "C-mid.ogg": (3.0, "OGG", "VORBIS", 44100, 2),
    "d-wavex.wav": (2.0, "WAVEX", "PCM_16", 22050, 1),
    "e-rf64.wav": (4.0, "RF64", "PCM_16", 44100, 1),
    "Éclair.aiff": (2.0, "AIFF", "PCM_16", 44100, 1),
}


@pytest.fixture
async def filled(upload):
    for name, (seconds, format, subtype, samplerate, channels) in LIBRARY.items():
        data = audiofiles.encode(seconds, format, subtype, samplerate=samplerate,
                                 channels=channels)
        assert (await upload(name, data)).status == 201


async def names(client, **params) -> list[str]:
    response = await client.get("/list", params=params)
    assert response.status == 200, await response.text()
    return [item["name"] for item in await response.json()]


async def test_the_whole_library_sorted_by_name(client, filled):
    response = await client.get("/list")
    body = await response.json()
    assert [item["name"] for item in body] == sorted(LIBRARY)
    assert response.headers["X-Total-Count"] == str(len(LIBRARY))
    assert "Link" not in response.headers
    assert set(body[0]) == {"name", "duration", "frames", "samplerate", "channels", "format",
                            "subtype", "content_type", "size", "sha256", "created_at"}


@pytest.mark.parametrize("params, expected", [
    ({"maxduration": "2"}, ["b-short.wav", "d-wavex.wav", "Éclair.aiff"]),
    ({"minduration": "4"}, ["a-long.flac", "e-rf64.wav"]),
    ({"minduration": "2", "maxduration": "3"}, ["C-mid.ogg", "d-wavex.wav", "Éclair.aiff"]),
    ({"maxduration": "0.5"}, []),
    ({"format": "wav"}, ["b-short.wav", "d-wavex.wav", "e-rf64.wav"]),
    ({"format": "WAVEX"}, ["d-wavex.wav"]),
    ({"format": ["Flac", "ogg"]}, ["C-mid.ogg", "a-long.flac"]),
    ({"samplerate": "44100"}, ["C-mid.ogg", "b-short.wav", "e-rf64.wav", "Éclair.aiff"]),
    ({"channels": "2"}, ["C-mid.ogg", "a-long.flac"]),
    ({"q": "SHORT"}, ["b-short.wav"]),
    ({"q": "écl"}, ["Éclair.aiff"]),
    ({"q": ".wav", "maxduration": "2", "channels": "1"}, ["b-short.wav", "d-wavex.wav"]),
])
async def test_filters(client, filled, params, expected):
    query = [(key, value) for key, values in params.items()
             for value in (values if isinstance(values, list) else [values])]
    response = await client.get("/list", params=query)
    assert [item["name"] for item in await response.json()] == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


@pytest.mark.parametrize("sort, expected", [
    ("duration", ["b-short.wav", "d-wavex.wav", "Éclair.aiff", "C-mid.ogg", "e-rf64.wav",
                  "a-long.flac"]),
    ("-duration", ["a-long.flac", "e-rf64.wav", "C-mid.ogg", "Éclair.aiff", "d-wavex.wav",
                   "b-short.wav"]),
    ("-name", sorted(LIBRARY, reverse=True)),
])
async def test_sorting_breaks_ties_by_name(client, filled, sort, expected):
    assert await names(client, sort=sort) == expected


async def test_sort_by_size_and_created(client, filled):
    body = await (await client.get("/list", params={"sort": "-size"})).json()
    assert [item["size"] for item in body] == sorted((item["size"] for item in body), reverse=True)
    assert await names(client, sort="created") == list(LIBRARY)
    assert await names(client, sort="-created") == list(reversed(LIBRARY))


@pytest.mark.parametrize("sort", ["name", "-name", "duration", "-duration", "size", "created"])
async def test_following_next_links_visits_every_item_once(client, filled, sort):
    everything = await names(client, sort=sort, limit="1000")
    seen, url, pages = [], f"/list?sort={sort}&limit=2", 0
    while url:
        response = await client.get(url)
        assert response.headers["X-Total-Count"] == str(len(LIBRARY))
        seen += [item["name"] for item in await response.json()]
        link = response.headers.get("Link")
        url = URL(link[1:link.index(">")]).path_qs if link else None
        assert link is None or link.endswith('>; rel="next"')
        pages += 1
    assert seen == everything
    assert pages == 3


async def test_pages_keep_the_filter(client, filled):
    response = await client.get("/list", params={"format": "wav", "sort": "-duration",
                                                 "limit": "1"})
    seen = [item["name"] for item in await response.json()]
    while "Link" in response.headers:
        link = response.headers["Link"]
        response = await client.get(URL(link[1:link.index(">")]).path_qs)
        assert response.headers["X-Total-Count"] == "3"
        seen += [item["name"] for item in await response.json()]
    assert seen == ["e-rf64.wav", "d-wavex.wav", "b-short.wav"]


@pytest.mark.parametrize("params, named", [
    ({"maxduration": "abc"}, "maxduration"),
    ({"maxduration": "nan"}, "maxduration"),
    ({"minduration": "inf"}, "minduration"),
    ({"minduration": "-1"}, "minduration"),
    ({"samplerate": "0"}, "samplerate"),
    ({"channels": "x"}, "channels"),
    ({"sort": "bogus"}, "sort"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"maxduration": ["1", "2"]}, "maxduration"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
async def test_bad_parameters_are_400_naming_the_parameter(client, params, named):
    query = [(key, value) for key, values in params.items()
             for value in (values if isinstance(values, list) else [values])]
    response = await client.get("/list", params=query)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert named in (await response.json())["detail"]


async def test_a_cursor_from_another_sort_is_refused(client, filled):
    response = await client.get("/list", params={"sort": "duration", "limit": "1"})
    link = response.headers["Link"]
    cursor = link[link.index("cursor=") + 7:link.index(">")]
    response = await client.get("/list", params={"sort": "name", "cursor": cursor})
    assert response.status == 400


async def test_limits_at_the_edges(client, filled):
    assert len(await names(client, limit="1")) == 1
    assert len(await names(client, limit="1000")) == len(LIBRARY)


async def test_filters_and_sorts_use_indexes(client, filled, config):
    """The plans of the statements /list runs: no full scan of the table."""
    db = sqlite3.connect(f"file:{config.db_path}?mode=ro", uri=True)
    try:
        for column in ("duration", "size", "created_at"):
            plan = " ".join(row[3] for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM audio WHERE available = 1 AND duration <= ? "
                f"AND ({column}, name) > (?, ?) ORDER BY {column}, name LIMIT 101",
                (10, 0, "")))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        plan = " ".join(row[3] for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM audio WHERE available = 1 AND duration <= ?",
            (10,)))
        assert "COVERING INDEX" in plan, plan
    finally:
        db.close()


async def test_unavailable_files_are_left_out(client, filled, library):
    keys = await library.db.storage_keys()
    key = next(key for key, (name, _) in keys.items() if name == "b-short.wav")
    await library.db.set_available([key], False)
    assert "b-short.wav" not in await names(client)
    response = await client.get("/info", params={"name": "b-short.wav"})
    assert response.status == 410


async def test_a_browser_gets_a_page_with_names_escaped(client, upload, browser_headers):
    await upload("<img src=x onerror=alert(1)>.wav")
    response = await client.get("/list", headers=browser_headers)
    assert response.content_type == "text/html"
    page = await response.text()
    assert "&lt;img src=x onerror=alert(1)&gt;.wav" in page
    assert "<img src=x" not in page
    response = await client.get("/list", params={"format": "json"}, headers=browser_headers)
    assert response.content_type == "application/json"


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
