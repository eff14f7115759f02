"""What goes over the wire beyond the routes themselves: answers to requests
aiohttp cannot parse, one limit for every form field, both form encodings,
what caches may keep, and no path of the machine in any answer."""

import json
import socket
from dataclasses import replace

import aiohttp
import pytest

import audiofiles
from audioserver.accounts import User
from audioserver.auth import SESSION_COOKIE
from audioserver.config import Config
from audioserver.storage.local import AUDIO_DIR
from audioserver.web.app import create_app
from audioserver.web.keys import auth_key
from audioserver.web.securityheaders import SECURITY_HEADERS
from serverprocess import ServerProcess

PASSWORD = "correct horse battery"
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html"}


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    """What this module tests does not depend on where the files are: each
    metadata store and each storage once (SQLite+disk, PostgreSQL+S3)."""
    return request.param


@pytest.fixture
def users_config(config) -> Config:
    return replace(config, auth="users")


@pytest.fixture
async def users_client(aiohttp_client, users_config):
    # No cookie jar: each test says which session a request carries.
    return await aiohttp_client(create_app(users_config), cookie_jar=aiohttp.DummyCookieJar())


@pytest.fixture
async def alice(users_client) -> dict:
    """An account, and the headers of an API token for it."""
    rules = users_client.app[auth_key]
    user = User("alice", "user")
    await rules.add_user(user, PASSWORD)
    secret, _ = await rules.create_token(user, "tests")
    return {"Authorization": f"Bearer {secret}"}


# No path of the machine in an answer


# Changes the stored file behind the server's back: the local disk's own test.
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("headers", [JSON, BROWSER])
async def test_a_stored_file_that_cannot_be_opened_names_no_path(client, upload, config, capfd,
                                                                 headers):
    assert (await upload("a.wav")).status == 201
    # The audio file, not its .meta sidecar.
    [stored] = [p for p in (config.data_dir / AUDIO_DIR).iterdir() if "." not in p.name]
    stored.write_bytes(b"not audio any more" * 100)
    response = await client.get("/waveform", params={"name": "a.wav"}, headers=headers)
    assert response.status == 422
    body = await response.text()
    assert "a.wav" in body
    for path in (str(config.data_dir.resolve()), str(config.data_dir), stored.name):
        assert path not in body, body
    # The operator learns which file it was, from the parser worker's log.
    assert str(stored) in capfd.readouterr().err


# Forms: both encodings, one limit for every field

ENCODINGS = ["urlencoded", "multipart"]


def form(encoding: str, fields: dict) -> aiohttp.FormData:
    return aiohttp.FormData(fields, default_to_multipart=encoding == "multipart")


async def sign_in_as_browser(client, encoding: str) -> tuple[dict, str]:
    """Sign alice in with a form in `encoding`: the cookie header and her CSRF token."""
    response = await client.post("/login", headers=JSON, data=form(
        encoding, {"name": "alice", "password": PASSWORD}))
    assert response.status == 200, await response.text()
    cookie = {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE].value}"}
    account = await (await client.get("/", headers={**cookie, **BROWSER})).text()
    csrf = account.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return cookie, csrf


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_every_small_form_takes_either_encoding(users_client, alice, encoding):
    client = users_client
    cookie, csrf = await sign_in_as_browser(client, encoding)
    created = await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav(),
                               headers=alice)
    assert created.status == 201
    signed = {**cookie, **JSON}

    async def post(path: str, fields: dict, token: str | None = csrf):
        fields = fields if token is None else {**fields, "csrf_token": token}
        return await client.post(path, data=form(encoding, fields), headers=signed,
                                 allow_redirects=False)

    # The CSRF field is read from either encoding: without it, refused.
    assert (await post("/visibility", {"name": "a.wav", "visibility": "private"},
                       token=None)).status == 403
    changed = await post("/visibility", {"name": "a.wav", "visibility": "private"})
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["visibility"] == "private"
    token = await post("/tokens", {"label": "laptop", "password": PASSWORD})
    assert token.status == 201, await token.text()
    assert (await token.json())["label"] == "laptop"
    revoked = await post("/tokens/revoke", {"id": str((await token.json())["id"])})
    assert revoked.status == 204, await revoked.text()
    assert (await post("/delete", {"name": "a.wav"})).status == 204
    assert (await post("/logout", {})).status == 204
    assert (await client.get("/account", headers=signed)).status == 401


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_setup_takes_either_encoding(aiohttp_client, users_config, encoding):
    app = create_app(replace(users_config, setup_code="abc123"))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    made = await client.post("/setup", headers=JSON, data=form(
        encoding, {"code": "abc123", "name": "root", "password": PASSWORD}))
    assert made.status == 200, await made.text()
    assert await made.json() == {"name": "root", "role": "admin"}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("field, size", [("password", 5_000), ("password", 500_000),
                                         ("next", 5_000), ("name", 5_000)])
async def test_a_form_field_over_4_kib_is_refused_on_every_form(users_client, alice, encoding,
                                                                field, size):
    fields = {"name": "alice", "password": PASSWORD, "next": "/list"}
    fields[field] = ("/" if field == "next" else "") + "x" * (size - 1)
    response = await users_client.post("/login", headers=JSON, allow_redirects=False,
                                       data=form(encoding, fields))
    assert response.status == 400
    assert f"form field '{field}' is longer than 4096 bytes" in (await response.json())["detail"]
    assert SESSION_COOKIE not in response.cookies


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_field_of_4_kib_is_still_taken(users_client, alice, encoding):
    """The limit is on bytes, and 4096 of them are allowed."""
    fields = {"name": "alice", "password": "é" * 2048, "next": "/list"}
    response = await users_client.post("/login", headers=JSON, data=form(encoding, fields))
    assert response.status == 401  # read and checked: only the password is wrong


async def test_a_small_form_takes_no_files(users_client, alice):
    data = aiohttp.FormData({"name": "alice", "password": PASSWORD})
    data.add_field("photo", b"\x89PNG" + b"x" * 100, filename="me.png")
    response = await users_client.post("/login", headers=JSON, data=data)
    assert response.status == 400
    assert "only /upload takes files" in (await response.json())["detail"]


# What caches may keep

VIEWER_VARY = {"cookie", "authorization", "accept"}


def cache_control(response) -> set[str]:
    return {d.strip().lower() for d in response.headers.get("Cache-Control", "").split(",")
            if d.strip()}


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}


async def test_a_private_files_bytes_are_never_stored(users_client, alice):
    client = users_client
    await client.put("/upload", params={"name": "a.wav", "visibility": "private"},
                     data=audiofiles.wav(), headers=alice)
    full = await client.get("/download", params={"name": "a.wav"}, headers=alice)
    assert full.status == 200
    assert cache_control(full) == {"private", "no-store"}
    assert {"cookie", "authorization"} <= vary(full)
    again = await client.get("/download", params={"name": "a.wav"},
                             headers={**alice, "If-None-Match": full.headers["ETag"]})
    assert again.status == 304
    assert cache_control(again) == {"private", "no-store"}
    assert {"cookie", "authorization"} <= vary(again)


async def test_a_public_files_bytes_are_private_only_when_someone_signed_in_asks(users_client,
                                                                                 alice):
    client = users_client
    await client.put("/upload", params={"name": "a.wav", "visibility": "public"},
                     data=audiofiles.wav(), headers=alice)
    signed_in = await client.get("/download", params={"name": "a.wav"}, headers=alice)
    assert cache_control(signed_in) == {"private", "no-cache"}
    anonymous = await client.get("/download", params={"name": "a.wav"})
    assert anonymous.status == 200
    # The same bytes for everyone, validated by their ETag, as in open mode;
    # a shared cache keeps them apart from what a signed-in visitor gets.
    assert cache_control(anonymous) == {"no-cache"}
    assert {"cookie", "authorization"} <= vary(anonymous)


@pytest.mark.parametrize("path, headers", [
    ("/list", JSON), ("/list", BROWSER), ("/info?name=a.wav", JSON),
    ("/info?name=a.wav", BROWSER), ("/account", JSON), ("/", BROWSER),
    ("/info?name=missing.wav", JSON), ("/waveform?name=a.wav", JSON),
])
async def test_answers_with_accounts_are_private_and_vary_on_who_asks(users_client, alice,
                                                                      path, headers):
    client = users_client
    await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav(), headers=alice)
    cookie, _ = await sign_in_as_browser(client, "urlencoded")
    # Peaks are JSON whatever Accept says.
    expected_vary = VIEWER_VARY - ({"accept"} if path.startswith("/waveform") else set())
    for who in (alice, cookie, {}):
        response = await client.get(path, headers={**who, **headers})
        if path == "/account" and not who:
            assert response.status == 401
        assert "private" in cache_control(response), (who, response.status)
        assert expected_vary <= vary(response), (who, response.status)


async def test_signing_in_is_private(users_client, alice):
    response = await users_client.post("/login", headers=JSON,
                                       data={"name": "alice", "password": PASSWORD})
    assert SESSION_COOKIE in response.cookies
    assert "private" in cache_control(response)


@pytest.mark.parametrize("path", ["/list", "/info?name=a.wav", "/", "/info?name=missing.wav"])
async def test_without_accounts_answers_vary_on_accept_only(client, upload, path):
    await upload("a.wav")
    response = await client.get(path, headers=JSON)
    assert "private" not in cache_control(response)
    assert vary(response) == {"accept"}


async def test_without_accounts_downloads_stay_cacheable(client, upload):
    await upload("a.wav")
    response = await client.get("/download", params={"name": "a.wav"})
    assert cache_control(response) == {"no-cache"}
    assert "accept" not in vary(response)
    static = await client.get("/static/style.css")
    assert "Vary" not in static.headers and "private" not in cache_control(static)


# Requests aiohttp cannot parse, over a raw socket to the real server

MARK = b"<script>alert(1)</script>"
UNPARSABLE = {
    "a header line over 8 KiB": (
        b"GET /list HTTP/1.1\r\nHost: x\r\nX-Long: " + MARK + b"a" * 9000 + b"\r\n\r\n",
        400, "longer than 8190 bytes"),
    "101 headers": (
        b"GET /list HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, MARK) for i in range(101))
        + b"\r\n", 431, "more than 100 headers"),
    "a request line over 8 KiB": (
        b"GET /list?q=" + MARK + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        400, "longer than 8190 bytes"),
    "a malformed request line": (b"G" + MARK + b"ET /list HTTP/1.1\r\nHost: x\r\n\r\n",
                                 400, "request line"),
    "a space in the path": (b"GET /li" + MARK + b" st HTTP/1.1\r\nHost: x\r\n\r\n",
                            400, "request line"),
    "a control character in a header": (
        b"GET /list HTTP/1.1\r\nHost: x\r\nX-" + MARK + b"\x01: y\r\n\r\n", 400, "malformed"),
    "TLS on the plain port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARK + b"\r\n\r\n",
                              400, "request line"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wire")
    server = ServerProcess(tmp / "data", tmp, workers=1).start()
    yield server
    server.kill()


def exchange(server, request: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes; read the answer until the server hangs up (which it
    must: the socket times out otherwise)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("case", list(UNPARSABLE))
def test_an_unparsable_request_gets_a_problem_with_the_security_headers(server, case):
    request, status, detail = UNPARSABLE[case]
    answer_status, headers, body = exchange(server, request)
    assert answer_status == status
    assert headers["content-type"].startswith("application/problem+json")
    for header, value in SECURITY_HEADERS.items():
        assert headers.get(header.lower()) == value, header
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and detail in problem["detail"]
    # Nothing the client sent comes back.
    for sent in (MARK, b"aaaaaaaa", b"/list", b"/li"):
        assert sent not in body
    assert MARK not in b"".join(value.encode() for value in headers.values())
    # And the server goes on.
    assert server.request("GET", "/list")[0] == 200
