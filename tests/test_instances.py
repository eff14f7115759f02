"""Several instances behind a load balancer: two real servers (2 workers
each) on one PostgreSQL, one Redis and one library's storage, then nginx in
front of them with the README's configuration (deploy/nginx.conf).

Whatever a client sees must be the same whichever instance answers.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Callable, NamedTuple

import psutil
import pytest

import audiofiles
from audioserver.auth import SESSION_COOKIE
from audioserver.ratelimit.redis import KEY_PREFIX
from nginxserver import NginxServer
from serverprocess import ServerProcess, free_port, query, sha256

PASSWORD = "correct horse battery"
READ_RATE = "30/hour"  # per account, or per address signed out
INSTANCE_ENV = {"AUDIOSERVER_WRITE_RATE": "off", "AUDIOSERVER_UPLOAD_RATE": "off"}
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
MiB = 2**20


class SharedLibrary(NamedTuple):
    """What the instances of one library share: `args(i)` are instance i's
    arguments, `env` what every process needs to reach the store."""

    args: Callable[[int], list[str]]
    env: dict


@pytest.fixture(scope="session")
def shared_storage(tmp_path_factory, s3):
    """Makes a library's storage for a group of instances: one bucket (a
    prefix of the session's) for all of them, and a data directory each, as
    on several machines: uploads in flight, the cache and the metrics stay
    an instance's own."""
    def new_library() -> SharedLibrary:
        url = s3.new_library()
        data = [tmp_path_factory.mktemp("instance") / "data" for _ in range(2)]
        return SharedLibrary(
            lambda i: ["--data-dir", str(data[i]), "--storage", url, "--s3-path-style"],
            s3.environ())
    return new_library


class Instances:
    """Two instances of one library, each with 2 workers."""

    def __init__(self, tmp_path, storage, database: str, redis: str, *flags: str):
        self.storage, self.database, self.redis = storage, database, redis
        self.redis_db = int(redis.rsplit("/", 1)[1])
        self.servers = []
        for i in range(2):
            logs = tmp_path / f"instance-{i}"
            logs.mkdir()
            server = ServerProcess(logs / "unused", logs, workers=2,
                                   env={**INSTANCE_ENV, **storage.env})
            self.servers.append(server)
            server.start([sys.executable, "-m", "audioserver", "--port", str(server.port),
                          "--workers", "2", *storage.args(i), "--database", database,
                          "--redis", redis, "--auth", "users", "--trusted-proxy", "127.0.0.1",
                          "--read-rate", READ_RATE, *flags])

    def command(self, *args: str, stdin: str = ""):
        """`python -m audioserver ARGS` on this library."""
        return subprocess.run([sys.executable, "-m", "audioserver", *args,
                               *self.storage.args(0), "--database", self.database],
                              input=stdin, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **self.storage.env})

    def account(self, name: str) -> dict:
        """A new account and the headers of an API token for it."""
        done = self.command("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        done = self.command("token", "create", name)
        assert done.returncode == 0, done.stderr
        return {"Authorization": f"Bearer {done.stdout.strip()}"}

    def kill(self) -> None:
        for server in self.servers:
            server.kill()


@pytest.fixture(scope="module")
def instances(tmp_path_factory, shared_storage, postgres, redis_server):
    pair = Instances(tmp_path_factory.mktemp("instances"), shared_storage(),
                     postgres.create_database(), redis_server.url())
    yield pair
    pair.kill()


@pytest.fixture(scope="module")
def nginx(instances):
    server = NginxServer([s.port for s in instances.servers]).start()
    yield server
    server.stop()


def request(port: int, method: str, path: str, body=None, headers=None, source="127.0.0.1"):
    """(status, headers, body) over a connection of its own from `source`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                            source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_what_one_instance_stores_the_other_serves(instances):
    first, second = instances.servers
    token = instances.account("ann")
    data = audiofiles.wav(2.0)
    status, _, body = request(first.port, "PUT", "/upload?name=across.wav", data, token)
    assert status == 201
    stored = json.loads(body)
    status, _, body = request(second.port, "GET", "/list?q=across", headers=token)
    assert [item["name"] for item in json.loads(body)] == ["across.wav"]
    status, _, body = request(second.port, "GET", "/info?name=across.wav", headers=token)
    assert status == 200 and json.loads(body) == stored
    status, headers, body = request(second.port, "GET", "/download?name=across.wav",
                                    headers={**token, "Range": "bytes=100-1099"})
    assert status == 206 and body == data[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    status, _, body = request(second.port, "GET", "/download?name=across.wav", headers=token)
    assert sha256(body) == stored["sha256"]
    assert request(second.port, "DELETE", "/delete?name=across.wav", headers=token)[0] == 204
    assert request(first.port, "GET", "/info?name=across.wav", headers=token)[0] == 404
    assert request(first.port, "GET", "/list?q=across", headers=token)[2] == b"[]"


def test_a_budget_spent_on_one_is_spent_on_both(instances, redis_server):
    token = instances.account("bea")
    ports = [server.port for server in instances.servers] * 15
    answers = [request(port, "GET", "/list?limit=1", headers=token) for port in ports]
    assert [status for status, _, _ in answers] == [200] * 30
    assert [int(headers["RateLimit-Remaining"]) for _, headers, _ in answers] == list(
        range(29, -1, -1))
    for server in instances.servers:
        status, headers, _ = request(server.port, "GET", "/list", headers=token)
        assert status == 429 and 60 < int(headers["Retry-After"]) <= 120  # a token in 2 min
    assert redis_server.command("EXISTS", f"{KEY_PREFIX}reads:user:bea",
                                db=instances.redis_db) == ":1"


def test_twenty_uploads_of_one_name_over_both_give_one_201(instances):
    token = instances.account("cy")
    bodies = [audiofiles.wav(0.5 + 0.01 * i) for i in range(20)]
    ports = [instances.servers[i % 2].port for i in range(20)]
    start = threading.Barrier(20)

    def upload(i: int):
        start.wait()
        return request(ports[i], "PUT", "/upload?name=race.wav", bodies[i], token)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(upload, range(20)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] + [409] * 19
    winner = next(i for i, (status, _, _) in enumerate(answers) if status == 201)
    for server in instances.servers:
        status, body = request(server.port, "GET", "/download?name=race.wav", headers=token)[::2]
        assert status == 200 and body == bodies[winner]


def test_a_session_from_one_is_valid_on_the_other_until_signed_out(instances):
    first, second = instances.servers
    instances.account("dee")
    status, headers, _ = request(first.port, "POST", "/login",
                                 f"name=dee&password={PASSWORD.replace(' ', '+')}",
                                 {**JSON, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    secret = re.search(rf"{SESSION_COOKIE}=([^;]+)", headers["Set-Cookie"]).group(1)
    cookie = {"Cookie": f"{SESSION_COOKIE}={secret}"}
    status, _, body = request(second.port, "GET", "/account", headers={**JSON, **cookie})
    assert status == 200 and json.loads(body)["name"] == "dee"
    page = request(second.port, "GET", "/", headers={**HTML, **cookie})[2].decode()
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    status, _, _ = request(second.port, "POST", "/logout",
                           headers={**JSON, **cookie, "X-CSRF-Token": csrf})
    assert status in (200, 204, 303)
    assert request(first.port, "GET", "/account", headers={**JSON, **cookie})[0] == 401
    # A new password, set on the command line, signs out everywhere too.
    status, headers, _ = request(second.port, "POST", "/login",
                                 f"name=dee&password={PASSWORD.replace(' ', '+')}",
                                 {**JSON, "Content-Type": "application/x-www-form-urlencoded"})
    cookie = {"Cookie": headers["Set-Cookie"].split(";")[0]}
    assert request(first.port, "GET", "/account", headers={**JSON, **cookie})[0] == 200
    done = instances.command("user", "passwd", "dee", "--password-stdin",
                             stdin="another long password\n")
    assert done.returncode == 0, done.stderr
    for server in instances.servers:
        assert request(server.port, "GET", "/account", headers={**JSON, **cookie})[0] == 401


def test_a_token_revoked_on_one_is_refused_by_the_other(instances):
    first, second = instances.servers
    token = instances.account("eve")
    status, _, body = request(first.port, "GET", "/account", headers={**JSON, **token})
    (mine,) = json.loads(body)["tokens"]
    assert request(first.port, "DELETE", f"/tokens?id={mine['id']}", headers=token)[0] == 204
    assert request(second.port, "GET", "/account", headers={**JSON, **token})[0] == 401


def test_behind_nginx_uploads_and_downloads_reach_either(instances, nginx):
    token = instances.account("fay")
    data = audiofiles.wav(1.0)
    status, _, body = request(nginx.port, "PUT", "/upload?name=via-nginx.wav", data, token)
    assert status == 201
    form = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + data + b"\r\n--b--\r\n")
    status, _, _ = request(nginx.port, "POST", "/upload", form,
                           {**token, "Content-Type": "multipart/form-data; boundary=b"})
    assert status == 201
    for server in instances.servers:
        for name in ["via-nginx.wav", "form.wav"]:
            status, body = request(server.port, "GET", f"/download?{query(name)}",
                                   headers=token)[::2]
            assert status == 200 and body == data
    status, _, body = request(nginx.port, "GET", "/download?name=via-nginx.wav",
                              headers={**token, "Range": "bytes=0-99"})
    assert status == 206 and body == data[:100]
    assert request(nginx.port, "GET", "/healthz")[0] == 200
    assert request(nginx.port, "GET", "/readyz")[0] == 200


def test_behind_nginx_the_client_address_reaches_the_server(instances, nginx, redis_server):
    # The client is 127.0.0.2; nginx reaches the instances from 127.0.0.1,
    # the --trusted-proxy. What the client writes in X-Forwarded-For itself
    # counts for nothing.
    forged = {"X-Forwarded-For": "203.0.113.9"}
    status, headers, _ = request(nginx.port, "GET", "/list", headers=forged, source="127.0.0.2")
    assert status == 200 and headers["RateLimit-Remaining"] == "29"
    exists = lambda address: redis_server.command(  # noqa: E731
        "EXISTS", f"{KEY_PREFIX}reads:address:{address}", db=instances.redis_db)
    assert exists("127.0.0.2") == ":1"
    assert exists("203.0.113.9") == ":0"


class RssSampler(threading.Thread):
    """The highest sum of the RSS of every process of `servers`, every 50 ms."""

    def __init__(self, servers):
        super().__init__(daemon=True)
        self.servers = servers
        self.peak = 0
        self._stopping = threading.Event()

    def total(self) -> int:
        total = 0
        for server in self.servers:
            for process in [psutil.Process(server.process.pid), *server.descendants()]:
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        return total

    def run(self):
        while not self._stopping.is_set():
            self.peak = max(self.peak, self.total())
            self._stopping.wait(0.05)

    def stop(self) -> int:
        self._stopping.set()
        self.join()
        return self.peak


def test_a_1_gb_upload_through_nginx_keeps_memory_flat(instances, nginx):
    token = instances.account("gil")
    size = 1024 * MiB
    header = _wav_header(size - 44)
    piece = bytes(range(256)) * 4096  # 1 MiB of samples, sent again and again
    digest = hashlib.sha256(header)
    idle = RssSampler(instances.servers).total()
    sampler = RssSampler(instances.servers)
    sampler.start()
    connection = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=600)
    try:
        connection.putrequest("PUT", "/upload?name=big.wav")
        for key, value in token.items():
            connection.putheader(key, value)
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        connection.send(header)
        left = size - len(header)
        while left:
            chunk = piece[:min(len(piece), left)]
            connection.send(chunk)
            digest.update(chunk)
            left -= len(chunk)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
        peak = sampler.stop()
    assert response.status == 201, answer
    assert answer["size"] == size and answer["sha256"] == digest.hexdigest()
    assert peak - idle < 100 * MiB, f"{(peak - idle) / MiB:.0f} MiB over idle"
    assert request(nginx.port, "DELETE", "/delete?name=big.wav", headers=token)[0] == 204


def _wav_header(data_bytes: int) -> bytes:
    """A 44-byte PCM_16 stereo 44.1 kHz header for `data_bytes` of samples."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
            + b"data" + struct.pack("<I", data_bytes))


def test_when_no_instance_answers_nginx_says_503_as_a_problem():
    nginx = NginxServer([free_port(), free_port()]).start()
    try:
        status, headers, body = request(nginx.port, "GET", "/list")
    finally:
        nginx.stop()
    assert status == 503
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "10"
    assert "no AudioServer instance answers" in json.loads(body)["detail"]


def test_behind_nginx_a_stopping_instance_is_not_missed(tmp_path, shared_storage, postgres,
                                                         redis_server):
    """A rolling restart: one instance gets SIGTERM while requests keep
    coming through nginx; every one of them is answered."""
    pair = Instances(tmp_path, shared_storage(), postgres.create_database(),
                     redis_server.url())
    nginx = NginxServer([s.port for s in pair.servers]).start()
    try:
        token = pair.account("ida")
        assert request(nginx.port, "PUT", "/upload?name=a.wav", audiofiles.wav(0.5),
                       token)[0] == 201
        statuses = []
        for i in range(20):  # a budget of 30 reads an hour
            if i == 5:
                pair.servers[0].process.send_signal(signal.SIGTERM)
            statuses.append(request(nginx.port, "GET", "/info?name=a.wav", headers=token)[0])
            time.sleep(0.05)
        assert statuses == [200] * 20
        assert pair.servers[0].process.wait(15) == 0
    finally:
        nginx.stop()
        pair.kill()


def test_kill_9_of_one_loses_nothing_committed(tmp_path, shared_storage, postgres,
                                               redis_server):
    pair = Instances(tmp_path, shared_storage(), postgres.create_database(),
                     redis_server.url())
    try:
        token = pair.account("hal")
        first, second = pair.servers
        committed: dict[str, str] = {}
        stop = threading.Event()

        def uploader(server, prefix: str):
            n = 0
            while not stop.is_set():
                n += 1
                name = f"{prefix}-{n}.wav"
                data = audiofiles.wav(0.2 + n / 1000)
                try:
                    status, _, _ = request(server.port, "PUT", f"/upload?{query(name)}", data,
                                           token)
                except OSError:  # the instance died under it
                    continue
                if status == 201:
                    committed[name] = sha256(data)

        threads = [threading.Thread(target=uploader, args=(s, f"{i}-{j}"))
                   for i, s in enumerate(pair.servers) for j in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while sum(name.startswith("0-") for name in committed) < 10:
            assert time.monotonic() < deadline, "uploads through the first instance stalled"
            time.sleep(0.05)
        first.kill()  # kill -9, supervisor and workers at once, uploads in flight
        before = len(committed)
        while len(committed) < before + 10:
            assert time.monotonic() < deadline, "the second instance stopped serving"
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
        status, _, body = request(second.port, "GET", "/list?limit=1000", headers=token)
        listed = {item["name"]: item["sha256"] for item in json.loads(body)}
        assert committed.items() <= listed.items()
        for name in list(committed)[:5]:
            status, body = request(second.port, "GET", f"/download?{query(name)}",
                                   headers=token)[::2]
            assert status == 200 and sha256(body) == committed[name]
    finally:
        pair.kill()
