"""A throwaway Redis for the tests, started once per session.

Debian's redis-server on a free loopback port, keeping nothing on disk
(--save '' --appendonly no); each test gets a database number of its own.
When Redis cannot start, this raises: the tests fail, they never skip.
"""

import itertools
import shutil
import socket
import subprocess
import tempfile
import time

START_TIMEOUT = 10.0
# Database numbers handed out, one per test: far more than a session uses.
DATABASES = 10000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """`start()`, then `url()` for a fresh database; `stop()` at the end."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="audioserver-redis-")
        self.process: subprocess.Popen | None = None
        self._numbers = itertools.count(0)

    def start(self) -> None:
        program = shutil.which("redis-server") or "/usr/bin/redis-server"
        try:
            self.process = subprocess.Popen(
                [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--databases", str(DATABASES), "--dir", self.dir,
                 "--logfile", f"{self.dir}/log"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise RuntimeError("Redis is not installed: apt-get install redis-server") from None
        deadline = time.monotonic() + START_TIMEOUT
        while self.command("PING") != "+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self) -> str:
        """A database no other test uses."""
        return f"redis://127.0.0.1:{self.port}/{next(self._numbers)}"

    def command(self, *words: str, db: int = 0) -> str:
        """One inline command in database `db`; Redis's first reply line
        (+OK, :3, $5 and its value...), or '' if it cannot be reached."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(f"SELECT {db}\r\n{' '.join(words)}\r\n".encode())
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return ""
        lines = reply.decode().split("\r\n")
        return lines[1] if len(lines) > 1 else ""
