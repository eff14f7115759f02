"""Defences against hostile browsers and clients: security headers, and the
limits on what one request may send."""

import select
import socket
import sqlite3
import time

import pytest

import audiofiles
from audioserver.storage.local import TEMP_DIR
from audioserver.web.securityheaders import SECURITY_HEADERS
from serverprocess import ServerProcess


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    """What this module tests does not depend on where the files are: each
    metadata store and each storage once (SQLite+disk, PostgreSQL+S3)."""
    return request.param


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


# Slow and oversized requests, against the real server over real sockets


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """Floors small enough to test: 2 s for headers, a body 2 s plus 1 s per 10 KiB."""
    tmp = tmp_path_factory.mktemp("strict")
    server = ServerProcess(tmp / "data", tmp, workers=1)
    server.start(server.command("--header-timeout", "2", "--body-timeout", "2",
                                "--body-min-rate", "10K"))
    yield server
    server.kill()


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has hung up (or answered and hung up)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536, socket.MSG_PEEK) == b"" or True
    except ConnectionResetError:
        return True


def test_connections_that_trickle_their_headers_are_dropped(strict_server):
    slow = [connect(strict_server) for _ in range(50)]
    for sock in slow:
        sock.sendall(b"GET /list HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    open_ = set(slow)
    served_meanwhile = False
    while open_ and time.monotonic() - started < 10:
        for sock in list(open_):
            try:
                sock.send(b"X")  # one byte of a header that never ends
            except (BrokenPipeError, ConnectionResetError):
                open_.discard(sock)
                continue
            if closed_by_server(sock):
                open_.discard(sock)
        if not served_meanwhile:
            # Everyone else is served as usual while they dribble.
            assert strict_server.request("GET", "/list")[0] == 200
            served_meanwhile = True
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    for sock in slow:
        sock.close()
    assert served_meanwhile
    assert not open_, f"{len(open_)} slow connections still open after {elapsed:.1f} s"
    assert elapsed < 6


def test_a_body_that_trickles_is_cut_off_and_leaves_nothing(strict_server):
    data = audiofiles.wav(2.0)
    sock = connect(strict_server)
    sock.sendall(b"PUT /upload?name=slow.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data) + data[:1000])
    started, sent, answer = time.monotonic(), 1000, b""
    while time.monotonic() - started < 10 and not answer:
        if select.select([sock], [], [], 0.5)[0]:
            answer = sock.recv(65536)
            break
        sock.sendall(data[sent:sent + 100])  # 200 bytes a second: below the floor
        sent += 100
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in answer
    assert b"bytes a second at least" in answer
    assert time.monotonic() - started < 6
    assert strict_server.info("slow.wav")[0] == 404
    assert list((strict_server.data_dir / TEMP_DIR).iterdir()) == []
    with sqlite3.connect(strict_server.data_dir / "audioserver.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM audio").fetchone() == (0,)


def test_a_slow_but_steady_upload_gets_through(strict_server):
    """Above the floor is fine, however long it takes overall."""
    data = audiofiles.wav(1.0)  # 88 KB at 40 KB/s: two seconds and more
    sock = connect(strict_server)
    sock.sendall(b"PUT /upload?name=steady.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data))
    for offset in range(0, len(data), 4096):
        sock.sendall(data[offset:offset + 4096])
        time.sleep(0.1)
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


def test_a_form_that_trickles_is_cut_off(strict_server):
    sock = connect(strict_server)
    sock.sendall(b"POST /delete HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 100\r\n\r\nname=")
    sock.settimeout(6)
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.parametrize("headers", [
    {"X-Long": "a" * 9000},
    {f"X-Many-{i}": "1" for i in range(120)},
])
def test_oversized_headers_are_refused_and_the_server_goes_on(strict_server, headers):
    status, _, body = strict_server.request("GET", "/list", headers=headers)
    assert status in (400, 431)
    assert strict_server.request("GET", "/list")[0] == 200


def test_an_overlong_url_is_refused(strict_server):
    status, _, _ = strict_server.request("GET", "/list?q=" + "a" * 9000)
    assert status in (400, 414)


async def test_a_form_of_too_many_parts_is_refused(client):
    form = b"".join(b'--b\r\nContent-Disposition: form-data; name="x%d"\r\n\r\n1\r\n' % i
                    for i in range(1001)) + b"--b--\r\n"
    response = await client.post("/upload", data=form,
                                  headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status == 413
    assert "more than 1000 parts" in (await response.json())["detail"]


async def test_a_long_form_field_is_refused(client):
    form = (b'--b\r\nContent-Disposition: form-data; name="visibility"\r\n\r\n'
            + b"p" * 5000 + b"\r\n--b--\r\n")
    response = await client.post("/upload", data=form,
                                 headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status == 400
    assert "longer than 4096 bytes" in (await response.json())["detail"]
