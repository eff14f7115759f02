"""Rate limits in Redis (--redis): one budget across instances, the script
reloaded after a flush, and requests let through when Redis is down."""

import asyncio
import logging

from audioserver.config import Config, Rate, parse_rate
from audioserver.ratelimit.redis import KEY_PREFIX, RedisBuckets
from audioserver.web.app import create_app
from redisserver import RedisServer
from serverprocess import ServerProcess, free_port

SECRET = "hunter2-not-for-logs"


def instance_config(tmp_path, name: str, redis_url: str, **changes) -> Config:
    """An instance of its own (data directory and all) on one shared Redis."""
    return Config(data_dir=tmp_path / name, redis=redis_url, probe_workers=1,
                  read_rate=parse_rate("3/hour"), **changes)


def database_of(url: str) -> int:
    return int(url.rsplit("/", 1)[1])


async def test_two_instances_spend_one_budget(aiohttp_client, tmp_path, redis_url, redis_server):
    first = await aiohttp_client(create_app(instance_config(tmp_path, "a", redis_url)))
    second = await aiohttp_client(create_app(instance_config(tmp_path, "b", redis_url)))
    answers = [await first.get("/list"), await second.get("/list"), await first.get("/list")]
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    refused = await second.get("/list")
    assert refused.status == 429
    assert 1100 < int(refused.headers["Retry-After"]) <= 1200  # a token every 20 min
    # The bucket is in Redis, not in either data directory's file.
    assert redis_server.command("EXISTS", f"{KEY_PREFIX}reads:address:127.0.0.1",
                                db=database_of(redis_url)) == ":1"
    assert not (tmp_path / "a" / "ratelimit.buckets").exists()


async def test_the_script_is_loaded_again_after_a_flush(redis_url, redis_server):
    buckets = RedisBuckets(redis_url)
    try:
        rate = Rate(2, 3600, "hour")
        assert (await buckets.take("k", rate)).remaining == 1
        assert redis_server.command("SCRIPT", "FLUSH") == "+OK"
        taken = await buckets.take("k", rate)
        assert taken.allowed and taken.remaining == 0
        refused = await buckets.take("k", rate)
        assert not refused.allowed and 1700 < refused.retry_after <= 1800
    finally:
        await buckets.close()


async def test_a_bucket_expires_once_it_would_be_full(redis_url, redis_server):
    buckets = RedisBuckets(redis_url)
    try:
        await buckets.take("k", Rate(10, 1, "second"))
        ttl = int(redis_server.command("PTTL", KEY_PREFIX + "k",
                                       db=database_of(redis_url)).lstrip(":"))
        # One token spent at 10 a second: full again in 100 ms, plus a second's margin.
        assert 0 < ttl <= 1100
    finally:
        await buckets.close()


async def test_when_redis_is_down_requests_go_through(aiohttp_client, tmp_path, caplog):
    nowhere = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    client = await aiohttp_client(create_app(instance_config(tmp_path, "a", nowhere)))
    with caplog.at_level(logging.INFO):
        answers = [await client.get("/list") for _ in range(5)]
    assert [a.status for a in answers] == [200] * 5
    assert "RateLimit-Remaining" not in answers[0].headers
    outages = [r for r in caplog.records if r.name == "audioserver.ratelimit.redis"]
    assert len(outages) == 1  # once per outage, not per request
    assert "cannot be reached" in outages[0].getMessage()
    assert SECRET not in caplog.text


def test_a_bad_redis_url_is_refused_without_repeating_it(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    assert server.run_until_exit("--redis", f"http://:{SECRET}@127.0.0.1/0") == 2
    assert "not a Redis URL" in server.stderr
    assert SECRET not in server.stderr
    server.env["AUDIOSERVER_REDIS"] = f"localhost:{SECRET}"
    assert server.run_until_exit() == 2
    assert "AUDIOSERVER_REDIS" in server.stderr and SECRET not in server.stderr


def test_the_redis_flag_shares_the_budget_across_workers(tmp_path, redis_url):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2)
    try:
        server.start(server.command("--read-rate", "5/hour", "--redis", redis_url))
        statuses = [server.request("GET", "/list")[0] for _ in range(6)]
        assert statuses == [200] * 5 + [429]
    finally:
        server.kill()


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog):
    own = RedisServer()
    own.start()
    buckets = RedisBuckets(f"redis://127.0.0.1:{own.port}/0")
    try:
        rate = Rate(10, 3600, "hour")
        with caplog.at_level(logging.INFO, logger="audioserver.ratelimit.redis"):
            assert (await buckets.take("k", rate)).remaining == 9
            own.process.kill()
            own.process.wait()
            assert [await buckets.take("k", rate) for _ in range(3)] == [None] * 3
            own.start()  # the same port, empty
            assert (await buckets.take("k", rate)).remaining == 9
            assert (await buckets.take("k", rate)).remaining == 8
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2
        assert "cannot be reached" in messages[0] and "answers again" in messages[1]
    finally:
        await buckets.close()
        own.stop()


def test_a_short_metrics_token_is_refused(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    assert server.run_until_exit("--metrics-token", "short") == 2
    assert "at least 16 characters" in server.stderr and "short'" not in server.stderr


async def test_concurrent_takes_from_two_instances_spend_exactly_the_budget(redis_url):
    first, second = RedisBuckets(redis_url), RedisBuckets(redis_url)
    try:
        rate = Rate(50, 3600, "hour")
        takes = [(first if i % 2 else second).take("shared", rate) for i in range(2000)]
        decisions = await asyncio.gather(*takes)
        assert None not in decisions  # a crowd is not an outage
        assert sum(d.allowed for d in decisions) == 50
    finally:
        await first.close()
        await second.close()
