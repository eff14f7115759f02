"""nginx with the README's configuration (deploy/nginx.conf), for the tests.

The file is used as it is, but for what must differ on a test machine: the
upstream's ports, the port nginx listens on, and the paths it writes (pid,
logs, temporary files), all under a directory of its own in /tmp. As root
its master runs as `nobody`, never as root. When nginx cannot start, this
raises: the tests fail, they never skip.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 10.0
PATH_DIRECTIVES = ("pid", "error_log", "access_log", "client_body_temp_path",
                   "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path")
UPSTREAM_LINE = re.compile(r"^(\s*)server 127\.0\.0\.1:\d+( [^;]*)?;\n", re.MULTILINE)
LISTEN_LINE = re.compile(r"^(\s*)listen 8080;$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def templated(text: str, upstreams: list[int], port: int, directory: str) -> str:
    """The configuration with only ports and paths changed (each must be found)."""
    found = UPSTREAM_LINE.findall(text)
    assert found, "deploy/nginx.conf has no upstream server lines"
    indent, options = found[0]
    servers = "".join(f"{indent}server 127.0.0.1:{p}{options};\n" for p in upstreams)
    text = UPSTREAM_LINE.sub("", text, count=len(found) - 1)
    text = UPSTREAM_LINE.sub(servers, text, count=1)
    text, listens = LISTEN_LINE.subn(rf"\g<1>listen 127.0.0.1:{port};", text)
    assert listens == 1, "deploy/nginx.conf listens on 8080 once"
    for directive in PATH_DIRECTIVES:
        text, count = re.subn(rf"^(\s*){directive} \S+;$",
                              rf"\g<1>{directive} {directory}/{directive};", text,
                              flags=re.MULTILINE)
        assert count == 1, f"deploy/nginx.conf sets {directive} once"
    return text


class NginxServer:
    """`start()` in front of `upstreams` (ports on 127.0.0.1); `stop()`."""

    def __init__(self, upstreams: list[int]):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="audioserver-nginx-")
        self.config = os.path.join(self.dir, "nginx.conf")
        with open(self.config, "w") as file:
            file.write(templated(CONFIG.read_text(), upstreams, self.port, self.dir))
        self.process: subprocess.Popen | None = None

    def start(self) -> "NginxServer":
        if not os.access(NGINX, os.X_OK):
            raise RuntimeError("nginx is not installed: apt-get install nginx-light")
        command = [NGINX, "-p", self.dir, "-e", f"{self.dir}/startup.log", "-c", self.config,
                   "-g", "daemon off;"]
        user = {}
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody")
            shutil.chown(self.config, "nobody")
            user = {"user": "nobody", "group": "nogroup", "extra_groups": []}
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        **user)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._accepts():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx did not start:\n" + self.errors())
            time.sleep(0.05)
        return self

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def errors(self) -> str:
        text = ""
        for name in ["startup.log", "error_log"]:
            try:
                text += Path(self.dir, name).read_text()
            except OSError:
                pass
        return text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # a fast shutdown, workers and all
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
