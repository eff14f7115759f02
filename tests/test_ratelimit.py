"""Rate limits: token buckets per account or address, one budget across
workers, and the 429 with its headers."""

import asyncio
import json
from dataclasses import replace

import aiohttp
import pytest

import audiofiles
from audioserver.accounts import User
from audioserver.config import Rate, parse_rate
from audioserver.ratelimit.mmap import SLOTS, SharedBuckets
from audioserver.web.app import create_app
from audioserver.web.keys import auth_key
from serverprocess import ServerProcess

PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    """What this module tests does not depend on where the files are: each
    metadata store and each storage once (SQLite+disk, PostgreSQL+S3)."""
    return request.param


@pytest.fixture
def config(config):
    """Small budgets that refill too slowly to matter within a test, so a
    loaded machine cannot hand a token back between two requests."""
    return replace(config, read_rate=parse_rate("3/hour"), write_rate=parse_rate("2/hour"),
                   upload_rate=parse_rate("2/hour"))


async def statuses(client, n: int, path: str = "/list", **kwargs) -> list[int]:
    return [(await client.get(path, **kwargs)).status for _ in range(n)]


async def test_the_budget_runs_out_at_its_edge(client):
    answers = [await client.get("/list") for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert all(a.headers["RateLimit-Limit"] == "3" for a in answers)
    refused = await client.get("/list")
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    problem = await refused.json()
    assert "too many reads from your address: 3 per hour" in problem["detail"]
    assert refused.headers["Retry-After"] == "1200"  # a token every 20 minutes
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) >= 1200


async def test_the_budget_comes_back_after_retry_after(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, read_rate=parse_rate("2/s"))))
    # However slow the machine, some request of these finds the bucket empty.
    for _ in range(50):
        refused = await client.get("/list")
        if refused.status == 429:
            break
    assert refused.status == 429
    assert "2 per second" in (await refused.json())["detail"]
    await asyncio.sleep(int(refused.headers["Retry-After"]))
    assert (await client.get("/list")).status == 200


async def test_errors_and_pages_carry_the_headers_too(client, browser_headers):
    missing = await client.get("/info", params={"name": "nothing.wav"})
    assert missing.status == 404
    assert missing.headers["RateLimit-Remaining"] == "2"
    page = await client.get("/", headers=browser_headers)
    assert page.headers["RateLimit-Remaining"] == "1"


async def test_static_files_cost_nothing(client):
    for _ in range(10):
        response = await client.get("/static/style.css")
        assert response.status == 200
        assert "RateLimit-Limit" not in response.headers


async def test_reads_writes_and_uploads_have_budgets_of_their_own(client):
    assert await statuses(client, 4) == [200, 200, 200, 429]
    upload = await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav())
    assert upload.status == 201
    assert upload.headers["RateLimit-Limit"] == "2"
    deleted = await client.delete("/delete", params={"name": "a.wav"})
    assert deleted.status == 204
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 404
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 429
    assert (await client.put("/upload", params={"name": "b.wav"},
                             data=audiofiles.wav())).status == 201
    assert (await client.put("/upload", params={"name": "c.wav"},
                             data=audiofiles.wav())).status == 429


async def test_no_limit_when_turned_off(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, read_rate=None)))
    responses = [await client.get("/list") for _ in range(10)]
    assert {r.status for r in responses} == {200}
    assert "RateLimit-Limit" not in responses[0].headers


async def test_each_account_has_its_own_budget(aiohttp_client, config):
    app = create_app(replace(config, auth="users"))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    tokens = {}
    for name in ["alice", "bob"]:
        user = User(name, "user")
        await app[auth_key].add_user(user, PASSWORD)
        secret, _ = await app[auth_key].create_token(user, "tests")
        tokens[name] = {"Authorization": f"Bearer {secret}"}
    # One address, three clients: alice, bob and nobody.
    assert await statuses(client, 4, headers=tokens["alice"]) == [200, 200, 200, 429]
    problem = await (await client.get("/list", headers=tokens["alice"])).json()
    assert "from your account" in problem["detail"]
    assert await statuses(client, 3, headers=tokens["bob"]) == [200, 200, 200]
    assert await statuses(client, 1) == [200]


async def test_guessing_tokens_spends_the_address_budget(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, auth="users")))
    guesses = await statuses(client, 4, headers={"Authorization": "Bearer as_guess"})
    assert guesses == [401, 401, 401, 429]
    assert await statuses(client, 1) == [429]


async def test_a_flood_from_one_address_leaves_the_others_alone(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, trusted_proxies=("127.0.0.1",))))
    flood = {"X-Forwarded-For": "203.0.113.7"}
    assert await statuses(client, 10, headers=flood) == [200] * 3 + [429] * 7
    assert await statuses(client, 3, headers={"X-Forwarded-For": "198.51.100.2"}) == [200] * 3
    # The proxy appends the address it saw: what the client wrote is ignored.
    assert await statuses(client, 1, headers={
        "X-Forwarded-For": "198.51.100.9, 203.0.113.7"}) == [429]


async def test_forwarded_for_means_nothing_from_an_untrusted_peer(client):
    answers = [await client.get("/list", headers={"X-Forwarded-For": f"203.0.113.{i}"})
               for i in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]


async def test_every_process_sees_the_same_buckets(tmp_path):
    """Two mappings of one file, as two workers have."""
    first, second = SharedBuckets(tmp_path / "b"), SharedBuckets(tmp_path / "b")
    try:
        rate = Rate(2, 60, "minute")
        assert (await first.take("reads:address:x", rate, now=1000.0)).allowed
        assert (await second.take("reads:address:x", rate, now=1000.0)).allowed
        refused = await first.take("reads:address:x", rate, now=1000.0)
        assert not refused.allowed and refused.retry_after == 30
        assert (await second.take("reads:address:y", rate, now=1000.0)).allowed
        assert (await second.take("reads:address:x", rate, now=1030.0)).allowed
    finally:
        await first.close()
        await second.close()


async def test_when_the_slots_are_full_the_stalest_bucket_gives_way(tmp_path, monkeypatch):
    buckets = SharedBuckets(tmp_path / "b")
    try:
        rate = Rate(1, 3600, "hour")
        # Every key in one slot's neighbourhood: the table is full there.
        monkeypatch.setattr("audioserver.ratelimit.mmap._hash", lambda key: SLOTS * int(key) + 1)
        for key in range(8):
            assert (await buckets.take(str(key), rate, now=1000.0 + key)).allowed
        assert (await buckets.take("8", rate, now=1100.0)).allowed  # takes key 0's slot
        # Key 0 comes back to a full bucket; the others are still counted.
        assert (await buckets.take("0", rate, now=1101.0)).allowed
        assert not (await buckets.take("7", rate, now=1101.0)).allowed
        assert not (await buckets.take("8", rate, now=1101.0)).allowed
    finally:
        await buckets.close()


async def test_a_file_of_another_layout_is_started_afresh(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"something else entirely")
    buckets = SharedBuckets(path)
    try:
        assert (await buckets.take("k", Rate(1, 60, "minute"), now=1.0)).allowed
    finally:
        await buckets.close()


@pytest.mark.parametrize("text", ["12", "0/s", "5/fortnight", "-1/min", ""])
def test_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate(text)


def test_rates_parse():
    assert parse_rate("1200/min") == Rate(1200, 60, "minute")
    assert parse_rate(" 5 / s ").per_second == 5
    assert parse_rate("500/hour").seconds == 3600
    assert parse_rate("OFF") is None


def test_one_budget_whichever_worker_answers(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2)
    try:
        server.start(server.command("--read-rate", "20/hour"))
        # A connection per request: the kernel spreads them over both workers,
        # so if each kept its own buckets, the 21st would still be let in.
        answers = [server.request("GET", "/list") for _ in range(21)]
        assert [status for status, _, _ in answers] == [200] * 20 + [429]
        assert [headers["RateLimit-Remaining"] for _, headers, _ in answers[:3]] == [
            "19", "18", "17"]
        status, headers, body = answers[-1]
        assert int(headers["Retry-After"]) == 180
        assert "20 per hour" in json.loads(body)["detail"]
    finally:
        server.kill()


def test_bad_rate_flags_are_refused(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    assert server.run_until_exit("--read-rate", "lots") == 2
    assert "not a rate" in server.stderr


def test_the_trusted_proxy_flag(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    try:
        server.start(server.command("--read-rate", "2/hour", "--trusted-proxy", "127.0.0.1"))
        first = {"X-Forwarded-For": "203.0.113.7"}
        assert [server.request("GET", "/list", headers=first)[0] for _ in range(3)] == [
            200, 200, 429]
        assert server.request("GET", "/list", headers={"X-Forwarded-For": "198.51.100.2"})[0] == 200
    finally:
        server.kill()
    assert server.run_until_exit("--trusted-proxy", "proxy.example") == 2
    assert "does not appear to be an IPv4 or IPv6 address" in server.stderr
