"""The local disk against an S3 store (SeaweedFS), in one run.

What it measures, on two servers started side by side (`--workers 1`), one
storing on the local disk and one in a SeaweedFS bucket (`weed mini`,
started as the tests start it, on loopback) with the local cache on:

* upload throughput: a WAV of --size-mb sent with PUT, first byte to 201
  (so for S3 it includes the multipart upload to the store);
* download throughput, first play: for S3 with the cache emptied, so the
  bytes come from the store with a ranged GET;
* download throughput, cached play: the second play (S3: from the cache,
  with sendfile, once the first play has filled it);
* the S3 server's resident memory, idle and at its peak while a 1 GiB
  (--big-mb) upload arrives and goes to the store (psutil, every 50 ms).

Each figure is the median of --runs. Prints a table and one JSON line.

    .venv/bin/python bench/s3.py [--size-mb 100] [--big-mb 1024] [--runs 3]
"""

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from s3server import S3Server  # noqa: E402
from serverprocess import ServerProcess  # noqa: E402
from upload_memory import MiB, RssSampler, WavSource, upload  # noqa: E402


def download(port: int, name: str) -> tuple[int, float]:
    """Bytes received and seconds taken, read in 1 MiB pieces."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        connection.request("GET", f"/download?name={name}")
        response = connection.getresponse()
        assert response.status == 200, response.status
        received = 0
        while piece := response.read(MiB):
            received += len(piece)
    finally:
        connection.close()
    return received, time.perf_counter() - started


def empty_cache(data_dir: Path) -> None:
    for path in (data_dir / "cache").glob("*"):
        path.unlink()


def wait_cached(data_dir: Path, size: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if any(path.stat().st_size == size for path in (data_dir / "cache").glob("[0-9a-f]*")
               if "." not in path.name):
            return
        time.sleep(0.1)
    raise RuntimeError("the first play did not fill the cache")


def measure(server: ServerProcess, source: WavSource, runs: int, on_s3: bool) -> dict:
    up, first, cached = [], [], []
    for run in range(runs):
        name = f"f{run}.wav"
        started = time.perf_counter()
        status, _ = upload(server.port, "content-length", name, source)
        assert status == 201, status
        up.append(source.total / MiB / (time.perf_counter() - started))
        if on_s3:
            empty_cache(server.data_dir)
        size, seconds = download(server.port, name)
        first.append(size / MiB / seconds)
        if on_s3:
            wait_cached(server.data_dir, source.total)
        size, seconds = download(server.port, name)
        cached.append(size / MiB / seconds)
        server.request("DELETE", f"/delete?name={name}")
    return {"upload MiB/s": statistics.median(up), "first play MiB/s": statistics.median(first),
            "cached play MiB/s": statistics.median(cached)}


def peak_memory(server: ServerProcess, big: WavSource) -> dict:
    status, _ = upload(server.port, "content-length", "warmup.wav", WavSource(4 * MiB))
    assert status == 201, status
    time.sleep(1)
    idle = psutil.Process(server.process.pid).memory_info().rss
    sampler = RssSampler(server.process.pid)
    sampler.start()
    status, _ = upload(server.port, "content-length", "big.wav", big)
    sampler.stop()
    assert status == 201, status
    return {"idle RSS MiB": idle / MiB, "peak RSS MiB": sampler.server_peak / MiB,
            "growth MiB": (sampler.server_peak - idle) / MiB}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source, big = WavSource(args.size_mb * MiB), WavSource(args.big_mb * MiB)
    store = S3Server()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {"disk": ServerProcess(Path(tmp) / "disk", Path(tmp), workers=1),
                   "s3": ServerProcess(Path(tmp) / "s3", Path(tmp), env=None, workers=1)}
        try:
            store.start()
            servers["s3"].env.update(store.environ())
            servers["disk"].start(servers["disk"].command("--max-upload-size", "2G"))
            servers["s3"].start(servers["s3"].command(
                "--max-upload-size", "2G", "--storage", store.new_library(),
                "--s3-path-style", "--cache-size", "4G"))
            for label, server in servers.items():
                results[label] = measure(server, source, args.runs, label == "s3")
            results["s3 memory, 1 GiB upload"] = peak_memory(servers["s3"], big)
        finally:
            for server in servers.values():
                if server.process is not None:
                    server.stop()
            store.stop()
    print(f"{args.size_mb} MiB WAV, median of {args.runs} runs")
    print("| measure | local disk | S3 (SeaweedFS) |\n|---|---|---|")
    for measure_name in results["disk"]:
        print(f"| {measure_name} | {results['disk'][measure_name]:.0f} | "
              f"{results['s3'][measure_name]:.0f} |")
    memory = results["s3 memory, 1 GiB upload"]
    print(f"S3 server RSS: idle {memory['idle RSS MiB']:.0f} MiB, peak during a "
          f"{args.big_mb} MiB upload {memory['peak RSS MiB']:.0f} MiB "
          f"(+{memory['growth MiB']:.0f} MiB)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
