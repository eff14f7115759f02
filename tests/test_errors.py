"""Every error: application/problem+json (RFC 9457) for scripts, a page for browsers."""

import re

import pytest

import audiofiles

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    """What this module tests does not depend on where the files are: each
    metadata store and each storage once (SQLite+disk, PostgreSQL+S3)."""
    return request.param


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    assert isinstance(body["type"], str) and isinstance(body["title"], str)
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def header_block(page: str) -> str:
    """The site header and menu every page shares."""
    match = re.search(r"<header\b.*?</header>", page, re.DOTALL)
    assert match, page
    return match.group(0)


async def test_unknown_path_is_a_404_problem(client):
    body = await problem(await client.get("/nowhere"), 404)
    assert body["title"] == "Not Found"
    assert "/upload" in body["detail"] and "/list" in body["detail"]
    await problem(await client.post("/nowhere/deeper"), 404)


@pytest.mark.parametrize("method, path, allowed", [
    ("PATCH", "/list", {"GET", "HEAD"}),
    ("DELETE", "/info", {"GET", "HEAD", "PATCH", "POST"}),
    ("POST", "/download", {"GET", "HEAD"}),
    ("PUT", "/delete", {"GET", "HEAD", "POST", "DELETE"}),
    ("DELETE", "/upload", {"GET", "HEAD", "POST", "PUT"}),
])
async def test_wrong_method_is_a_405_problem_keeping_allow(client, method, path, allowed):
    response = await client.request(method, path)
    body = await problem(response, 405)
    assert body["title"] == "Method Not Allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    # The detail says what was tried and what would work.
    assert method in body["detail"]
    assert all(m in body["detail"] for m in allowed)


async def every_error(client, upload) -> list:
    """One request for each way a client can go wrong, and the status it earns."""
    await upload("a.wav")
    return [
        (await client.get("/nowhere"), 404),
        (await client.patch("/list"), 405),
        (await client.get("/list", params={"maxduration": "abc"}), 400),
        (await client.get("/list", params={"cursor": "bogus"}), 400),
        (await client.get("/info"), 400),
        (await client.get("/info", params={"name": "ghost.wav"}), 404),
        (await client.get("/info", params={"name": "a/b"}), 400),
        (await client.get("/download", params={"name": "ghost.wav"}), 404),
        (await client.get("/download", params={"name": "a.wav"},
                          headers={"Range": "bytes=999999-"}), 416),
        (await client.delete("/delete", params={"name": "ghost.wav"}), 404),
        (await client.delete("/delete"), 400),
        (await upload("a.wav"), 409),
        (await upload("b.wav", b"not audio at all"), 415),
        (await client.get("/waveform", params={"name": "a.wav", "points": "0"}), 400),
    ]


async def test_every_error_is_a_problem_object(client, upload):
    for response, status in await every_error(client, upload):
        body = await problem(response, status)
        assert body["title"] == response.reason, body


async def test_a_browser_gets_errors_as_pages_in_the_layout(client, upload, browser_headers):
    home = header_block(await (await client.get("/", headers=browser_headers)).text())
    await upload("a.wav")
    for path, params, status in (
        ("/info", {"name": "ghost.wav"}, 404),
        ("/download", {"name": "ghost.wav"}, 404),
        ("/nowhere", {}, 404),
        ("/list", {"limit": "0"}, 400),
        ("/info", {"name": "a/b"}, 400),
    ):
        response = await client.get(path, params=params, headers=browser_headers)
        assert response.status == status, path
        assert response.content_type == "text/html"
        page = await response.text()
        assert f"{status} {response.reason}" in page
        assert header_block(page) == home  # the same layout as every other page
        if "name" in params:
            assert params["name"] in page
    # ?format=json wins over the browser's Accept.
    response = await client.get("/info", params={"name": "ghost.wav", "format": "json"},
                                headers=browser_headers)
    await problem(response, 404)


async def test_an_error_page_escapes_what_the_client_sent(client, browser_headers):
    for name, status in (("<img src=x onerror=alert(1)>.wav", 404),  # no such file
                         ("<script>alert(1)</script>.wav", 400)):  # '/' is no name
        response = await client.get("/info", params={"name": name}, headers=browser_headers)
        assert response.status == status
        page = await response.text()
        assert name not in page and name.replace("<", "&lt;").replace(">", "&gt;") in page


async def test_a_wrong_method_from_a_browser_is_a_page_keeping_allow(client, browser_headers):
    response = await client.patch("/list", headers=browser_headers)
    assert response.status == 405 and response.content_type == "text/html"
    assert "GET" in response.headers["Allow"]


async def test_the_problem_names_the_file(client, upload):
    body = await problem(await client.get("/info", params={"name": "ghost.wav"}), 404)
    assert body["name"] == "ghost.wav"
    await upload("a.wav")
    body = await problem(await upload("a.wav", audiofiles.wav(0.5)), 409)
    assert body["name"] == "a.wav"
