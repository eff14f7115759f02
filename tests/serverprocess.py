"""The real server as a child process, for restarts, kills and concurrency.

`ServerProcess` starts `python -m audioserver` in its own session (so its
process group holds the supervisor and its serving workers), waits for the
"AudioServer is serving" line, and talks to it over real sockets on
127.0.0.1. The probe workers start sessions of their own, so `kill()` also
looks them up by parentage: nothing outlives a test.
"""

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

import psutil

START_TIMEOUT = 20.0
READY_LINE = "AudioServer is serving"


def audioserver(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m audioserver ARGS --data-dir DATA_DIR`, as typed in a terminal."""
    return subprocess.run([sys.executable, "-m", "audioserver", *args, "--data-dir",
                           str(data_dir)], input=stdin, capture_output=True, text=True,
                          timeout=60)


def command(config, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """A command on the library of `config` (an audioserver Config), whichever
    its database and its storage (an object store's AWS_* variables are
    inherited from the environment)."""
    database = ("--database", config.database) if config.database else ()
    storage = ("--storage", config.storage, "--s3-path-style") if config.storage else ()
    return audioserver(config.data_dir, *args, *database, *storage, stdin=stdin)


def account(data_dir: Path, name: str, password: str, *flags: str) -> dict:
    """A new account made with `user add`, and the headers of an API token
    made for it with `token create`."""
    for args, stdin in [(("user", "add", name, "--password-stdin", *flags), password + "\n"),
                        (("token", "create", name), "")]:
        done = audioserver(data_dir, *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    return {"Authorization": f"Bearer {done.stdout.strip()}"}


def snapshot(data_dir) -> dict:
    """Every file of the data directory and its bytes."""
    files = {}
    for root, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, data_dir)] = file.read()
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query(name: str) -> str:
    return urllib.parse.urlencode({"name": name})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def multipart(files: dict[str, bytes], boundary: str = "audioserver-test") -> tuple[bytes, dict]:
    """A multipart/form-data body with one `file` part per entry, and its headers."""
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + data + b"\r\n"
        for name, data in files.items()
    ) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class ServerProcess:
    def __init__(self, data_dir: Path, logs: Path, env: dict | None = None, workers: int = 2,
                 cwd: Path | None = None):
        self.data_dir = data_dir
        self.cwd = cwd  # where it runs; None: where the tests run
        self.workers = workers
        self.logs = logs
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.runs = 0
        # Sent with every request the helpers below make (an API token, say).
        self.headers: dict[str, str] = {}
        self._descendants: dict[int, psutil.Process] = {}

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "audioserver", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--workers", str(self.workers), *extra]

    def _log_paths(self) -> None:
        self.runs += 1
        self.stdout_path = self.logs / f"stdout-{self.runs}.txt"
        self.stderr_path = self.logs / f"stderr-{self.runs}.txt"

    def start(self, command: list[str] | None = None) -> "ServerProcess":
        """Start and wait until it serves; raise with its output if it exits."""
        self._log_paths()
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            # Its own process group, so kill() can take the workers with it.
            self.process = subprocess.Popen(command or self.command(), stdout=out, stderr=err,
                                            env=self.env, cwd=self.cwd, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while READY_LINE not in self.stdout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n"
                                   + self.stderr)
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError("the server did not start:\n" + self.stderr)
            time.sleep(0.05)
        return self

    def run_until_exit(self, *extra: str, timeout: float = START_TIMEOUT) -> int:
        """Run a server that is expected not to get going; its exit code."""
        self._log_paths()
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            try:
                return subprocess.run(self.command(*extra), stdout=out, stderr=err,
                                      env=self.env, timeout=timeout,
                                      start_new_session=True).returncode
            except subprocess.TimeoutExpired:
                raise AssertionError("it started after all:\n" + self.stdout_path.read_text())

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def descendants(self) -> list[psutil.Process]:
        """Serving workers and probe workers, alive now (remembered for kill())."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self._descendants.update((process.pid, process) for process in found)
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0,
             group: bool = False) -> int:
        """Send `sig` (to the whole group, as a terminal's Ctrl-C does, if
        `group`) and wait for the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.descendants()
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """kill -9 of the supervisor and its workers at once, as a crash would,
        and of any probe worker (they live in sessions of their own)."""
        self.descendants()
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        for process in self._descendants.values():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self._descendants.clear()

    # Requests, over real sockets

    def request(self, method: str, path: str, body=None, headers=None):
        """(status, headers, body bytes)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def put(self, name: str, data: bytes):
        status, _, body = self.request("PUT", "/upload?" + query(name), data)
        return status, json.loads(body)

    def post_form(self, files: dict[str, bytes]):
        body, headers = multipart(files)
        status, _, answer = self.request("POST", "/upload", body, headers)
        return status, json.loads(answer)

    def info(self, name: str):
        status, _, body = self.request("GET", "/info?" + query(name))
        return status, json.loads(body)

    def listing(self) -> list[dict]:
        status, _, body = self.request("GET", "/list?limit=1000")
        assert status == 200
        return json.loads(body)

    def names(self) -> list[str]:
        return [item["name"] for item in self.listing()]

    def download(self, name: str) -> tuple[int, bytes]:
        status, _, body = self.request("GET", "/download?" + query(name))
        return status, body

    def download_sha256(self, name: str) -> str:
        status, body = self.download(name)
        assert status == 200
        return sha256(body)
