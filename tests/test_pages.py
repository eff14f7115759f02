"""The pages as HTML: what a browser is sent, before any script runs."""

from html.parser import HTMLParser

import aiohttp
import pytest
from yarl import URL

import audiofiles

MARKUP_NAME = "<img src=x onerror=alert(1)>.wav"


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and the page's text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs) -> list[dict]:
        return [found for name, found in self.tags
                if name == tag and all(found.get(k) == v for k, v in attrs.items())]

    def one(self, tag: str, **attrs) -> dict:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]


async def page(client, path, browser_headers, **params):
    response = await client.get(path, params=params, headers=browser_headers)
    assert response.content_type == "text/html", await response.text()
    return response, Elements(await response.text())


async def test_pages_point_at_their_json_twin(client, upload, browser_headers):
    await upload("a.wav")
    response, _ = await page(client, "/list", browser_headers, maxduration="5")
    link = response.headers["Link"]
    assert '<http://' not in link
    assert 'rel="alternate"; type="application/json"' in link
    twin = link[1:link.index(">")]
    assert (await client.get(twin, headers=browser_headers)).content_type == "application/json"
    response, _ = await page(client, "/info", browser_headers, name="a.wav")
    assert "format=json" in response.headers["Link"]


async def test_the_twin_keeps_the_format_filter(client, upload, browser_headers):
    """format=wav filters, format=html chooses the page: the twin drops only the latter."""
    await upload("a.wav")
    await upload("b.flac", audiofiles.encode(1.0, "FLAC"))
    response, _ = await page(client, "/list", browser_headers, format=["html", "flac"])
    link = response.headers["Link"]
    twin = link[1:link.index(">")]
    assert twin == "/list?format=flac&format=json"
    response = await client.get(twin, headers=browser_headers)
    assert [item["name"] for item in await response.json()] == ["b.flac"]


async def test_the_filter_form_keeps_its_values(client, upload, browser_headers):
    await upload("a.wav")
    _, html = await page(client, "/list", browser_headers, minduration="0.5", maxduration="2",
                         format="wav", q="a", sort="-duration")
    form = html.one("form", role="search")
    assert form["method"] == "get" and form["action"] == "/list"
    assert html.one("input", name="minduration")["value"] == "0.5"
    assert html.one("input", name="maxduration")["value"] == "2"
    assert html.one("input", name="q")["value"] == "a"
    assert html.one("input", name="sort")["value"] == "-duration"
    checked = [box["value"] for box in html.find("input", name="format") if "checked" in box]
    assert checked == ["wav"]


async def test_the_filter_form_keeps_what_it_does_not_show(client, upload, browser_headers):
    """A shared URL with filters the form has no field for keeps them on Filter."""
    await upload("a.wav")
    _, html = await page(client, "/list", browser_headers, format=["wav", "flac"],
                         samplerate="44100", channels="1", limit="5")
    checked = [box["value"] for box in html.find("input", name="format") if "checked" in box]
    assert checked == ["wav", "flac"]
    hidden = {item["name"]: item["value"] for item in html.find("input", type="hidden")}
    assert hidden == {"samplerate": "44100", "channels": "1", "sort": "name"}
    # The page size is a choice of its own now, keeping a size it does not offer.
    assert "selected" in html.one("option", value="5")


async def test_every_control_has_a_label(client, upload, browser_headers):
    await upload("a.wav")
    for path, params in [("/list", {}), ("/upload", {}), ("/info", {}), ("/download", {}),
                         ("/delete", {})]:
        _, html = await page(client, path, browser_headers, **params)
        labelled = {label.get("for") for label in html.find("label")}
        for control in html.find("input") + html.find("select"):
            if control.get("type") in ("hidden", "checkbox"):
                continue  # the checkboxes sit inside their labels
            assert control["id"] in labelled, (path, control)


async def test_the_table_has_every_column_and_links_each_row(client, upload, browser_headers):
    await upload("a.wav", audiofiles.wav(75.0, samplerate=3000, channels=2))
    _, html = await page(client, "/list", browser_headers)
    text = " ".join(" ".join(html.text).split())
    for heading in ("Name", "Duration", "Format", "Sample rate", "Channels", "Size", "Added"):
        assert heading in text
    assert "1:15 WAV 3000 Hz 2 ch 878.9 KiB" in text
    assert html.find("a", href="/info?name=a.wav")
    assert html.find("time")[0]["datetime"].endswith("Z")


async def test_column_headers_sort_and_toggle(client, upload, browser_headers):
    await upload("a.wav")
    _, html = await page(client, "/list", browser_headers, sort="duration", maxduration="9")
    assert html.one("th", **{"aria-sort": "ascending"})
    links = [a["href"] for a in html.find("a") if "sort=" in a.get("href", "")]
    assert "/list?maxduration=9.0&limit=100&sort=-duration" in links
    assert "/list?maxduration=9.0&limit=100&sort=name" in links
    _, html = await page(client, "/list", browser_headers, sort="-duration")
    assert html.one("th", **{"aria-sort": "descending"})
    assert "/list?limit=100&sort=duration" in [a["href"] for a in html.find("a")]


async def test_empty_library_and_empty_filter(client, upload, browser_headers):
    _, html = await page(client, "/list", browser_headers)
    text = " ".join(html.text)
    assert "The library is empty" in text and "/upload?name=song.wav" in text
    assert html.find("a", href="/upload")
    await upload("a.wav")
    _, html = await page(client, "/list", browser_headers, maxduration="0.1")
    assert "No file matches these filters" in " ".join(html.text)


async def test_pages_follow_the_cursor_and_lead_back_to_the_first(client, upload,
                                                                 browser_headers):
    for name in ("a.wav", "b.wav", "c.wav"):
        await upload(name)
    response, html = await page(client, "/list", browser_headers, limit="2")
    next_link = html.one("a", rel="next")
    assert "cursor=" in next_link["href"]
    assert 'rel="next"' in response.headers["Link"]
    response = await client.get(URL(next_link["href"]).path_qs, headers=browser_headers)
    html = Elements(await response.text())
    assert [a["href"] for a in html.find("a") if a["href"].startswith("/info?")] == [
        "/info?name=c.wav"]
    assert html.find("a", href="/list?sort=name&limit=2")  # the first page
    assert not html.find("a", rel="next")


def page_text(html: Elements) -> str:
    return " ".join(" ".join(html.text).split())


def info_links(html: Elements) -> list[str]:
    return [a["href"].removeprefix("/info?name=") for a in html.find("a")
            if a["href"].startswith("/info?")]


async def test_pages_say_where_they_are_and_lead_back_with_previous(client, upload,
                                                                    browser_headers):
    for name in ("a.wav", "b.wav", "c.wav", "d.wav", "e.wav"):
        await upload(name)
    _, html = await page(client, "/list", browser_headers, limit="2", sort="-name")
    assert "1-2 of 5" in page_text(html) and not html.find("a", rel="prev")
    second = URL(html.one("a", rel="next")["href"]).path_qs
    html = Elements(await (await client.get(second, headers=browser_headers)).text())
    assert info_links(html) == ["c.wav", "b.wav"] and "3-4 of 5" in page_text(html)
    third = URL(html.one("a", rel="next")["href"]).path_qs
    html = Elements(await (await client.get(third, headers=browser_headers)).text())
    assert info_links(html) == ["a.wav"] and "5 of 5" in page_text(html)
    assert "5-5" not in page_text(html)
    assert not html.find("a", rel="next")
    back = html.one("a", rel="prev")["href"]
    assert "before=" in back and "cursor=" not in back
    html = Elements(await (await client.get(back, headers=browser_headers)).text())
    assert info_links(html) == ["c.wav", "b.wav"] and "3-4 of 5" in page_text(html)
    assert html.one("a", rel="next")["href"].endswith(third.split("cursor=")[1])
    html = Elements(await (await client.get(html.one("a", rel="prev")["href"],
                                            headers=browser_headers)).text())
    assert info_links(html) == ["e.wav", "d.wav"] and "1-2 of 5" in page_text(html)
    assert not html.find("a", rel="prev")


async def test_the_page_size_is_a_choice(client, upload, browser_headers):
    await upload("a.wav")
    _, html = await page(client, "/list", browser_headers, limit="25")
    sizes = html.one("select", name="limit")
    assert html.one("label", **{"for": sizes["id"]})
    assert [option["value"] for option in html.find("option") if option["value"].isdigit()
            ] == ["10", "25", "50", "100", "250"]
    assert "selected" in html.one("option", value="25")


async def test_format_rate_and_channels_are_sortable_too(client, upload, browser_headers):
    await upload("a.wav")
    _, html = await page(client, "/list", browser_headers, sort="-samplerate")
    assert html.one("th", **{"aria-sort": "descending"})
    hrefs = [a["href"] for a in html.find("a")]
    for column in ("format", "samplerate", "channels"):
        assert f"/list?limit=100&sort={column}" in hrefs, column


async def test_the_format_filter_offers_the_formats_there_are(client, upload, browser_headers):
    await upload("a.wav")
    await upload("b.flac", audiofiles.encode(1.0, "FLAC"))
    await upload("c.wav", audiofiles.encode(1.0, "RF64"))
    _, html = await page(client, "/list", browser_headers)
    offered = [box["value"] for box in html.find("input", name="format")]
    assert offered == ["flac", "wav"]
    fieldset = page_text(html)
    assert "WAV (with WAVEX and RF64)" in fieldset
    # A format chosen in the URL stays offered, to be unticked.
    _, html = await page(client, "/list", browser_headers, format="mp3")
    assert [box["value"] for box in html.find("input", name="format")] == ["flac", "wav", "mp3"]


async def test_info_page_has_player_waveform_and_actions(client, upload, browser_headers):
    await upload("my song.wav", audiofiles.wav(2.0))
    _, html = await page(client, "/info", browser_headers, name="my song.wav")
    assert html.one("audio")["src"] == "/preview?name=my+song.wav"
    player = html.one("section", **{"aria-label": "Player"})
    assert player["data-peaks-url"] == "/waveform?name=my+song.wav"
    assert player["data-duration"] == "2.0"
    waveform = html.one("canvas", id="waveform")
    assert waveform["role"] == "slider" and waveform["tabindex"] == "0"
    assert waveform["aria-valuemax"] == "2.0"
    assert html.one("a", id="download")["href"] == "/download?name=my+song.wav"
    form = html.one("form", method="post", action="/delete?name=my+song.wav")
    assert "my song.wav" in form["data-confirm"]
    assert html.find("script", src="/static/player.js")
    assert html.one("a", **{"aria-current": "page"})["href"] == "/info"


async def test_names_with_markup_are_text(client, upload, browser_headers):
    await upload(MARKUP_NAME)
    for path, params in [("/list", {}), ("/info", {"name": MARKUP_NAME})]:
        response, html = await page(client, path, browser_headers, **params)
        assert not html.find("img")
        assert MARKUP_NAME in html.text
        assert "&lt;img src=x onerror=alert(1)&gt;.wav" in await response.text()


async def test_the_upload_page_says_what_it_takes(client, browser_headers, config):
    _, html = await page(client, "/upload", browser_headers)
    form = html.one("form", id="upload-form")
    assert form["method"] == "post" and form["enctype"] == "multipart/form-data"
    assert form["data-max-size"] == str(config.max_upload_size)
    field = html.one("input", type="file")
    assert field["name"] == "file" and "multiple" in field
    assert "4.0 MiB" in " ".join(html.text)
    assert html.find("script", src="/static/upload.js")


async def test_the_upload_form_works_without_javascript(client, browser_headers):
    """What the form posts when no script takes over: all files in one body."""
    one = aiohttp.FormData()
    one.add_field("file", audiofiles.wav(), filename="one.wav", content_type="audio/wav")
    response = await client.post("/upload", data=one, headers=browser_headers,
                                 allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/info?name=one.wav"
    several = aiohttp.FormData()
    for name in ("two.wav", "three.wav"):
        several.add_field("file", audiofiles.wav(), filename=name, content_type="audio/wav")
    response = await client.post("/upload", data=several, headers=browser_headers,
                                 allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/list"
    # A refused file is a page that says why.
    again = aiohttp.FormData()
    again.add_field("file", audiofiles.wav(), filename="one.wav", content_type="audio/wav")
    response = await client.post("/upload", data=again, headers=browser_headers)
    assert response.status == 409 and response.content_type == "text/html"
    assert "is taken" in await response.text()


async def test_pages_without_a_name_ask_for_one(client, upload, browser_headers):
    for path, method in [("/info", "get"), ("/download", "get"), ("/delete", "post")]:
        _, html = await page(client, path, browser_headers)
        assert html.one("form", action=path)["method"] == method
        assert html.one("input", name="name")["value"] == ""
    # /delete?name= is the confirmation page a link can lead to.
    await upload("a.wav")
    _, html = await page(client, "/delete", browser_headers, name="a.wav")
    assert html.one("input", name="name")["value"] == "a.wav"
    assert "data-confirm" in html.one("form", action="/delete")


async def test_the_home_page_counts_and_marks_nothing_current(client, upload, browser_headers):
    _, html = await page(client, "/", browser_headers)
    assert "The library is empty" in " ".join(html.text)
    await upload("a.wav", audiofiles.wav(61.0, samplerate=8000))
    await upload("b.wav", audiofiles.wav(60.0, samplerate=8000))
    _, html = await page(client, "/", browser_headers)
    assert "2 files, 2:01 in all." in " ".join(" ".join(html.text).split())
    assert not html.find("a", **{"aria-current": "page"})


async def test_static_files_are_served(client):
    for name in ("style.css", "app.js", "upload.js", "player.js"):
        response = await client.get(f"/static/{name}")
        assert response.status == 200, name


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


async def test_a_delete_from_a_page_is_reported_on_the_library_page(client, upload,
                                                                    browser_headers):
    await upload(MARKUP_NAME)
    await upload("kept.wav")
    deleted = await client.post("/delete", data={"name": MARKUP_NAME}, allow_redirects=False,
                                headers={**browser_headers, **SAME_ORIGIN})
    assert deleted.status == 303
    location = deleted.headers["Location"]
    assert location.startswith("/list?deleted=")
    response = await client.get(location, headers={**browser_headers, **SAME_ORIGIN})
    text = await response.text()
    html = Elements(text)
    assert html.one("p", role="status", **{"class": "notice"})
    assert f"Deleted “{MARKUP_NAME}”." in page_text(html)
    assert "<img" not in text


@pytest.mark.parametrize("fetch_site", [None, "cross-site", "same-site", "none"])
async def test_a_deleted_notice_cannot_be_crafted_from_elsewhere(client, upload,
                                                                 browser_headers, fetch_site):
    """A link on another site, or typed in, says nothing: only our own
    redirect after a delete (a same-origin navigation) shows it."""
    headers = browser_headers | ({"Sec-Fetch-Site": fetch_site} if fetch_site else {})
    _, html = await page(client, "/list", headers, deleted="your password has expired")
    assert not html.find("p", role="status", **{"class": "notice"})
    assert "password" not in page_text(html)


async def test_no_deleted_notice_for_a_file_that_is_there(client, upload, browser_headers):
    await upload("there.wav")
    _, html = await page(client, "/list", {**browser_headers, **SAME_ORIGIN},
                         deleted="there.wav")
    assert not html.find("p", role="status", **{"class": "notice"})


async def test_a_script_deleting_gets_no_redirect(client, upload):
    await upload("a.wav")
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204


async def test_each_row_has_a_play_button_with_what_it_plays(client, upload, browser_headers):
    await upload("my song.wav")
    _, html = await page(client, "/list", browser_headers)
    button = html.one("button", **{"class": "play"})
    assert button["data-src"] == "/preview?name=my+song.wav"
    assert button["aria-label"] == "Play my song.wav" and button["aria-pressed"] == "false"
    assert html.one("audio", id="row-player")
    assert html.one("script", src="/static/library.js")
