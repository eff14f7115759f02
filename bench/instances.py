"""/info and /list through nginx, in front of one instance and of two.

The README's deployment on one machine: a throwaway PostgreSQL and Redis
(as the tests start them), two instances of 2 workers each on one library,
rate limits on (in Redis, with a budget too large to run out, so every
request pays for its take), and nginx with deploy/nginx.conf, once with
only the first instance upstream and once with both. wrk measures each turn
about, in the same run, and directly against one instance for reference
(and against a third whose limits are in the data directory, for what
Redis costs); each figure is the median of the runs, with its range. Prints a
table and writes bench/instances.json. Run it through `bench/run`.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests")]
import audiofiles  # noqa: E402
from nginxserver import NginxServer  # noqa: E402
from pgserver import PostgresServer  # noqa: E402
from redisserver import RedisServer  # noqa: E402
from serverprocess import ServerProcess  # noqa: E402

PATHS = {"info": "/info?name=small007.wav", "list": "/list?maxduration=20&limit=100"}
FILES = 150
# Limits on, as deployed, but never reached: the figures measure serving.
HUGE_LIMITS = {"AUDIOSERVER_READ_RATE": "1000000000/s", "AUDIOSERVER_UPLOAD_RATE": "off",
               "AUDIOSERVER_WRITE_RATE": "off"}


def wrk(url: str, seconds: int, connections: int) -> dict:
    """Requests/s and p99 latency (ms) of one wrk run; failed answers raise."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         check=True, capture_output=True, text=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed requests")
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p99_ms": float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]}


def median_and_range(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="audioserver-bench-instances-"))
    postgres, redis = PostgresServer(), RedisServer()
    servers, proxies = [], {}
    try:
        postgres.start()
        postgres.run_sql("CREATE DATABASE bench")
        redis.start()
        for i in range(2):
            (tmp / f"instance-{i}").mkdir()
            server = ServerProcess(tmp / "data", tmp / f"instance-{i}", workers=args.workers,
                                   env={**HUGE_LIMITS,
                                        "AUDIOSERVER_DATABASE": postgres.url("bench"),
                                        "AUDIOSERVER_REDIS": redis.url()})
            servers.append(server.start(server.command("--trusted-proxy", "127.0.0.1")))
        # For what Redis costs: one more instance, its limits in the data directory.
        (tmp / "instance-mmap").mkdir()
        mmap = ServerProcess(tmp / "data", tmp / "instance-mmap", workers=args.workers,
                             env={**HUGE_LIMITS, "AUDIOSERVER_DATABASE": postgres.url("bench")})
        servers.append(mmap.start())
        for index in range(FILES):
            servers[0].put(f"small{index:03d}.wav", audiofiles.wav(index % 30 + 1))
        proxies = {"nginx, one instance": NginxServer([servers[0].port]).start(),
                   "nginx, two instances": NginxServer([s.port for s in servers[:2]]).start()}
        bases = {"one instance, direct, limits in the data directory":
                 f"http://127.0.0.1:{mmap.port}",
                 "one instance, direct": f"http://127.0.0.1:{servers[0].port}",
                 **{name: f"http://127.0.0.1:{nginx.port}" for name, nginx in proxies.items()}}
        runs = {name: {path: [] for path in PATHS} for name in bases}
        for _ in range(args.runs):
            for name, base in bases.items():
                for path, query in PATHS.items():
                    runs[name][path].append(wrk(base + query, args.seconds, args.connections))
    finally:
        for nginx in proxies.values():
            nginx.stop()
        for server in servers:
            server.stop()
        redis.stop()
        postgres.stop()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return {name: {path: {key: median_and_range([r[key] for r in results])
                          for key in ("rps", "p99_ms")}
                   for path, results in figures.items()}
            for name, figures in runs.items()}


def table(figures: dict) -> str:
    lines = ["| setup | `/info` | `/list?maxduration=20&limit=100` |", "|---|---|---|"]
    for name, paths in figures.items():
        cells = [f"{p['rps']['median']:.0f} req/s ({p['rps']['min']:.0f}–{p['rps']['max']:.0f}),"
                 f" p99 {p['p99_ms']['median']:.0f} ms" for p in paths.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="wrk runs of each (default 5)")
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="wrk's (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="per instance (default 2)")
    args = parser.parse_args()
    figures = measure(args)
    print(table(figures))
    result = {"date": date.today().isoformat(), "cores": os.cpu_count(),
              "machine": platform.platform(), "settings": vars(args), "figures": figures}
    (HERE / "instances.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
