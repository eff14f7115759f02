"""Receiving a file: a local temporary file, written in batches, hashed, fsynced.

Every backend stages locally first, whatever it publishes to: the probe
worker needs a file to read (libsndfile takes a path), and the sha256 and
size must be known before anything is published. A backend shares this
class and publishes the finished upload its own way.
"""

import asyncio
import errno
import fcntl
import hashlib
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

from ..errors import StorageFull, StorageRefused

TEMP_SUFFIX = ".part"
# What a read-only, immutable or foreign folder answers to a change.
REFUSALS = (errno.EACCES, errno.EPERM, errno.EROFS)
STORE_REFUSED = "store the file; nothing was stored"
# An upload's bytes are fdatasynced in the background every this many bytes
# as they arrive, so the disk writes them while the rest is received and the
# fsync that makes the upload durable has little left to wait for.
SYNC_EVERY = 8 * 1024**2


class Upload:
    """A file being received: written and hashed in a thread, batch by batch.

    One batch is written while the next is received: `write` returns as soon
    as the previous batch is on its way, so network and disk overlap. Every
    SYNC_EVERY bytes a fdatasync starts beside the writes (see finish()).
    """

    def __init__(self, path: Path):
        self.path = path
        self.size = 0
        self._hash = hashlib.sha256()
        self._file = open(path, "xb")
        # Locked until published or discarded: instances on one machine may
        # share the directory, and one that starts removes only the files
        # no live process holds (remove_temp_leftovers). One that looked in
        # between the open and the lock may have taken the file: say so.
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        if os.fstat(self._file.fileno()).st_nlink == 0:
            self._file.close()
            raise FileNotFoundError(errno.ENOENT, "removed as it was made", str(path))
        self._pending: asyncio.Future | None = None
        self._syncing: asyncio.Future | None = None
        self._queued = 0  # bytes handed to write()
        self._sync_mark = 0  # what was queued when the last background sync began
        self.background_syncs = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def write(self, chunks: list[bytes]) -> None:
        await self.drain()
        # Writing and hashing both let go of the GIL: two threads, twice the pace.
        self._pending = asyncio.gather(asyncio.to_thread(self._write, chunks),
                                       asyncio.to_thread(self._digest, chunks))
        self._queued += sum(map(len, chunks))
        if self._syncing is not None and self._syncing.done():
            await self.settle()  # raises what the sync raised (a full disk)
        if self._syncing is None and self._queued - self._sync_mark >= SYNC_EVERY:
            self._sync_mark = self._queued
            self.background_syncs += 1
            self._syncing = asyncio.ensure_future(asyncio.to_thread(self._sync))

    async def drain(self) -> None:
        """Wait for the batch in flight, raising what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def settle(self) -> None:
        """Wait for the background sync in flight, raising what it raised."""
        syncing, self._syncing = self._syncing, None
        if syncing is not None:
            await syncing

    def _sync(self) -> None:
        with disk_full_is_507():
            os.fdatasync(self._file.fileno())

    def _write(self, chunks: list[bytes]) -> None:
        with disk_full_is_507():
            self._file.writelines(chunks)

    def _digest(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._hash.update(chunk)
            self.size += len(chunk)

    def finish(self) -> None:
        """Flush and fsync, so a rename later publishes complete bytes. The
        file stays open, and locked, until close()."""
        with disk_full_is_507():
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Once published (renamed away or sent): the lock has done its work."""
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class Staging:
    """The temporary directory uploads are received in; a backend builds on it."""

    def __init__(self, temp_dir: Path):
        self.temp_dir = temp_dir

    def temp_path(self) -> Path:
        return self.temp_dir / (secrets.token_hex(16) + TEMP_SUFFIX)

    async def open_upload(self) -> Upload:
        with refusal_is_503(STORE_REFUSED):
            try:
                return await asyncio.to_thread(Upload, self.temp_path())
            except FileNotFoundError:  # taken by a starting instance: once is rare enough
                return await asyncio.to_thread(Upload, self.temp_path())

    async def copy_in(self, source: Path, chunk_size: int = 1024 * 1024) -> Upload:
        """A finished upload holding a copy of the local file `source`."""
        upload = await self.open_upload()
        try:
            with await asyncio.to_thread(open, source, "rb") as file:
                while chunk := await asyncio.to_thread(file.read, chunk_size):
                    await upload.write([chunk])
            await self.finish(upload)
        except BaseException:
            await self.discard(upload)
            raise
        return upload

    async def finish(self, upload: Upload) -> None:
        await upload.drain()
        await upload.settle()
        await asyncio.to_thread(upload.finish)

    async def discard(self, upload: Upload) -> None:
        # The file is closed only once no thread writes to it or syncs it.
        for wait in (upload.drain, upload.settle):
            try:
                await wait()
            except Exception:
                pass  # the write that failed is why we discard
        await asyncio.to_thread(upload.discard)

    async def remove_temp_leftovers(self) -> list[str]:
        """Delete uploads a previous process never finished; return their names."""
        return await asyncio.to_thread(self._remove_temp_leftovers)

    def _remove_temp_leftovers(self) -> list[str]:
        removed = []
        for entry in os.scandir(self.temp_dir):
            if _remove_unless_held(entry.path):
                removed.append(entry.name)
        return removed


def _remove_unless_held(path: str) -> bool:
    """Remove a temporary file unless a live process holds its lock (an
    upload another instance sharing the directory is receiving). The lock
    is held while removing, so the file cannot be taken up meanwhile."""
    try:
        with open(path, "rb") as file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            os.unlink(path)
    except FileNotFoundError:
        return False  # its owner published or discarded it meanwhile
    return True


@contextmanager
def refusal_is_503(doing: str):
    """Say what the storage refused, without a path, and what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno in REFUSALS:
            raise StorageRefused(
                f"the server's storage refused to {doing}. Ask the operator to check "
                "that the data directory can be written (its permissions, attributes, "
                "or a read-only mount)"
            ) from exc
        raise


@contextmanager
def disk_full_is_507():
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(
                "the server's disk is full; nothing was stored. Try again later "
                "or ask the operator to free space"
            ) from exc
        raise
