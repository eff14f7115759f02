"""How much memory the server uses while a 1 GB file arrives.

What it measures: the resident set size (RSS) of the serving process,
idle and at its peak while it receives one large upload, for each way of
sending one:

* ``content-length``: ``PUT /upload?name=...`` with a Content-Length,
* ``chunked``: the same with ``Transfer-Encoding: chunked``,
* ``multipart``: ``POST /upload`` with one multipart/form-data ``file`` part,

and, separately, the peak RSS of the probe worker (the child process
``python -m audioserver.media.probe`` that parses each finished upload), plus the
upload throughput as the client saw it, from the first byte sent to the
201 received (so it includes fsync, probing and the database commit).

How: it starts ``python -m audioserver --workers 1 --max-upload-size 2G``
on a temporary data directory (one serving process, so "the server" is one
PID), uploads a small warm-up file so the probe worker and every code path
are loaded, waits a second and reads the idle RSS. Each upload then runs
while a thread samples the server's and the probe worker's RSS every 50 ms
with psutil. The body is a valid WAV (a 44-byte PCM_16 stereo 44.1 kHz
header with the right data size, then 1 MiB pieces of noise) generated on
the fly, so neither side ever needs the whole file in memory; the client's
own peak RSS is printed to show that. The server's answer must be 201 with
the sha256 of what was sent. Each file is deleted before the next upload;
at the end the server is stopped with SIGTERM and the temporary directory
removed.

    /work/venv/bin/python bench/upload_memory.py [--size-mb 1024]
"""

import argparse
import hashlib
import http.client
import json
import os
import resource
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
SAMPLE_EVERY = 0.05
BOUNDARY = "bench-upload-memory-boundary"
MODES = ("content-length", "chunked", "multipart")
MiB = 2**20


def wav_header(data_bytes: int) -> bytes:
    """A 44-byte PCM_16 stereo 44.1 kHz header for `data_bytes` of samples."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
            + b"data" + struct.pack("<I", data_bytes))


class WavSource:
    """A WAV of `total` bytes, produced piece by piece, never held whole."""

    def __init__(self, total: int):
        assert (total - 44) % 4 == 0, "whole stereo 16-bit frames"
        self.total = total
        self.noise = os.urandom(PIECE)  # the same noise in every piece

    def pieces(self):
        yield wav_header(self.total - 44)
        left = self.total - 44
        while left:
            piece = self.noise[: min(PIECE, left)]
            left -= len(piece)
            yield piece

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        return digest.hexdigest()


def probe_workers(server_pid: int) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if "audioserver.media.probe" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def rss(process: psutil.Process) -> int:
    return process.memory_info().rss


class RssSampler(threading.Thread):
    """Peak RSS of the server and of its probe workers, every 50 ms until stop()."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server = psutil.Process(server_pid)
        self.server_peak = 0
        self.probe_peak = 0
        self.samples = 0
        self._stopping = threading.Event()

    def run(self):
        while not self._stopping.is_set():
            self.sample()
            self._stopping.wait(SAMPLE_EVERY)
        self.sample()  # one last look after the answer

    def sample(self):
        self.server_peak = max(self.server_peak, rss(self.server))
        for worker in probe_workers(self.server.pid):
            try:
                self.probe_peak = max(self.probe_peak, rss(worker))
            except psutil.NoSuchProcess:  # replaced between two samples
                pass
        self.samples += 1

    def stop(self) -> "RssSampler":
        self._stopping.set()
        self.join()
        return self


def upload(port: int, mode: str, name: str, source: WavSource) -> tuple[int, dict]:
    """Stream `source` to the server the `mode` way; (status, JSON answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        if mode == "multipart":
            head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="{name}"\r\nContent-Type: audio/wav\r\n\r\n').encode()
            tail = f"\r\n--{BOUNDARY}--\r\n".encode()
            connection.putrequest("POST", "/upload")
            connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
            connection.putheader("Content-Length", str(len(head) + source.total + len(tail)))
            connection.endheaders()
            connection.send(head)
            for piece in source.pieces():
                connection.send(piece)
            connection.send(tail)
        else:
            connection.putrequest("PUT", f"/upload?name={name}")
            if mode == "content-length":
                connection.putheader("Content-Length", str(source.total))
            else:
                connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            for piece in source.pieces():
                if mode == "chunked":
                    connection.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    connection.send(piece)
            if mode == "chunked":
                connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        body = response.read()
        answer = json.loads(body) if body else {}
        if isinstance(answer, list):  # a form answers with a list
            answer = answer[0]
        return response.status, answer
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024,
                        help="size of the uploaded file in MiB (default 1024)")
    size = parser.parse_args().size_mb * MiB
    source = WavSource(size)
    print(f"file: {size / MiB:.0f} MiB WAV; hashing it once to check the answers ...",
          flush=True)
    expected_sha256 = source.sha256()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="upload-memory-") as tmp:
        # One serving process: the figure is that process's memory.
        server = ServerProcess(Path(tmp) / "data", Path(tmp), workers=1)
        server.start(server.command("--max-upload-size", "2G"))
        try:
            # Warm up: the probe worker starts, every code path is imported.
            status, _ = upload(server.port, "content-length", "warmup.wav", WavSource(4 * MiB))
            assert status == 201, status
            server.request("DELETE", "/delete?name=warmup.wav")
            time.sleep(1)
            idle = rss(psutil.Process(server.process.pid))
            probes = probe_workers(server.process.pid)
            probe_idle = max((rss(p) for p in probes), default=0)
            print(f"server (pid {server.process.pid}) idle RSS: {idle / MiB:.1f} MiB")
            print(f"probe worker idle RSS: {probe_idle / MiB:.1f} MiB "
                  f"({len(probes)} running)")
            print()
            print(f"{'mode':<16}{'status':>7}{'peak RSS':>13}{'peak-idle':>13}"
                  f"{'MB/s':>8}{'probe peak':>14}{'samples':>9}")
            for mode in MODES:
                name = f"{mode}.wav"
                sampler = RssSampler(server.process.pid)
                sampler.start()
                started = time.perf_counter()
                status, answer = upload(server.port, mode, name, source)
                seconds = time.perf_counter() - started
                sampler.stop()
                ok = status == 201 and answer.get("sha256") == expected_sha256
                failures += not ok
                print(f"{mode:<16}{status:>7}{sampler.server_peak / MiB:>9.1f} MiB"
                      f"{(sampler.server_peak - idle) / MiB:>9.1f} MiB"
                      f"{size / 1e6 / seconds:>8.0f}"
                      f"{sampler.probe_peak / MiB:>10.1f} MiB{sampler.samples:>9}"
                      + ("" if ok else f"  FAILED: {answer}"), flush=True)
                deleted, _, _ = server.request("DELETE", f"/delete?name={name}")
                if status == 201 and deleted != 204:
                    print(f"  delete of {name} answered {deleted}")
                    failures += 1
            left = os.listdir(Path(tmp) / "data" / "audio")
            print()
            print(f"left in the data directory after the deletes: {len(left)} files")
        finally:
            code = server.stop()
            server.kill()  # nothing, unless it did not stop
        print(f"server stopped with SIGTERM, exit code {code}")
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"this client's own peak RSS: {client_peak:.1f} MiB (the file was never in memory)")
    return 1 if failures or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
