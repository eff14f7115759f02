"""The real server as a child process, for restarts, kills and concurrency."""

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

START_TIMEOUT = 20.0
READY_LINE = "AudioServer is serving"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    def __init__(self, data_dir: Path, logs: Path, env: dict | None = None, workers: int = 2):
        self.data_dir = data_dir
        self.workers = workers
        self.logs = logs
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "audioserver", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--workers", str(self.workers), *extra]

    def start(self, command: list[str] | None = None) -> "ServerProcess":
        """Start and wait until it serves; raise with its output if it exits."""
        self.runs += 1
        self.stdout_path = self.logs / f"stdout-{self.runs}.txt"
        self.stderr_path = self.logs / f"stderr-{self.runs}.txt"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            # Its own process group, so kill() can take the workers with it.
            self.process = subprocess.Popen(command or self.command(), stdout=out, stderr=err,
                                            env=self.env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while READY_LINE not in self.stdout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n"
                                   + self.stderr)
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start:\n" + self.stderr)
            time.sleep(0.05)
        return self

    def run_until_exit(self, timeout: float = START_TIMEOUT) -> int:
        """Start a server that is expected not to get going; its exit code."""
        self.runs += 1
        self.stderr_path = self.logs / f"stderr-{self.runs}.txt"
        with open(self.stderr_path, "w") as err:
            return subprocess.run(self.command(), stdout=subprocess.DEVNULL, stderr=err,
                                  env=self.env, timeout=timeout).returncode

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """kill -9 of the supervisor and its workers at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    # Requests, over real sockets

    def request(self, method: str, path: str, body=None, headers=None):
        """(status, headers, body bytes)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def put(self, name: str, data: bytes):
        status, headers, body = self.request("PUT", "/upload?" + query(name), data)
        return status, json.loads(body)

    def info(self, name: str):
        status, _, body = self.request("GET", "/info?" + query(name))
        return status, json.loads(body)

    def names(self) -> list[str]:
        status, _, body = self.request("GET", "/list")
        assert status == 200
        return [item["name"] for item in json.loads(body)]

    def download_sha256(self, name: str) -> str:
        status, _, body = self.request("GET", "/download?" + query(name))
        assert status == 200
        return hashlib.sha256(body).hexdigest()


def query(name: str) -> str:
    return urllib.parse.urlencode({"name": name})
