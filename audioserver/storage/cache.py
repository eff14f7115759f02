"""A local cache of stored objects: least recently used out, bounded in bytes.

Shared by every process of one instance (the workers of one server, the
commands run beside it), so it keeps no state in memory: the directory is
the state. A copy is written under a temporary name, checked against the
sha256 it must have, and renamed into place, so a reader never sees half
of one. A file's mtime is its last use; eviction removes the oldest until
the total fits. Removing a file another process is reading is safe on
POSIX: its open descriptor keeps the bytes until it closes. Objects never
change under their key, so a copy never goes stale; a deleted key's copy is
removed with it (evict).
"""

import hashlib
import os
import secrets
import time
from pathlib import Path

TEMP_SUFFIX = ".part"
# A temporary copy untouched this long was left by a process that died.
STALE_TEMP_SECONDS = 3600
COPY_CHUNK = 1024 * 1024


class Cache:
    """Copies of objects, by key, in `directory`, at most `size` bytes."""

    def __init__(self, directory: Path, size: int):
        self.directory = directory
        self.size = size

    def create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Copies a killed process never finished; not younger ones, which
        # another worker may be writing right now.
        too_old = time.time() - STALE_TEMP_SECONDS
        for entry in os.scandir(self.directory):
            try:
                if entry.name.endswith(TEMP_SUFFIX) and entry.stat().st_mtime < too_old:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    def path(self, key: str) -> Path:
        return self.directory / key

    def get(self, key: str) -> Path | None:
        """The cached copy of `key`, marked as just used; None when absent."""
        path = self.path(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def fits(self, size: int) -> bool:
        return size <= self.size

    def temp_path(self) -> Path:
        return self.directory / (secrets.token_hex(16) + TEMP_SUFFIX)

    def put_file(self, key: str, source: Path, sha256: str) -> bool:
        """Copy the local file `source` in, as `key`, if its bytes hash to
        `sha256`; whether it was kept. Blocking."""
        temp = self.temp_path()
        try:
            digest = hashlib.sha256()
            with open(source, "rb") as reader, open(temp, "xb") as writer:
                while chunk := reader.read(COPY_CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
            return self.adopt(key, temp, digest.hexdigest(), sha256)
        finally:
            temp.unlink(missing_ok=True)

    def adopt(self, key: str, temp: Path, actual: str, expected: str) -> bool:
        """Rename the finished temporary copy `temp` into place if its hash
        `actual` is the `expected` one; whether it was kept. Blocking."""
        if actual != expected or not self.fits(temp.stat().st_size):
            temp.unlink(missing_ok=True)
            return False
        os.rename(temp, self.path(key))
        self.shrink()
        return True

    def evict(self, keys) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def shrink(self) -> None:
        """Remove the least recently used copies until the rest fit."""
        entries = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(TEMP_SUFFIX):
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # evicted by another process meanwhile
            entries.append((stat.st_mtime, stat.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.size:
                break
            Path(path).unlink(missing_ok=True)
            total -= size

    def total(self) -> int:
        return sum(entry.stat().st_size for entry in os.scandir(self.directory)
                   if not entry.name.endswith(TEMP_SUFFIX))
