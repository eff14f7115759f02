"""The pages as HTML: what a browser is sent, before any script runs."""

import html

import audiofiles


async def page(client, path, browser_headers, **params):
    response = await client.get(path, params=params, headers=browser_headers)
    assert response.content_type == "text/html"
    return response, html.unescape(await response.text())


async def test_pages_point_at_their_json_twin(client, upload, browser_headers):
    await upload("a.wav")
    response, _ = await page(client, "/list", browser_headers, maxduration="5")
    assert '<http://' not in response.headers["Link"]
    assert 'rel="alternate"; type="application/json"' in response.headers["Link"]
    twin = response.headers["Link"][1:response.headers["Link"].index(">")]
    assert (await client.get(twin, headers=browser_headers)).content_type == "application/json"
    response, _ = await page(client, "/info", browser_headers, name="a.wav")
    assert "format=json" in response.headers["Link"]


async def test_the_filter_form_keeps_its_values(client, upload, browser_headers):
    await upload("a.wav")
    _, text = await page(client, "/list", browser_headers, minduration="0.5", maxduration="2",
                         format="wav", q="a", sort="-duration")
    assert 'name="minduration" type="number" min="0" step="any" inputmode="decimal"\n' \
           '         value="0.5"' in text
    assert '<option value="wav" selected>' in text
    assert 'name="q" type="search" value="a"' in text
    assert 'name="sort" value="-duration"' in text


async def test_column_headers_sort_and_toggle(client, upload, browser_headers):
    await upload("a.wav")
    _, text = await page(client, "/list", browser_headers, sort="duration", maxduration="9")
    assert 'aria-sort="ascending"' in text
    assert "/list?maxduration=9.0&limit=100&sort=-duration" in text
    assert "/list?maxduration=9.0&limit=100&sort=name" in text


async def test_empty_library_and_empty_filter(client, upload, browser_headers):
    _, text = await page(client, "/list", browser_headers)
    assert "The library is empty" in text and "/upload?name=song.wav" in text
    await upload("a.wav")
    _, text = await page(client, "/list", browser_headers, maxduration="0.1")
    assert "No file matches these filters" in text


async def test_next_page_link_on_the_page(client, upload, browser_headers):
    for name in ("a.wav", "b.wav", "c.wav"):
        await upload(name)
    _, text = await page(client, "/list", browser_headers, limit="2")
    assert 'rel="next"' in text and "cursor=" in text


async def test_info_page_has_player_waveform_and_actions(client, upload, browser_headers):
    await upload("my song.wav", audiofiles.wav(2.0))
    _, text = await page(client, "/info", browser_headers, name="my song.wav")
    assert 'src="/download?name=my+song.wav&inline=1"' in text
    assert 'data-peaks-url="/waveform?name=my+song.wav&points=1000"' in text
    assert 'role="slider"' in text and "data-confirm=" in text
    assert "/static/player.js" in text


async def test_static_files_are_served(client):
    for name in ("style.css", "app.js", "upload.js", "player.js"):
        response = await client.get(f"/static/{name}")
        assert response.status == 200, name
