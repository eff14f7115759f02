"""AudioServer against nginx on the same machine, in the same run.

Each figure is the median of several runs with its range; each comparison
is a ratio of two figures from this run, because the machine is shared and
noisy. Prints a table and writes the figures as JSON. Run it through
`bench/run`, which installs nginx, wrk and the Python packages first.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from upload_memory import WavSource  # noqa: E402

from audioserver.storage import meta  # noqa: E402
from audioserver.web.listing import encode_cursor  # noqa: E402
from pgserver import PostgresServer  # noqa: E402
from s3 import wait_cached  # noqa: E402
from s3server import S3Server  # noqa: E402
from serverprocess import ServerProcess, free_port  # noqa: E402

MB = 1_000_000
# wrk is one client sending thousands of requests a second: exactly what the
# rate limits stop. The figures measure serving, so the limits are off...
NO_LIMITS = {"AUDIOSERVER_READ_RATE": "off", "AUDIOSERVER_WRITE_RATE": "off",
             "AUDIOSERVER_UPLOAD_RATE": "off"}
# ...except in ratelimit_cost(), where every request spends from a budget
# too large to run out.
HUGE_LIMITS = {"AUDIOSERVER_READ_RATE": "1000000000/s"}
NGINX_CONF = """
user root;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ audio/wav wav; application/json json; }}
    client_body_temp_path {prefix}/body;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /upload/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
    }}
}}
"""


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": [round(v, 3) for v in values]}


def ratio(ours: dict, theirs: dict) -> float:
    return ours["median"] / theirs["median"]


class Nginx:
    def __init__(self, prefix: Path, root: Path, workers: int):
        self.port = free_port()
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "body").mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, root=root, port=self.port,
                                          workers=workers))
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix),
                                         "-g", "daemon off;"])
        deadline = time.monotonic() + 10
        while subprocess.run(["curl", "-s", "-o", "/dev/null", self.url("/")]).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not start: " + (prefix / "error.log").read_text())
            time.sleep(0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class Helper:
    """One of our stand-ins (ceiling.py, prototype.py) as a child process."""

    def __init__(self, script: str, ready_line: str, *args: str):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, str(HERE / script), str(self.port),
                                         *args], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if ready_line not in line:
            raise RuntimeError(f"{script} did not start: {line!r}")
        _wait_for_port(self.port)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while subprocess.run(["curl", "-s", "-o", "/dev/null",
                          f"http://127.0.0.1:{port}/"]).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on port {port}")
        time.sleep(0.1)


def ceiling(workers: int) -> Helper:
    return Helper("ceiling.py", "ceiling serving", str(workers))


def curl(*args: str) -> tuple[int, float]:
    """Run curl; (bytes moved, seconds) as curl itself measured them."""
    out = subprocess.run(["curl", "-s", "-f", "-o", "/dev/null",
                          "-w", "%{size_download} %{size_upload} %{time_total}", *args],
                         check=True, capture_output=True, text=True).stdout
    down, up, seconds = out.split()[-3:]
    return max(int(float(down)), int(float(up))), float(seconds)


def mb_per_s(moved: int, seconds: float) -> float:
    return moved / MB / seconds


def drop_cache(*paths: Path) -> None:
    """Evict the files from the page cache: the next read comes from disk."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def wav_pieces_of(size: int):
    """A valid WAV of `size` bytes, made piece by piece."""
    return WavSource(size).pieces()


class PeakSampler(threading.Thread):
    """The peak of `measure()` (bytes), sampled every 20 ms until stop()."""

    def __init__(self, measure):
        super().__init__(daemon=True)
        self.measure = measure
        self.peak = 0
        self._stopping = threading.Event()

    def run(self):
        while not self._stopping.wait(0.02):
            try:
                self.peak = max(self.peak, self.measure())
            except psutil.NoSuchProcess:  # a process that ended between two samples
                pass

    def stop(self) -> int:
        self._stopping.set()
        self.join()
        return self.peak


def write_wav(path: Path, size: int) -> None:
    with open(path, "wb") as file:
        for piece in wav_pieces_of(size):
            file.write(piece)


def wrk(url: str, seconds: int, connections: int = 64) -> dict:
    """Requests/s and latency percentiles (ms) of one wrk run. A URL may end
    in ' If-None-Match: ETAG': the header is sent with every request."""
    url, _, etag = url.partition(" If-None-Match: ")
    headers = ["-H", f"If-None-Match: {etag}"] if etag else []
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          *headers, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: _ms(re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups())
               for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed requests")
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"]}


def _ms(match: tuple[str, str]) -> float:
    value, unit = match
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def wrk_runs(url: str, runs: int, seconds: int) -> dict:
    results = [wrk(url, seconds) for _ in range(runs)]
    return {key: spread([r[key] for r in results]) for key in ("rps", "p50_ms", "p99_ms")}


def wrk_turns(urls: dict[str, str], runs: int, seconds: int) -> dict:
    """wrk on each of `urls` in turn, run after run (A B A B...): the
    machine's drift falls on all of them alike."""
    results = {name: [] for name in urls}
    for _ in range(runs):
        for name, url in urls.items():
            results[name].append(wrk(url, seconds))
    return {name: {key: spread([r[key] for r in figures]) for key in ("rps", "p50_ms", "p99_ms")}
            for name, figures in results.items()}


def server_processes(server: ServerProcess) -> list[psutil.Process]:
    """Every process of the server: supervisor, workers and their parsers."""
    root = psutil.Process(server.process.pid)
    return [root] + root.children(recursive=True)


def server_rss(server: ServerProcess) -> int:
    """Resident memory of all the server's processes (RSS: shared library
    pages counted once per process; bench/rest_memory.py splits it by process)."""
    total = 0
    for process in server_processes(server):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # a parser that stopped while we looked
            pass
    return total


def server_pss(server: ServerProcess) -> int:
    """The same processes' PSS: each shared page split among its sharers."""
    return sum(process.memory_full_info().pss for process in server_processes(server))


# The measurements

def bulk(tmp: Path, server: ServerProcess, nginx: Nginx, source: Path, runs: int) -> dict:
    size = source.stat().st_size
    base = f"http://127.0.0.1:{server.port}"
    upload = {"raw": [], "multipart": [], "nginx": [], "cp": []}
    for run in range(runs):
        upload["raw"].append(mb_per_s(*curl("-T", str(source), f"{base}/upload?name=raw{run}.wav")))
        server.request("DELETE", f"/delete?name=raw{run}.wav")
        upload["multipart"].append(mb_per_s(*curl(
            "-F", f"file=@{source};filename=form{run}.wav", f"{base}/upload")))
        server.request("DELETE", f"/delete?name=form{run}.wav")
        upload["nginx"].append(mb_per_s(*curl("-T", str(source), nginx.url(f"/upload/{run}.wav"))))
        (tmp / "nginx-root" / "upload" / f"{run}.wav").unlink()
        started = time.perf_counter()
        subprocess.run(["cp", source, tmp / "copy.wav"], check=True)
        subprocess.run(["sync", tmp / "copy.wav"], check=True)  # as durable as a 201
        upload["cp"].append(size / MB / (time.perf_counter() - started))
        (tmp / "copy.wav").unlink()
    subprocess.run(["curl", "-s", "-T", str(source), f"{base}/upload?name=big.wav"], check=True,
                   capture_output=True)
    stored = stored_path(server, "big.wav")
    served = tmp / "nginx-root" / "big.wav"
    urls = {"server": f"{base}/download?name=big.wav", "nginx": nginx.url("/big.wav")}
    download = {}
    for cache in ("warm", "cold"):
        results = {who: [] for who in urls}
        # Turn about, run by run: the machine's drift then falls on both alike.
        for _ in range(runs):
            for who, url in urls.items():
                if cache == "cold":
                    drop_cache(stored, served)
                else:
                    curl(url)
                results[who].append(mb_per_s(*curl(url)))
        for who, figures in results.items():
            download[f"{cache} {who}"] = spread(figures)
    return {"size_bytes": size, "upload": {k: spread(v) for k, v in upload.items()},
            "download": download}


def stored_path(server: ServerProcess, name: str) -> Path:
    db = sqlite3.connect(server.data_dir / "audioserver.sqlite3")
    try:
        (key,) = db.execute("SELECT storage_key FROM audio WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    return server.data_dir / "audio" / key


def small_requests(tmp: Path, server: ServerProcess, nginx: Nginx, runs: int,
                   seconds: int, workers: int) -> dict:
    """/info and /list against nginx's static copies of the same answers and
    against the stack's ceiling (ceiling.py), all in turn."""
    for index in range(150):
        server.put(f"small{index:03d}.wav", wav_bytes(index % 30 + 1))
    base = f"http://127.0.0.1:{server.port}"
    status, headers, body = server.request("GET", "/info?name=small007.wav")
    (tmp / "nginx-root" / "info.json").write_bytes(body)
    info_etag = headers["ETag"]
    status, headers, body = server.request("GET", "/list?maxduration=20&limit=100")
    (tmp / "nginx-root" / "list.json").write_bytes(body)
    list_etag = headers["ETag"]
    stack = ceiling(workers)
    try:
        return wrk_turns({
            "ceiling": stack.url("/constant"),
            "info": f"{base}/info?name=small007.wav",
            "list": f"{base}/list?maxduration=20&limit=100",
            # Conditional: every answer a 304 from the ETag the client has.
            "info 304": f"{base}/info?name=small007.wav If-None-Match: {info_etag}",
            "list 304": f"{base}/list?maxduration=20&limit=100 If-None-Match: {list_etag}",
            "nginx info.json": nginx.url("/info.json"),
            "nginx list.json": nginx.url("/list.json"),
        }, runs, seconds)
    finally:
        stack.stop()


def small_only(tmp: Path, args) -> dict:
    """Just the small-request rows, for a quick look after a change."""
    (tmp / "nginx-root").mkdir()
    server = ServerProcess(tmp / "data", tmp, env=NO_LIMITS, workers=args.workers).start()
    nginx = Nginx(tmp / "nginx", tmp / "nginx-root", args.workers)
    try:
        return small_requests(tmp, server, nginx, args.runs, args.seconds, args.workers)
    finally:
        server.stop()
        nginx.stop()


def small_table(small: dict) -> str:
    """Each small-request figure against nginx's static copy and the ceiling."""
    lines = [f"{'measure':<34}{'ours (median, range)':>26}{'nginx':>26}{'ratio':>8}"
             f"{'ceiling':>26}{'ratio':>8}"]
    for label, ours, static, key in [
            ("/info req/s", "info", "nginx info.json", "rps"),
            ("/list?limit=100 req/s", "list", "nginx list.json", "rps"),
            ("/info 304s req/s", "info 304", "nginx info.json", "rps"),
            ("/list 304s req/s", "list 304", "nginx list.json", "rps"),
            ("/info p99 ms", "info", "nginx info.json", "p99_ms"),
            ("/list p99 ms", "list", "nginx list.json", "p99_ms")]:
        ours, static, top = small[ours][key], small[static][key], small["ceiling"][key]
        lines.append(f"{label:<34}{_cell(ours):>26}{_cell(static):>26}{ratio(ours, static):>8.2f}"
                     f"{_cell(top):>26}{ratio(ours, top):>8.2f}")
    return "\n".join(lines)


def small_uploads(tmp: Path, server: ServerProcess, runs: int, size: int = 10 * MB) -> dict:
    """10 MB multipart uploads, ours against the Flask prototype's
    (prototype.py), in turn; every upload a new name, as the prototype
    refuses a name twice."""
    source = tmp / "small-upload.wav"
    write_wav(source, size)
    flask = Helper("prototype.py", "prototype serving", str(tmp / "prototype-uploads"))
    figures = {"ours": [], "prototype": []}
    try:
        for run in range(runs * 2):  # each is short: twice the runs for the same noise
            name = f"up{run}.wav"
            figures["ours"].append(mb_per_s(*curl(
                "-F", f"file=@{source};filename={name}",
                f"http://127.0.0.1:{server.port}/upload")))
            server.request("DELETE", f"/delete?name={name}")
            figures["prototype"].append(mb_per_s(*curl(
                "-F", f"file=@{source};filename={name}", flask.url("/upload"))))
    finally:
        flask.stop()
    return {"size_bytes": size, **{who: spread(v) for who, v in figures.items()}}


def first_uploads(tmp: Path, workers: int, count: int = 10, size: int = 10 * MB) -> dict:
    """Seconds for each of `count` raw uploads of `size` to a server just
    started: is the first as quick as the tenth?"""
    source = tmp / "first-upload.wav"
    write_wav(source, size)
    (tmp / "first-logs").mkdir()
    server = ServerProcess(tmp / "first-data", tmp / "first-logs", env=NO_LIMITS,
                           workers=workers).start()
    try:
        seconds = [curl("-T", str(source), f"http://127.0.0.1:{server.port}/upload?name=f{i}.wav")[1]
                   for i in range(count)]
    finally:
        server.stop()
    return {"first_ms": seconds[0] * 1000, "later_ms": spread([s * 1000 for s in seconds[1:]])}


def ratelimit_cost(tmp: Path, server: ServerProcess, runs: int, seconds: int,
                   workers: int) -> dict:
    """/info with every request taking a token from the shared buckets, against
    the same server without limits; runs alternate, so the machine's drift
    falls on both alike."""
    (tmp / "limited-logs").mkdir()
    limited = ServerProcess(server.data_dir, tmp / "limited-logs", env=HUGE_LIMITS,
                            workers=workers)
    limited.start()
    try:
        path = "/info?name=small007.wav"
        pairs = [(wrk(f"http://127.0.0.1:{limited.port}{path}", seconds),
                  wrk(f"http://127.0.0.1:{server.port}{path}", seconds)) for _ in range(runs)]
    finally:
        limited.stop()
    return {label: {key: spread([pair[side][key] for pair in pairs])
                    for key in ("rps", "p50_ms", "p99_ms")}
            for side, label in enumerate(["limited", "unlimited"])}


def wav_bytes(frames_k: int) -> bytes:
    return b"".join(wav_pieces_of(44 + frames_k * 4000))


def big_library(tmp: Path, count: int, runs: int, seconds: int, workers: int) -> dict:
    """`count` rows inserted directly (each with an empty file), then measured."""
    (tmp / "big-logs").mkdir()
    server = ServerProcess(tmp / "big-library", tmp / "big-logs", env=NO_LIMITS,
                           workers=workers)
    server.start()  # creates the schema
    server.stop()
    fill_library(server.data_dir, count)
    starts = []
    for _ in range(runs):
        started = time.perf_counter()
        server.start()
        starts.append(time.perf_counter() - started)
        server.stop()
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        deep = min(500, count // 100)
        deep_url = page_url(server.data_dir, deep)
        return {
            "rows": count,
            "start_seconds": spread(starts),
            "info": wrk_runs(f"{base}/info?name=file{count // 2:06d}.wav", runs, seconds),
            "list": wrk_runs(f"{base}/list?maxduration=100&limit=100", runs, seconds),
            "page 1": wrk_runs(f"{base}/list?sort=duration&limit=100", runs, seconds),
            "deep page": wrk_runs(f"{base}{deep_url}", runs, seconds),
            "deep page number": deep,
        }
    finally:
        server.stop()


def fill_library(data_dir: Path, count: int) -> None:
    rows = []
    for index in range(count):
        key = f"{index:032x}"
        (data_dir / "audio" / key).touch()
        frames = 44100 * (1 + index * 7919 % 600)  # durations spread over 10 minutes
        name = f"file{index:06d}.wav"
        created_at = f"2026-01-01T00:00:{index % 60:02d}Z"
        rows.append((name, name, key, frames / 44100, frames, 44100, 2, "WAV", "PCM_16",
                     "audio/wav", frames * 4 + 44, "0" * 64, created_at))
        # With its .meta, as every stored file has: without, the first start
        # would write (and fsync) 100,000 of them.
        (data_dir / "audio" / f"{key}.meta").write_bytes(meta.encode(SimpleNamespace(
            name=name, owner=None, visibility="public", created_at=created_at,
            sha256="0" * 64, size=frames * 4 + 44, texts=dict)))
    db = sqlite3.connect(data_dir / "audioserver.sqlite3")
    with db:
        db.executemany(
            "INSERT INTO audio (name, name_folded, storage_key, duration, frames, samplerate,"
            " channels, format, subtype, content_type, size, sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()


def page_url(data_dir: Path, page: int) -> str:
    """The URL a client reaches by following rel="next" page-1 times."""
    db = sqlite3.connect(data_dir / "audioserver.sqlite3")
    try:
        duration, name = db.execute(
            "SELECT duration, name FROM audio ORDER BY duration, name LIMIT 1 OFFSET ?",
            ((page - 1) * 100 - 1,)).fetchone()
    finally:
        db.close()
    cursor = encode_cursor("duration", (duration, name))
    return f"/list?sort=duration&limit=100&cursor={cursor}"


def memory(server: ServerProcess, gigabyte: int, concurrent: int) -> dict:
    idle, idle_pss = server_rss(server), server_pss(server)
    sampler = PeakSampler(lambda: server_rss(server))
    sampler.start()
    curl_stream = subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-T", "-",
                                    f"http://127.0.0.1:{server.port}/upload?name=huge.wav"],
                                   stdin=subprocess.PIPE)
    for piece in wav_pieces_of(gigabyte):
        curl_stream.stdin.write(piece)
    curl_stream.stdin.close()
    curl_stream.wait()
    one_big = sampler.stop()
    server.request("DELETE", "/delete?name=huge.wav")
    sampler = PeakSampler(lambda: server_rss(server))
    sampler.start()
    statuses = asyncio.run(many_uploads(server.port, concurrent, 5 * 1024 * 1024))
    many = sampler.stop()
    return {"idle_mib": idle / 2**20, "idle_pss_mib": idle_pss / 2**20,
            "one_1gb_upload_peak_mib": one_big / 2**20,
            "concurrent_uploads": concurrent, "concurrent_5mb_peak_mib": many / 2**20,
            "concurrent_statuses": sorted(set(statuses))}


async def many_uploads(port: int, count: int, size: int) -> list[int]:
    body = b"".join(wav_pieces_of(size))
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def one(index):
            url = f"http://127.0.0.1:{port}/upload?name=many{index}.wav"
            async with session.put(url, data=body) as response:
                return response.status
        return await asyncio.gather(*(one(i) for i in range(count)))


def table(results: dict) -> str:
    bulk_, small, big, mem = (results[k] for k in ("bulk", "small", "big_library", "memory"))
    up, down = bulk_["upload"], bulk_["download"]
    rows = [
        ("Download warm, MB/s", down["warm server"], down["warm nginx"]),
        ("Download cold, MB/s", down["cold server"], down["cold nginx"]),
        ("Upload raw, MB/s", up["raw"], up["nginx"]),
        ("Upload multipart, MB/s", up["multipart"], up["nginx"]),
        ("Upload raw vs cp+sync, MB/s", up["raw"], up["cp"]),
        ("Upload multipart 10 MB vs Flask", results["small_uploads"]["ours"],
         results["small_uploads"]["prototype"]),
        (f"100k: page {big['deep page number']} vs page 1 req/s", big["deep page"]["rps"],
         big["page 1"]["rps"]),
        ("/info req/s, rate-limited vs not", results["ratelimit"]["limited"]["rps"],
         results["ratelimit"]["unlimited"]["rps"]),
        ("100k: /info req/s", big["info"]["rps"], small["nginx info.json"]["rps"]),
        ("100k: /list req/s", big["list"]["rps"], small["nginx list.json"]["rps"]),
    ]
    lines = [f"{'measure':<34}{'ours (median, range)':>26}{'theirs':>26}{'ratio':>8}"]
    for label, ours, theirs in rows:
        lines.append(f"{label:<34}{_cell(ours):>26}{_cell(theirs):>26}{ratio(ours, theirs):>8.2f}")
    first = results["first_uploads"]
    lines.append(f"{'First 10 MB upload after start, ms':<34}{first['first_ms']:>26.1f}"
                 f"{_cell(first['later_ms']):>26}  (the next nine)")
    lines.append(f"{'100k: start-up, s':<34}{_cell(big['start_seconds']):>26}")
    lines.append(f"{'100k: /list p99 ms':<34}{_cell(big['list']['p99_ms']):>26}")
    lines.append(f"Memory of all the server's processes (RSS), MiB: idle {mem['idle_mib']:.0f} "
                 f"(PSS {mem['idle_pss_mib']:.0f}); peak "
                 f"during a 1 GB upload {mem['one_1gb_upload_peak_mib']:.0f}; peak during "
                 f"{mem['concurrent_uploads']} concurrent 5 MB uploads "
                 f"{mem['concurrent_5mb_peak_mib']:.0f} (answers: {mem['concurrent_statuses']})")
    return "\n".join(lines)


def _cell(figure: dict) -> str:
    return f"{figure['median']:.1f} ({figure['min']:.1f}-{figure['max']:.1f})"


# The servers backends() measures: (label, database, S3 storage, its flags),
# each a ratio to the first. S3 is SeaweedFS (`weed mini`, as the tests start
# it); without a cache every download streams from the store.
BACKENDS = [
    ("SQLite + disk", "sqlite", False, ()),
    ("PostgreSQL + disk", "postgresql", False, ()),
    ("PostgreSQL + S3", "postgresql", True, ("--cache-size", "0")),
    ("PostgreSQL + S3, cache", "postgresql", True, ("--cache-size", "1G")),
]


def backends(tmp: Path, runs: int, seconds: int, workers: int) -> dict:
    """/info, /list, 10 MB uploads and downloads on each of BACKENDS (a
    throwaway PostgreSQL cluster and SeaweedFS on this machine, as the tests
    start them), the servers measured turn about in one run."""
    postgres, store = PostgresServer(), S3Server()
    servers = {}
    try:
        postgres.start()
        store.start()
        for number, (label, database, s3, flags) in enumerate(BACKENDS):
            servers[label] = backend_server(tmp / f"backend{number}", postgres, store,
                                            database, s3, flags, workers)
            for index in range(150):
                servers[label].put(f"small{index:03d}.wav", wav_bytes(index % 30 + 1))
        source = tmp / "upload.wav"
        write_wav(source, 10 * MB)
        figures = {label: {"info": [], "list": [], "upload": [], "download": []}
                   for label in servers}
        cached = {label for label, _, s3, flags in BACKENDS if s3 and "0" not in flags}
        for run in range(runs):
            for label, server in servers.items():
                one_backend_run(server, figures[label], source, run, seconds,
                                label in cached)
    finally:
        for server in servers.values():
            server.stop()
        postgres.stop()
        store.stop()
    return {label: {"info": {k: spread([r[k] for r in f["info"]]) for k in ("rps", "p99_ms")},
                    "list": {k: spread([r[k] for r in f["list"]]) for k in ("rps", "p99_ms")},
                    "upload_mb_s": spread(f["upload"]), "download_mb_s": spread(f["download"])}
            for label, f in figures.items()}


def backend_server(tmp: Path, postgres: PostgresServer, store: S3Server, database: str,
                   s3: bool, flags: tuple[str, ...], workers: int) -> ServerProcess:
    tmp.mkdir()
    env, args = dict(NO_LIMITS), list(flags)
    if database == "postgresql":
        postgres.run_sql(f"CREATE DATABASE {tmp.name}")
        env["AUDIOSERVER_DATABASE"] = postgres.url(tmp.name)
    if s3:
        env.update(store.environ())
        args += ["--storage", store.new_library(), "--s3-path-style"]
    server = ServerProcess(tmp / "data", tmp, env=env, workers=workers)
    return server.start(server.command(*args))


def one_backend_run(server: ServerProcess, figures: dict, source: Path, run: int,
                    seconds: int, cached: bool) -> None:
    base = f"http://127.0.0.1:{server.port}"
    figures["info"].append(wrk(f"{base}/info?name=small007.wav", seconds))
    figures["list"].append(wrk(f"{base}/list?maxduration=20&limit=100", seconds))
    figures["upload"].append(mb_per_s(*curl("-T", str(source), f"{base}/upload?name=up{run}.wav")))
    # Warm: the page cache, as nginx's; with an S3 cache, the file in it.
    curl(f"{base}/download?name=up{run}.wav")
    if cached:
        wait_cached(server.data_dir, source.stat().st_size)
    figures["download"].append(mb_per_s(*curl(f"{base}/download?name=up{run}.wav")))
    server.request("DELETE", f"/delete?name=up{run}.wav")


def backends_table(figures: dict) -> str:
    """A row per measure, a column per backend: its median, and its ratio to
    the first backend's."""
    labels = list(figures)
    rows = [("/info req/s", lambda f: f["info"]["rps"]),
            ("/info p99 ms", lambda f: f["info"]["p99_ms"]),
            ("/list?limit=100 req/s", lambda f: f["list"]["rps"]),
            ("/list p99 ms", lambda f: f["list"]["p99_ms"]),
            ("Upload raw 10 MB, MB/s", lambda f: f["upload_mb_s"]),
            ("Download 10 MB, warm, MB/s", lambda f: f["download_mb_s"])]
    lines = [f"{'measure':<28}" + "".join(f"{label:>26}" for label in labels)]
    for name, pick in rows:
        first = pick(figures[labels[0]])
        cells = [f"{pick(figures[label])['median']:.1f}"
                 + (f" ({ratio(pick(figures[label]), first):.2f})" if index else "")
                 for index, label in enumerate(labels)]
        lines.append(f"{name:<28}" + "".join(f"{cell:>26}" for cell in cells))
    return "\n".join(lines)


def ratelimit_only(tmp: Path, args) -> dict:
    server = ServerProcess(tmp / "data", tmp, env=NO_LIMITS, workers=args.workers)
    server.start()
    try:
        server.put("small007.wav", wav_bytes(8))
        figures = ratelimit_cost(tmp, server, args.runs, args.seconds, args.workers)
    finally:
        server.stop()
    limited, unlimited = figures["limited"]["rps"], figures["unlimited"]["rps"]
    return {**figures, "ratio": ratio(limited, unlimited)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--size-mb", type=int, default=500, help="the bulk file (500)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--big-library-only", action="store_true",
                        help="measure only the library of --rows files")
    parser.add_argument("--ratelimit-only", action="store_true",
                        help="measure only what the rate limits cost /info")
    parser.add_argument("--backends-only", action="store_true",
                        help="measure only SQLite against PostgreSQL and S3")
    parser.add_argument("--small-only", action="store_true",
                        help="measure only /info and /list against nginx and the ceiling")
    args = parser.parse_args()
    if args.small_only:
        with tempfile.TemporaryDirectory() as name:
            figures = small_only(Path(name), args)
        print(json.dumps(figures, indent=2))
        print(small_table(figures))
        return
    if args.backends_only:
        with tempfile.TemporaryDirectory() as name:
            figures = backends(Path(name), args.runs, args.seconds, args.workers)
        print(json.dumps(figures, indent=2))
        print(backends_table(figures))
        return
    if args.big_library_only:
        with tempfile.TemporaryDirectory() as name:
            figures = big_library(Path(name), args.rows, 3, args.seconds, args.workers)
        print(json.dumps(figures, indent=2))
        return
    if args.ratelimit_only:
        with tempfile.TemporaryDirectory() as name:
            print(json.dumps(ratelimit_only(Path(name), args), indent=2))
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "nginx-root").mkdir()
        source = tmp / "nginx-root" / "big.wav"
        write_wav(source, args.size_mb * MB)
        server = ServerProcess(tmp / "data", tmp, env=NO_LIMITS, workers=args.workers)
        server.start(server.command("--max-upload-size", "2G"))
        nginx = Nginx(tmp / "nginx", tmp / "nginx-root", args.workers)
        try:
            results = {
                "date": date.today().isoformat(),
                "machine": f"{platform.node()}: {os.cpu_count()} cores, "
                           f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}",
                "workers": args.workers,
                "bulk": bulk(tmp, server, nginx, source, args.runs),
                "small": small_requests(tmp, server, nginx, args.runs, args.seconds,
                                        args.workers),
                "small_uploads": small_uploads(tmp, server, args.runs),
                "first_uploads": first_uploads(tmp, args.workers),
                "ratelimit": ratelimit_cost(tmp, server, args.runs, args.seconds, args.workers),
                "memory": memory(server, 1024 * 2**20, 200),
            }
        finally:
            server.stop()
            nginx.stop()
        results["big_library"] = big_library(tmp, args.rows, 3, args.seconds, args.workers)
        results["backends"] = backends(tmp, args.runs, args.seconds, args.workers)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"{results['date']}, {results['machine']}, {args.workers} workers")
    print(table(results))
    print(small_table(results["small"]))
    print(backends_table(results["backends"]))
    print(f"figures: {args.out}")


if __name__ == "__main__":
    main()
