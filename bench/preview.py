"""What a preview costs: the time to make one for a 10-minute AIFF, and its size.

What it measures, against a real server (``python -m audioserver --workers 1``
on a free loopback port and a temporary data directory):

* ``first play``: the time from sending ``GET /preview?name=...`` for a file
  that has no preview yet to the last byte of the answer: the parser worker
  decodes the AIFF and encodes the MP3, the server stores it beside the file
  and sends it (the sending is a small part: the preview is a few MB, over
  loopback);
* ``later plays``: the same request again, served from the kept preview;
* ``storage``: the preview's size, against the original's.

The AIFF is 10 minutes of 16-bit stereo at 44.1 kHz (about 106 MB): notes
that swell and fade with a little noise under them, so the encoder has
something like music to work on (a pure tone would compress unrealistically
well). Each run uploads it under a new name, so each first play makes a new
preview. Medians of ``--runs`` runs, with their range.

    .venv/bin/python bench/preview.py [--runs 3] [--minutes 10]
"""

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import soundfile

RATE = 44100
RESULTS = Path(__file__).with_name("preview_results.json")


def music(minutes: float) -> bytes:
    seconds = minutes * 60
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.abs(np.sin(np.pi * t / 1.5)) * 0.5
    notes = np.sin(2 * np.pi * (220 + 55 * (np.floor(t / 1.5) % 8)) * t)
    noise = np.random.default_rng(16).normal(0, 0.02, len(t))
    left = envelope * notes + noise
    right = envelope * np.roll(notes, 441) + noise
    buffer = io.BytesIO()
    soundfile.write(buffer, np.column_stack([left, right]).astype(np.float32), RATE,
                    format="AIFF", subtype="PCM_16")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request(method, path, body=body, headers={"Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "audioserver", "--workers", "1", "--port", str(port),
         "--data-dir", str(data_dir), "--max-upload-size", "1G"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/list")[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start within 30 s")


def timed_get(port: int, path: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    status, body = request(port, "GET", path)
    elapsed = time.perf_counter() - start
    assert status == 200, body[:300]
    return elapsed, body


def run(runs: int, minutes: float) -> dict:
    audio = music(minutes)
    firsts, laters, sizes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "data", port)
        try:
            for index in range(runs):
                name = urllib.parse.quote(f"book-{index}.aiff")
                status, answer = request(port, "PUT", f"/upload?name={name}", audio)
                assert status == 201, answer[:300]
                first, preview = timed_get(port, f"/preview?name={name}")
                later, again = timed_get(port, f"/preview?name={name}")
                assert again == preview
                firsts.append(first)
                laters.append(later)
                sizes.append(len(preview))
                print(f"run {index + 1}: first play {first:.2f} s, later {later * 1000:.0f} ms, "
                      f"preview {len(preview) / 1e6:.1f} MB", flush=True)
        finally:
            server.terminate()
            server.wait(30)
    return {
        "minutes": minutes, "runs": runs, "original_bytes": len(audio),
        "first_play_s": summary(firsts), "later_play_s": summary(laters),
        "preview_bytes": statistics.median(sizes),
        "preview_share": statistics.median(sizes) / len(audio),
    }


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0)
    arguments = parser.parse_args()
    result = run(arguments.runs, arguments.minutes)
    first, later = result["first_play_s"], result["later_play_s"]
    print(f"\npreview of a {arguments.minutes:g}-minute AIFF ({result['original_bytes'] / 1e6:.0f} MB), "
          f"cores: {os.cpu_count()}, medians of {arguments.runs}:")
    print(f"  first play (made, kept, sent): {first['median']:.2f} s "
          f"({first['min']:.2f}-{first['max']:.2f})")
    print(f"  later plays (kept):            {later['median'] * 1000:.0f} ms "
          f"({later['min'] * 1000:.0f}-{later['max'] * 1000:.0f})")
    print(f"  storage: {result['preview_bytes'] / 1e6:.1f} MB, "
          f"{result['preview_share']:.1%} of the original")
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
