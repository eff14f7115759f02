"""Peak memory of the server while it receives a 1 GB file.

Starts `python -m audioserver` on a temporary data directory, reads its
resident set size (RSS) when idle, then streams a 1 GB WAV to it three ways
(raw PUT with Content-Length, raw PUT chunked, one multipart part), sampling
the server's RSS every 20 ms from a thread. The body is generated on the fly
in 1 MiB pieces, so the client's memory does not count against the server.
Prints idle and peak RSS, their difference and the throughput, per mode.

    python bench/upload_memory.py [--size-mb 1024]
"""

import argparse
import http.client
import os
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverprocess import ServerProcess  # noqa: E402

PIECE = 1024 * 1024
BOUNDARY = "benchboundary"


def wav_header(data_bytes: int) -> bytes:
    """A 44-byte PCM_16 stereo 44.1 kHz header for `data_bytes` of samples."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
            + b"data" + struct.pack("<I", data_bytes))


def wav_pieces(total: int):
    """A valid WAV of `total` bytes, in 1 MiB pieces of noise."""
    yield wav_header(total - 44)
    noise = os.urandom(PIECE)
    left = total - 44
    while left:
        piece = noise[: min(PIECE, left)]
        left -= len(piece)
        yield piece


class RssSampler(threading.Thread):
    """The peak of `measure()` (bytes), sampled every 20 ms until stop()."""

    def __init__(self, measure):
        super().__init__(daemon=True)
        self.measure = measure
        self.peak = 0
        self.running = True

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, self.measure())
            except psutil.NoSuchProcess:  # a process that ended between two samples
                pass
            time.sleep(0.02)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


def upload(port: int, mode: str, name: str, total: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    if mode == "multipart":
        head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{name}\"\r\n\r\n").encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        connection.putrequest("POST", "/upload")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        connection.putheader("Content-Length", str(len(head) + total + len(tail)))
        connection.endheaders()
        connection.send(head)
        for piece in wav_pieces(total):
            connection.send(piece)
        connection.send(tail)
    else:
        connection.putrequest("PUT", f"/upload?name={name}")
        if mode == "content-length":
            connection.putheader("Content-Length", str(total))
        else:
            connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for piece in wav_pieces(total):
            if mode == "chunked":
                connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                connection.send(piece)
        if mode == "chunked":
            connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    total = parser.parse_args().size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        # One worker: the figure is one process's memory.
        server = ServerProcess(Path(tmp) / "data", Path(tmp), workers=1)
        server.start(server.command("--max-upload-size", "2G"))
        try:
            # Warm up: one small upload starts the probe worker and the code paths.
            upload(server.port, "content-length", "warmup.wav", 4 * PIECE)
            time.sleep(1)
            idle = psutil.Process(server.process.pid).memory_info().rss
            print(f"server idle RSS: {idle / 2**20:.1f} MiB; file: {total / 2**20:.0f} MiB")
            print(f"{'mode':<16}{'status':>7}{'peak RSS':>12}{'peak-idle':>12}{'MB/s':>9}")
            for mode in ("content-length", "chunked", "multipart"):
                sampler = RssSampler(lambda: psutil.Process(server.process.pid).memory_info().rss)
                sampler.start()
                started = time.perf_counter()
                status = upload(server.port, mode, f"{mode}.wav", total)
                seconds = time.perf_counter() - started
                peak = sampler.stop()
                print(f"{mode:<16}{status:>7}{peak / 2**20:>9.1f} MiB{(peak - idle) / 2**20:>8.1f} MiB"
                      f"{total / 1e6 / seconds:>9.0f}")
                server.request("DELETE", f"/delete?name={mode}.wav")
            workers = psutil.Process(server.process.pid).children(recursive=True)
            for worker in workers:
                print(f"probe worker RSS now: {worker.memory_info().rss / 2**20:.1f} MiB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
