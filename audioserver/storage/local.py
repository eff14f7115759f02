"""Stored audio files: temporary uploads, fsync, atomic rename, removal.

Files live under server-chosen keys in `<data>/audio/`; a client's name
never becomes a path. Beside each, `<key>.meta` keeps what its row holds
(meta.py), and derived files (waveform peaks) sit as `<key>.<suffix>`. An
upload is written to `<data>/tmp/`, fsynced and renamed into place, so
`audio/` only ever holds complete files. The blocking calls run in threads:
the methods here are async for the handlers' sake.
"""

import asyncio
import errno
import hashlib
import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

from ..errors import StartupError, StorageFull, StorageRefused
from .meta import META_SUFFIX

log = logging.getLogger(__name__)

AUDIO_DIR = "audio"
TEMP_DIR = "tmp"
TEMP_SUFFIX = ".part"
# A file being deleted: renamed aside while its row goes (see Library.remove).
TRASH_SUFFIX = ".deleting"
# What a read-only, immutable or foreign folder answers to a change.
REFUSALS = (errno.EACCES, errno.EPERM, errno.EROFS)
STORE_REFUSED = "store the file; nothing was stored"


class Upload:
    """A file being received: written and hashed in a thread, batch by batch.

    One batch is written while the next is received: `write` returns as soon
    as the previous batch is on its way, so network and disk overlap.
    """

    def __init__(self, path: Path):
        self.path = path
        self.size = 0
        self._hash = hashlib.sha256()
        self._file = open(path, "xb")
        self._pending: asyncio.Future | None = None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def write(self, chunks: list[bytes]) -> None:
        await self.drain()
        # Writing and hashing both let go of the GIL: two threads, twice the pace.
        self._pending = asyncio.gather(asyncio.to_thread(self._write, chunks),
                                       asyncio.to_thread(self._digest, chunks))

    async def drain(self) -> None:
        """Wait for the batch in flight, raising what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    def _write(self, chunks: list[bytes]) -> None:
        with _disk_full_is_507():
            self._file.writelines(chunks)

    def _digest(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._hash.update(chunk)
            self.size += len(chunk)

    def finish(self) -> None:
        """Flush and fsync, so a rename later publishes complete bytes."""
        with _disk_full_is_507():
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class LocalStorage:
    """Audio files in a directory on the local disk."""

    def __init__(self, root: Path):
        self.audio_dir = root / AUDIO_DIR
        self.temp_dir = root / TEMP_DIR

    def create(self) -> None:
        """Create the directories of a new data directory."""
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def check_present(self) -> None:
        if not self.audio_dir.is_dir():
            raise StartupError(
                f"the storage directory {self.audio_dir} is missing, but the database "
                "lists files: is the disk mounted? Nothing was changed."
            )
        self.temp_dir.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        return self.audio_dir / key

    async def open_upload(self) -> Upload:
        path = self.temp_dir / (secrets.token_hex(16) + TEMP_SUFFIX)
        with _refusal_is_503(STORE_REFUSED):
            return await asyncio.to_thread(Upload, path)

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
        await asyncio.to_thread(upload.finish)

    async def discard(self, upload: Upload) -> None:
        try:
            await upload.drain()  # the file is closed only once no thread writes to it
        except Exception:
            pass  # the write that failed is why we discard
        await asyncio.to_thread(upload.discard)

    async def publish(self, uploads: list[Upload], metas: list[bytes]) -> list[str]:
        """Rename finished uploads into place under new keys, each with its
        metadata sidecar (see meta.py) beside it; return the keys."""
        return await asyncio.to_thread(self._publish, uploads, metas)

    def _publish(self, uploads: list[Upload], metas: list[bytes]) -> list[str]:
        keys = []
        try:
            for upload, meta in zip(uploads, metas, strict=True):
                key = secrets.token_hex(16)
                keys.append(key)
                with _refusal_is_503(STORE_REFUSED):
                    # The sidecar first: an audio file in place always has one.
                    self._write_durably(self.sidecar(key, META_SUFFIX), meta)
                    os.rename(upload.path, self.path(key))
            _fsync_dir(self.audio_dir)
        except BaseException:
            self._remove(keys)
            raise
        return keys

    async def trash(self, key: str) -> bool:
        """Rename the file aside, the step of a delete that can be undone;
        False if there is no file (its row was unavailable)."""
        return await asyncio.to_thread(self._trash, key)

    def _trash(self, key: str) -> bool:
        try:
            with _refusal_is_503("delete the file; nothing was deleted"):
                os.rename(self.path(key), self._trashed(key))
        except FileNotFoundError:
            return False
        return True

    async def untrash(self, key: str) -> None:
        """Undo trash(): the delete did not go through."""
        await asyncio.to_thread(os.rename, self._trashed(key), self.path(key))

    def restore_trashed(self, rows: set[str]) -> list[str]:
        """Put back the files of deletes that never committed (their key is in
        `rows`) and return their keys; the others, unreferenced, are left
        for removal with the rest of what no row refers to."""
        restored = []
        for entry in os.scandir(self.audio_dir):
            key = entry.name.removesuffix(TRASH_SUFFIX)
            if key != entry.name and key in rows:
                os.rename(entry.path, self.path(key))
                restored.append(key)
        return restored

    def _trashed(self, key: str) -> Path:
        return self.audio_dir / (key + TRASH_SUFFIX)

    async def remove(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._remove, keys)

    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            for path in self.audio_dir.glob(key + "*"):
                path.unlink(missing_ok=True)
        _fsync_dir(self.audio_dir)

    def sidecar(self, key: str, suffix: str) -> Path:
        """A derived file stored beside the audio, removed with it."""
        return self.audio_dir / f"{key}.{suffix}"

    async def remove_sidecar(self, key: str, suffix: str) -> None:
        await asyncio.to_thread(self.sidecar(key, suffix).unlink, missing_ok=True)

    async def read_sidecar(self, key: str, suffix: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self.sidecar(key, suffix).read_bytes)
        except FileNotFoundError:
            return None

    async def write_sidecar(self, key: str, suffix: str, data: bytes) -> None:
        """Write through a temporary file, so readers never see half of it;
        StorageRefused when the storage takes no change."""
        await asyncio.to_thread(self._write_sidecar, key, suffix, data)

    def _write_sidecar(self, key: str, suffix: str, data: bytes) -> None:
        temp = self.temp_dir / (secrets.token_hex(16) + TEMP_SUFFIX)
        try:
            with _disk_full_is_507(), _refusal_is_503("keep the waveform"):
                temp.write_bytes(data)
                os.rename(temp, self.sidecar(key, suffix))
        finally:
            temp.unlink(missing_ok=True)

    # The metadata sidecar (meta.py): written durably, it outlives a lost database.

    async def read_meta(self, key: str) -> bytes | None:
        return await self.read_sidecar(key, META_SUFFIX)

    async def write_meta(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write_meta, key, data)

    def _write_meta(self, key: str, data: bytes) -> None:
        with _refusal_is_503("change the file's record; nothing was changed"):
            self._write_durably(self.sidecar(key, META_SUFFIX), data)
            _fsync_dir(self.audio_dir)

    def sync_metas(self, metas: dict[str, bytes]) -> list[str]:
        """Make each key's sidecar hold exactly its bytes in `metas`; return
        the keys whose sidecar was missing or different, now rewritten."""
        written = []
        for key, data in metas.items():
            try:
                if self.sidecar(key, META_SUFFIX).read_bytes() == data:
                    continue
            except FileNotFoundError:
                pass
            self._write_durably(self.sidecar(key, META_SUFFIX), data)
            written.append(key)
        if written:
            _fsync_dir(self.audio_dir)
        return written

    def _write_durably(self, path: Path, data: bytes) -> None:
        """Through a fsynced temporary file and a rename: `path` holds the old
        bytes or the new ones, never half; the caller fsyncs the directory."""
        temp = self.temp_dir / (secrets.token_hex(16) + TEMP_SUFFIX)
        try:
            with _disk_full_is_507():
                with open(temp, "xb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
            os.rename(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    async def hash_stored(self, key: str, chunk_size: int = 1024 * 1024) -> tuple[str, int]:
        """The sha256 and size of the stored file `key`."""
        return await asyncio.to_thread(self._hash_stored, key, chunk_size)

    def _hash_stored(self, key: str, chunk_size: int) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        with open(self.path(key), "rb") as file:
            while chunk := file.read(chunk_size):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def sidecar_keys(self) -> set[str]:
        """Keys that have derived files beside them."""
        return {entry.name.split(".")[0] for entry in os.scandir(self.audio_dir)
                if "." in entry.name}

    def stored_keys(self) -> set[str]:
        """Keys of every audio file present (sidecars excluded)."""
        return {entry.name for entry in os.scandir(self.audio_dir) if "." not in entry.name}

    def count_stored(self) -> int:
        """How many audio files there are; 0 if there is no storage directory."""
        try:
            return len(self.stored_keys())
        except FileNotFoundError:
            return 0

    def remove_temp_leftovers(self) -> list[str]:
        """Delete uploads a previous process never finished; return their names."""
        removed = []
        for entry in os.scandir(self.temp_dir):
            os.unlink(entry.path)
            removed.append(entry.name)
        return removed

    def remove_sidecars(self, keys: set[str]) -> None:
        """Remove the derived files of `keys`, whose audio files are gone."""
        for key in sorted(keys):
            for path in self.audio_dir.glob(key + ".*"):
                path.unlink(missing_ok=True)
        _fsync_dir(self.audio_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _refusal_is_503(doing: str):
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
def _disk_full_is_507():
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(
                "the server's disk is full; nothing was stored. Try again later "
                "or ask the operator to free space"
            ) from exc
        raise
