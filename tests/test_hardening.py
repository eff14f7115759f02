"""Defences against hostile browsers and clients: security headers, and the
limits on what one request may send."""

import pytest

from audioserver.securityheaders import SECURITY_HEADERS


@pytest.fixture
async def stored(upload):
    assert (await upload("a.wav")).status == 201


@pytest.mark.parametrize("method, path, headers", [
    ("GET", "/", {"Accept": "text/html"}),
    ("GET", "/list", {}),
    ("GET", "/info?name=a.wav", {}),
    ("GET", "/info?name=missing.wav", {}),
    ("GET", "/info?name=missing.wav", {"Accept": "text/html"}),
    ("GET", "/no/such/path", {}),
    ("PATCH", "/list", {}),
    ("GET", "/static/style.css", {}),
    ("GET", "/download?name=a.wav", {}),
    ("GET", "/download?name=a.wav", {"Range": "bytes=0-9"}),
    ("HEAD", "/download?name=a.wav", {}),
    ("GET", "/list?limit=0", {}),
])
async def test_every_response_carries_the_security_headers(client, stored, method, path,
                                                           headers):
    response = await client.request(method, path, headers=headers)
    for header, value in SECURITY_HEADERS.items():
        assert response.headers.get(header) == value, (header, response.status)


async def test_a_not_modified_answer_carries_them_too(client, stored):
    first = await client.get("/download", params={"name": "a.wav"})
    again = await client.get("/download", params={"name": "a.wav"},
                             headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert again.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_policy_forbids_inline_script_and_framing(client):
    policy = (await client.get("/")).headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy


async def test_downloads_are_attachments_unless_a_player_asks(client, stored):
    attachment = await client.get("/download", params={"name": "a.wav"})
    assert attachment.headers["Content-Disposition"].startswith("attachment;")
    inline = await client.get("/download", params={"name": "a.wav", "inline": "1"})
    assert inline.headers["Content-Disposition"].startswith("inline;")
    assert inline.headers["Content-Type"] == "audio/wav"
