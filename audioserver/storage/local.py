"""Stored audio files on the local disk: atomic rename, fsync, removal.

Files live under server-chosen keys in `<data>/audio/`; a client's name
never becomes a path. Beside each, `<key>.meta` keeps what its row holds
(meta.py), and derived files (waveform peaks) sit as `<key>.<suffix>`. An
upload is written to `<data>/tmp/` (staging.py), fsynced and renamed into
place, so `audio/` only ever holds complete files. The blocking calls run in
threads: the methods here are async for the handlers' sake. Paths are this
module's business: callers get them only through local_path and local_copy.
"""

import asyncio
import hashlib
import logging
import os
import secrets
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from ..errors import StartupError
from .meta import META_SUFFIX
from .staging import (STORE_REFUSED, TEMP_SUFFIX, Staging, Upload, disk_full_is_507,
                      refusal_is_503)

log = logging.getLogger(__name__)

AUDIO_DIR = "audio"
TEMP_DIR = "tmp"
# A file being deleted: renamed aside while its row goes (see Library.remove).
TRASH_SUFFIX = ".deleting"
READ_CHUNK = 256 * 1024

__all__ = ["AUDIO_DIR", "TEMP_DIR", "TEMP_SUFFIX", "TRASH_SUFFIX", "LocalStorage"]


class LocalStorage(Staging):
    """Audio files in a directory on the local disk."""

    def __init__(self, root: Path, data_dir: Path | None = None):
        super().__init__(root / TEMP_DIR)
        self.data_dir = data_dir
        self.audio_dir = root / AUDIO_DIR
        self.label = str(self.audio_dir)

    async def create(self) -> None:
        """Create the directories of a new data directory (or --storage DIR)."""
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        if self.data_dir is not None:
            # SQLite's file stays there when the files are elsewhere.
            self.data_dir.mkdir(parents=True, exist_ok=True)

    async def check_present(self) -> None:
        if not self.audio_dir.is_dir():
            raise StartupError(
                f"the storage directory {self.audio_dir} is missing, but the database "
                "lists files: is the disk mounted? Nothing was changed."
            )
        self.temp_dir.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        return self.audio_dir / key

    def local_path(self, key: str) -> Path:
        return self.path(key)

    @asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        # The file itself: it never changes under its key, so no copy is
        # needed. One deleted meanwhile fails in the worker that opens it.
        yield self.path(key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).exists)

    @asynccontextmanager
    async def open_range(self, key: str, start: int, end: int
                         ) -> AsyncIterator[AsyncIterator[bytes]]:
        file = await asyncio.to_thread(open, self.path(key), "rb")
        try:
            yield self._read(file, start, end)
        finally:
            file.close()  # read-only: closing does not wait for the disk

    async def _read(self, file, start: int, end: int) -> AsyncIterator[bytes]:
        await asyncio.to_thread(file.seek, start)
        left = end - start
        while left > 0:
            chunk = await asyncio.to_thread(file.read, min(READ_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

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
                with refusal_is_503(STORE_REFUSED):
                    # The sidecar first: an audio file in place always has one.
                    self._write_durably(self.sidecar(key, META_SUFFIX), meta)
                    os.rename(upload.path, self.path(key))
                upload.close()
            _fsync_dir(self.audio_dir)
        except BaseException:
            self._remove(keys)
            raise
        return keys

    async def store_as(self, key: str, source: Path, meta: bytes) -> str:
        """Copy the local file `source` in under `key` with its `.meta`, for
        migrate; the sha256 of the bytes written."""
        upload = await self.copy_in(source)
        try:
            await asyncio.to_thread(self._store_as, key, upload, meta)
        except BaseException:
            await self.discard(upload)
            raise
        return upload.sha256

    def _store_as(self, key: str, upload: Upload, meta: bytes) -> None:
        with refusal_is_503(STORE_REFUSED):
            self._write_durably(self.sidecar(key, META_SUFFIX), meta)
            os.rename(upload.path, self.path(key))
        upload.close()
        _fsync_dir(self.audio_dir)

    async def trash(self, key: str) -> bool:
        """Rename the file aside, the step of a delete that can be undone;
        False if there is no file (its row was unavailable)."""
        return await asyncio.to_thread(self._trash, key)

    def _trash(self, key: str) -> bool:
        try:
            with refusal_is_503("delete the file; nothing was deleted"):
                os.rename(self.path(key), self._trashed(key))
        except FileNotFoundError:
            return False
        return True

    async def untrash(self, key: str) -> None:
        """Undo trash(): the delete did not go through."""
        await asyncio.to_thread(os.rename, self._trashed(key), self.path(key))

    async def restore_trashed(self, rows: set[str]) -> list[str]:
        """Put back the files of deletes that never committed (their key is in
        `rows`) and return their keys; the others, unreferenced, are left
        for removal with the rest of what no row refers to."""
        return await asyncio.to_thread(self._restore_trashed, rows)

    def _restore_trashed(self, rows: set[str]) -> list[str]:
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
        temp = self.temp_path()
        try:
            with disk_full_is_507(), refusal_is_503("keep the waveform"):
                temp.write_bytes(data)
                os.rename(temp, self.sidecar(key, suffix))
        finally:
            temp.unlink(missing_ok=True)

    async def write_sidecar_file(self, key: str, suffix: str, source: Path) -> None:
        await asyncio.to_thread(self._write_sidecar_file, key, suffix, source)

    def _write_sidecar_file(self, key: str, suffix: str, source: Path) -> None:
        temp = self.temp_path()
        try:
            # Derived from the audio, so not fsynced: a crash loses a copy
            # that is made again, never the library's data.
            with disk_full_is_507(), refusal_is_503("keep the preview"):
                shutil.copyfile(source, temp)
                os.rename(temp, self.sidecar(key, suffix))
        finally:
            temp.unlink(missing_ok=True)

    async def sidecar_size(self, key: str, suffix: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.sidecar(key, suffix).stat)).st_size
        except FileNotFoundError:
            return None

    @asynccontextmanager
    async def open_sidecar_range(self, key: str, suffix: str, start: int, end: int
                                 ) -> AsyncIterator[AsyncIterator[bytes]]:
        file = await asyncio.to_thread(open, self.sidecar(key, suffix), "rb")
        try:
            yield self._read(file, start, end)
        finally:
            file.close()

    def local_sidecar_path(self, key: str, suffix: str) -> Path:
        return self.sidecar(key, suffix)

    # The metadata sidecar (meta.py): written durably, it outlives a lost database.

    async def read_meta(self, key: str) -> bytes | None:
        return await self.read_sidecar(key, META_SUFFIX)

    async def write_meta(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write_meta, key, data)

    def _write_meta(self, key: str, data: bytes) -> None:
        with refusal_is_503("change the file's record; nothing was changed"):
            self._write_durably(self.sidecar(key, META_SUFFIX), data)
            _fsync_dir(self.audio_dir)

    async def sync_metas(self, metas: dict[str, bytes]) -> list[str]:
        """Make each key's sidecar hold exactly its bytes in `metas`; return
        the keys whose sidecar was missing or different, now rewritten."""
        return await asyncio.to_thread(self._sync_metas, metas)

    def _sync_metas(self, metas: dict[str, bytes]) -> list[str]:
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
        temp = self.temp_path()
        try:
            with disk_full_is_507():
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

    async def sidecar_keys(self) -> set[str]:
        """Keys that have derived files beside them."""
        return await asyncio.to_thread(self._sidecar_keys)

    def _sidecar_keys(self) -> set[str]:
        return {entry.name.split(".")[0] for entry in os.scandir(self.audio_dir)
                if "." in entry.name}

    async def stored_keys(self) -> set[str]:
        """Keys of every audio file present (sidecars excluded)."""
        return await asyncio.to_thread(self._stored_keys)

    def _stored_keys(self) -> set[str]:
        return {entry.name for entry in os.scandir(self.audio_dir) if "." not in entry.name}

    async def stored_sizes(self) -> dict[str, int]:
        """The size of every audio file present, by key."""
        return await asyncio.to_thread(self._stored_sizes)

    def _stored_sizes(self) -> dict[str, int]:
        return {entry.name: entry.stat().st_size for entry in os.scandir(self.audio_dir)
                if "." not in entry.name}

    async def count_stored(self) -> int:
        """How many audio files there are; 0 if there is no storage directory."""
        try:
            return len(await self.stored_keys())
        except FileNotFoundError:
            return 0

    async def remove_sidecars(self, keys: set[str]) -> None:
        """Remove the derived files of `keys`, whose audio files are gone."""
        await asyncio.to_thread(self._remove_sidecars, keys)

    def _remove_sidecars(self, keys: set[str]) -> None:
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
