"""The file storage: where the audio files and their sidecars live.

This is the interface callers (library.py, reconcile.py, the download and
waveform code, the commands) are written against; each backend fills it in
a module of its own and keeps its own tricks there (rename, fsync and
sendfile stay in local.py). Callers never see a path: the storage hands out
keys, streams of bytes, small named blobs (sidecars) and, for the probe
worker, a local copy. Every backend stages uploads on the local disk first
(staging.py). Errors are the ones in errors.py: StorageFull, StorageRefused,
StartupError when the storage is not there; FileNotFoundError for a key
with no file (deleted meanwhile).
"""

from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Protocol

from ..config import Config
from .staging import Upload


def storage_for(config: Config) -> "Storage":
    """The storage the configuration names, not yet opened, checked or created."""
    # Imported here: they build on this module.
    if config.on_s3:
        from .s3 import S3Storage
        return S3Storage(config)
    from .local import LocalStorage
    if config.storage is None:
        return LocalStorage(config.data_dir)
    return LocalStorage(Path(config.storage), data_dir=config.data_dir)


@asynccontextmanager
async def open_storage(config: Config) -> AsyncIterator["Storage"]:
    """The storage the configuration names, with its connection (an object
    store's client) open inside the block; not yet checked or created."""
    storage = storage_for(config)
    opener = getattr(storage, "open", None)  # a local directory needs no connection
    if opener is None:
        yield storage
        return
    await opener()
    try:
        yield storage
    finally:
        await storage.close()


class Storage(Protocol):
    """Audio files under server-chosen keys, each with named sidecars."""

    # Where the storage is, for messages to the operator (never a secret).
    label: str

    async def create(self) -> None:
        """Make an empty storage for a new library."""

    async def check_present(self) -> None:
        """StartupError if the storage of an existing library is not there
        (an unmounted disk): nothing may be changed then."""

    async def count_stored(self) -> int:
        """How many audio files are stored; 0 if there is no storage yet."""

    # Receiving: a local temporary file, whatever the backend (staging.py).

    async def open_upload(self) -> Upload: ...

    async def copy_in(self, source: Path) -> Upload:
        """A finished upload holding a copy of the local file `source`."""

    async def finish(self, upload: Upload) -> None:
        """Flush and fsync: the upload is complete and can be published."""

    async def discard(self, upload: Upload) -> None: ...

    async def remove_temp_leftovers(self) -> list[str]:
        """Delete uploads a previous process never finished; their names."""

    async def publish(self, uploads: list[Upload], metas: list[bytes]) -> list[str]:
        """Store finished uploads, all or none, under new keys, each with its
        `.meta` sidecar (meta.py); return the keys. A file is never visible
        under its key without its sidecar, nor half written."""

    async def store_as(self, key: str, source: Path, meta: bytes) -> str:
        """Store the local file `source` under an existing row's `key`, with
        its `.meta` (migrate moves files so); the sha256 of what was stored."""

    # Deleting, all or nothing with the row (see Library.remove).

    async def trash(self, key: str) -> bool:
        """Set the file aside, undoably; False if there is none."""

    async def untrash(self, key: str) -> None:
        """Undo trash(): the row stayed."""

    async def restore_trashed(self, rows: set[str]) -> list[str]:
        """After a crash, undo trash() for the keys in `rows`; return them."""

    async def remove(self, keys: list[str]) -> None:
        """Remove the files of `keys`, trashed or not, and their sidecars."""

    # Sidecars: small named blobs beside a file, removed with it.

    async def read_sidecar(self, key: str, suffix: str) -> bytes | None: ...

    async def write_sidecar(self, key: str, suffix: str, data: bytes) -> None:
        """Readers see the old bytes or the new, never half; StorageRefused
        when the storage takes no change."""

    async def remove_sidecar(self, key: str, suffix: str) -> None: ...

    # Large sidecars (a file's preview): stored from a local file and read by
    # ranges, like the audio itself; removed with it, as every sidecar.

    async def write_sidecar_file(self, key: str, suffix: str, source: Path) -> None:
        """Store the local file `source` (which stays) as a sidecar,
        atomically: readers see all of it or none; StorageRefused when the
        storage takes no change, StorageFull when it has no room."""

    async def sidecar_size(self, key: str, suffix: str) -> int | None:
        """The sidecar's size in bytes; None when there is none."""

    def open_sidecar_range(self, key: str, suffix: str, start: int, end: int
                           ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Like open_range, for a sidecar: FileNotFoundError when absent."""

    def local_sidecar_path(self, key: str, suffix: str) -> Path | None:
        """The sidecar itself, for sendfile; None for a backend without
        local files (see local_path)."""

    async def sidecar_keys(self) -> set[str]:
        """Keys that have sidecars, whether or not their file is there."""

    async def remove_sidecars(self, keys: set[str]) -> None:
        """Remove every sidecar of `keys`, whose files are gone."""

    async def read_meta(self, key: str) -> bytes | None: ...

    async def write_meta(self, key: str, data: bytes) -> None:
        """Durably: the `.meta` sidecar outlives a lost database."""

    async def sync_metas(self, metas: dict[str, bytes]) -> list[str]:
        """Make each key's `.meta` hold its bytes in `metas`; return the keys
        whose sidecar was missing or different, now rewritten."""

    # Reading stored files.

    async def stored_keys(self) -> set[str]:
        """Keys of every stored audio file (for reconcile and recover)."""

    async def stored_sizes(self) -> dict[str, int]:
        """The size of every stored audio file, by key (for check)."""

    async def exists(self, key: str) -> bool:
        """Whether the file of `key` is stored (not deleted, nor set aside)."""

    async def hash_stored(self, key: str) -> tuple[str, int]:
        """The sha256 and size of the stored file `key`."""

    def open_range(self, key: str, start: int, end: int
                   ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """The bytes from `start` up to (not including) `end`, as chunks.
        Entering raises FileNotFoundError for a missing file, so a download
        can still answer 404 before its headers are sent."""

    # Optional: a backend without local files returns None, and downloads
    # stream from open_range instead. Where the file is on this machine,
    # the kernel can send it (sendfile) without copying it through Python.
    def local_path(self, key: str) -> Path | None:
        """The stored file itself, for sendfile; it may be gone by the time
        it is opened (FileNotFoundError)."""

    # The probe workers run libsndfile, which reads a path and seeks all
    # over the file: a stream would not do, and a worker that crashes on
    # untrusted bytes must not hold the storage's connection. A backend
    # without local files downloads a temporary copy here.
    def local_copy(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding the bytes of `key`, valid inside the block
        (for the local disk, the file itself, which a delete may take away
        meanwhile); FileNotFoundError if there is nothing to copy."""
