"""DNS rebinding: the server answers only to the host names it is meant to
serve. A page on rebound.evil.example that makes its name resolve to
127.0.0.1 talks to us as its own origin; only the Host header gives it away."""

import asyncio
import json
from dataclasses import replace

import pytest

import audiofiles
from audioserver.web.app import create_app
from serverprocess import ServerProcess

REBOUND = "rebound.evil.example"


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    """What this module tests does not depend on where the files are: each
    metadata store and each storage once (SQLite+disk, PostgreSQL+S3)."""
    return request.param


def rebound(port: int) -> dict:
    """What a browser sends from a page on REBOUND, once REBOUND is 127.0.0.1."""
    return {"Host": f"{REBOUND}:{port}", "Origin": f"http://{REBOUND}:{port}",
            "Sec-Fetch-Site": "same-origin"}


async def client_for(aiohttp_client, config, **changes):
    return await aiohttp_client(create_app(replace(config, **changes)))


async def assert_refused(response, name: str = REBOUND) -> None:
    assert response.status == 400
    problem = await response.json()
    assert "--allowed-host" in problem["detail"]
    assert problem["host"] == name


async def test_a_rebound_page_can_neither_read_nor_change_the_library(client, upload):
    await upload("victim.wav")
    forged = rebound(client.port)
    await assert_refused(await client.delete("/delete", params={"name": "victim.wav"},
                                             headers=forged))
    listing = await client.get("/list", headers=forged)
    await assert_refused(listing)
    await assert_refused(await client.put("/upload", params={"name": "new.wav"},
                                          data=audiofiles.wav(), headers=forged))
    names = [item["name"] for item in await (await client.get("/list")).json()]
    assert names == ["victim.wav"]


async def test_a_person_is_shown_a_page_that_says_what_to_do(client):
    response = await client.get("/", headers={**rebound(client.port), "Accept": "text/html"})
    assert response.status == 400
    assert "--allowed-host" in await response.text()


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.0.0.1:8080", "localhost", "LOCALHOST:8080", "localhost.", "[::1]",
    "[::1]:8080", "[0:0::1]:8080",
])
async def test_on_loopback_the_loopback_names_are_served(client, host):
    assert (await client.get("/list", headers={"Host": host})).status == 200


@pytest.mark.parametrize("host", [
    "127.0.0.2", "192.0.2.1", "localhost.evil.example", "evil.example:127.0.0.1", "[::1",
    "::1", "[localhost]", "", "a b", "[::1]:x",
])
async def test_on_loopback_nothing_else_is(client, host):
    assert (await client.get("/list", headers={"Host": host})).status == 400


async def test_a_request_without_host_is_served(client):
    """HTTP/1.0 has no Host; no browser would send a request without one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /list HTTP/1.0\r\nAccept: application/json\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer[:100]


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
async def test_listening_everywhere_any_address_is_served_but_no_other_name(
        aiohttp_client, config, bind):
    client = await client_for(aiohttp_client, config, host=bind)
    for host in ["192.0.2.7:8080", "[2001:db8::7]", "10.1.2.3", "localhost"]:
        assert (await client.get("/list", headers={"Host": host})).status == 200, host
    await assert_refused(await client.get("/list", headers={"Host": "nas.example:8080"}),
                         "nas.example")


async def test_listening_on_one_address_serves_that_address_only(aiohttp_client, config):
    client = await client_for(aiohttp_client, config, host="192.0.2.7")
    assert (await client.get("/list", headers={"Host": "192.0.2.7:8080"})).status == 200
    for host in ["192.0.2.8", "127.0.0.1", "localhost"]:
        assert (await client.get("/list", headers={"Host": host})).status == 400, host


async def test_allowed_hosts_are_served_whatever_the_case_and_in_either_spelling(
        aiohttp_client, config):
    client = await client_for(aiohttp_client, config, host="0.0.0.0",
                              allowed_hosts=("nas.example", "xn--bcher-kva.example"))
    for host in ["nas.example", "NAS.Example:8080", "xn--bcher-kva.example:80"]:
        assert (await client.get("/list", headers={"Host": host})).status == 200, host
    assert (await client.get("/list", headers={"Host": "other.example"})).status == 400


async def test_a_star_serves_any_name(aiohttp_client, config):
    client = await client_for(aiohttp_client, config, allowed_hosts=("*",))
    assert (await client.get("/list", headers={"Host": REBOUND})).status == 200


async def test_only_a_trusted_proxy_says_which_host_was_asked_for(aiohttp_client, config):
    direct = await client_for(aiohttp_client, config, allowed_hosts=("music.example",))
    # Anyone else's X-Forwarded-Host counts for nothing, either way.
    assert (await direct.get("/list", headers={"X-Forwarded-Host": REBOUND})).status == 200
    assert (await direct.get("/list", headers={"Host": "backend:8080",
                                               "X-Forwarded-Host": "music.example"})).status == 400
    proxied = await client_for(aiohttp_client, config, allowed_hosts=("music.example",),
                               trusted_proxies=("127.0.0.1",))
    assert (await proxied.get("/list", headers={"Host": "backend:8080",
                                                "X-Forwarded-Host": "music.example"})).status == 200
    await assert_refused(await proxied.get("/list", headers={"X-Forwarded-Host": REBOUND}))
    # The right-most entry is the one the trusted proxy wrote.
    assert (await proxied.get("/list", headers={
        "X-Forwarded-Host": f"music.example, {REBOUND}"})).status == 400
    assert (await proxied.get("/list", headers={
        "X-Forwarded-Host": f"{REBOUND}, music.example"})).status == 200


# The real server, over real sockets


def test_the_flag_and_the_variable_name_hosts_to_serve(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1,
                           env={"AUDIOSERVER_ALLOWED_HOSTS": "music.example, Bücher.example"})
    server.start(server.command("--allowed-host", "nas.example"))
    try:
        assert server.put("victim.wav", audiofiles.wav())[0] == 201
        status, _, body = server.request("DELETE", "/delete?name=victim.wav",
                                         headers=rebound(server.port))
        assert status == 400
        assert "--allowed-host" in json.loads(body)["detail"]
        assert server.names() == ["victim.wav"]
        # The flag replaces the variable, as --trusted-proxy does.
        for host, status in [("nas.example", 200), ("music.example", 400),
                             ("localhost", 200), (REBOUND, 400)]:
            assert server.request("GET", "/list", headers={"Host": host})[0] == status, host
    finally:
        server.kill()
    server.start()
    try:
        for host, status in [("music.example", 200), ("xn--bcher-kva.example", 200),
                             ("nas.example", 400)]:
            assert server.request("GET", "/list", headers={"Host": host})[0] == status, host
    finally:
        server.kill()


@pytest.mark.parametrize("value", ["http://nas.example", "nas.example:8080", "a..b", "/"])
def test_a_bad_allowed_host_stops_the_server_and_says_why(tmp_path, value):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    assert server.run_until_exit("--allowed-host", value) == 2
    assert "--allowed-host" in server.stderr
