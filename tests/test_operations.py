"""What an operator's tools see: /healthz, /readyz and /metrics."""

import asyncio
import http.client
import shutil
import signal
import socket
import time
from dataclasses import replace

import pytest

import audiofiles
from audioserver.config import parse_rate
from audioserver.web.app import create_app
from serverprocess import ServerProcess, free_port

TOKEN = "a-metrics-token-long-enough"
PROXY = {"X-Forwarded-For": "203.0.113.7"}


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus's text format; 0 if absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        found_name, _, found_labels = sample.partition("{")
        found = ",".join(sorted(found_labels.rstrip("}").split(","))) if found_labels else ""
        if found_name == name and found == wanted:
            return float(value)
    return 0.0


@pytest.fixture
def config(config):
    return replace(config, read_rate=parse_rate("3/hour"), upload_rate=parse_rate("1/hour"))


async def test_health_checks_spend_no_budget(client):
    for path in ["/healthz", "/readyz"] * 5:
        answer = await client.get(path)
        assert answer.status == 200
        assert "RateLimit-Remaining" not in answer.headers
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    assert answer.headers["X-Content-Type-Options"] == "nosniff"  # behind the middlewares
    assert await (await client.get("/readyz")).json() == {"status": "ready"}
    assert (await client.get("/list")).headers["RateLimit-Remaining"] == "2"


@pytest.mark.parametrize("backend", ["sqlite"])  # the disk unmounted (test_s3: the store down)
async def test_not_ready_names_the_backend_and_nothing_of_the_machine(client, config):
    shutil.move(config.data_dir / "audio", config.data_dir / "elsewhere")
    answer = await client.get("/readyz")
    assert answer.status == 503
    assert answer.content_type == "application/problem+json"
    assert answer.headers["Retry-After"] == "5"
    problem = await answer.json()
    assert problem["down"] == ["storage"]
    assert str(config.data_dir) not in await answer.text()
    assert (await client.get("/healthz")).status == 200  # the process itself answers


async def test_a_redis_that_is_down_makes_it_unready_and_is_counted(aiohttp_client, config):
    port = free_port()
    client = await aiohttp_client(create_app(replace(
        config, redis=f"redis://:secret-password@127.0.0.1:{port}/0")))
    for _ in range(3):
        assert (await client.get("/list")).status == 200  # fail open
    answer = await client.get("/readyz")
    assert answer.status == 503
    text = await answer.text()
    assert (await answer.json())["down"] == ["redis"]
    assert str(port) not in text and "secret-password" not in text
    metrics = await (await client.get("/metrics")).text()
    # Three takes for /list, one for /metrics itself, one readiness check.
    assert metric(metrics, "audioserver_backend_errors_total", backend="redis") == 5


async def test_metrics_count_requests_bytes_probes_refusals_and_the_library(client):
    data = audiofiles.wav(1.0)
    assert (await client.put("/upload", params={"name": "a.wav"}, data=data)).status == 201
    refused = await client.put("/upload", params={"name": "b.wav"}, data=data)
    assert refused.status == 429
    ranged = await client.get("/download", params={"name": "a.wav"},
                              headers={"Range": "bytes=0-999"})
    assert ranged.status == 206
    await ranged.read()
    assert (await client.get("/nowhere")).status == 404
    answer = await client.get("/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await answer.text()
    assert metric(text, "audioserver_requests_total", route="upload", method="PUT",
                  status="201") == 1
    assert metric(text, "audioserver_requests_total", route="upload", method="PUT",
                  status="429") == 1
    assert metric(text, "audioserver_requests_total", route="unmatched", method="GET",
                  status="404") == 1
    assert metric(text, "audioserver_request_duration_seconds_count", route="download") == 1
    assert metric(text, "audioserver_uploaded_bytes_total") == len(data)
    assert metric(text, "audioserver_downloaded_bytes_total") == 1000
    assert metric(text, "audioserver_uploads_in_flight") == 0
    assert metric(text, "audioserver_probe_seconds_count") == 1
    assert metric(text, "audioserver_ratelimit_refusals_total", budget="uploads") == 1
    assert metric(text, "audioserver_library_files") == 1
    assert metric(text, "audioserver_library_bytes") == len(data)
    assert metric(text, "audioserver_library_duration_seconds") == pytest.approx(1.0)


async def test_metrics_are_for_this_machine_or_the_token(aiohttp_client, config):
    # Behind a proxy on this machine, the client it names is who asks.
    proxied = replace(config, trusted_proxies=("127.0.0.1",), read_rate=None)
    client = await aiohttp_client(create_app(proxied))
    refused = await client.get("/metrics", headers=PROXY)
    assert refused.status == 403
    assert "--metrics-token" in (await refused.json())["detail"]
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})).status == 200

    client = await aiohttp_client(create_app(replace(proxied, metrics_token=TOKEN, auth="users")))
    assert (await client.get("/metrics", headers=PROXY)).status == 401
    wrong = await client.get("/metrics", headers={**PROXY, "Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert wrong.content_type == "application/problem+json"
    right = await client.get("/metrics", headers={**PROXY, "Authorization": f"Bearer {TOKEN}"})
    assert right.status == 200
    assert "audioserver_library_files" in await right.text()


def test_one_scrape_sums_every_worker_and_health_is_not_logged(tmp_path):
    (tmp_path / "tmp").mkdir()
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2,
                           env={"TMPDIR": str(tmp_path / "tmp")})
    try:
        server.start()
        # A connection per request: the kernel spreads them over both workers.
        for _ in range(20):
            assert server.request("GET", "/list")[0] == 200
            assert server.request("GET", "/healthz")[0] == 200
        for _ in range(10):
            status, _, body = server.request("GET", "/metrics")
            assert status == 200
            assert metric(body.decode(), "audioserver_requests_total", route="list",
                          method="GET", status="200") == 20
        assert any(p.name.startswith("audioserver-metrics-")
                   for p in (tmp_path / "tmp").iterdir())
    finally:
        assert server.stop() == 0
    # After the stop: the access log writes its lines in batches.
    assert '"GET /list' in server.stderr
    assert "/healthz" not in server.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # the metrics directory is gone


def test_a_stopping_server_is_not_ready(tmp_path):
    """While an upload finishes after SIGTERM, /readyz on a connection kept
    alive says 503; the upload still completes."""
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1)
    server.start()
    data = audiofiles.wav(1.0)
    try:
        kept = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        kept.request("GET", "/readyz")
        first = kept.getresponse()
        assert first.status == 200
        first.read()
        upload = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        upload.sendall(f"PUT /upload?name=late.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:1000])
        time.sleep(0.5)  # the upload is in flight
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        kept.request("GET", "/readyz")
        stopping = kept.getresponse()
        assert stopping.status == 503
        assert "stopping" in stopping.read().decode()
        upload.sendall(data[1000:])
        assert upload.recv(100).startswith(b"HTTP/1.1 201")
        upload.close()
        assert server.process.wait(15) == 0
    finally:
        server.kill()
    server.start()
    try:
        assert server.info("late.wav")[0] == 200
    finally:
        server.kill()


async def test_an_upload_is_in_flight_until_it_is_answered(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, read_rate=None)))
    data = audiofiles.wav(1.0)
    halfway = asyncio.Event()
    go_on = asyncio.Event()

    async def body():
        yield data[:1000]
        halfway.set()
        await go_on.wait()
        yield data[1000:]

    upload = asyncio.ensure_future(client.put("/upload", params={"name": "slow.wav"},
                                              data=body()))
    await halfway.wait()
    await asyncio.sleep(0.2)  # the server has the first bytes
    during = await (await client.get("/metrics")).text()
    go_on.set()
    assert (await upload).status == 201
    after = await (await client.get("/metrics")).text()
    assert metric(during, "audioserver_uploads_in_flight") == 1
    assert metric(after, "audioserver_uploads_in_flight") == 0
