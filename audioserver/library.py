"""Operations that span the database and the file storage.

Each one either completes or leaves the library as it was: the last step
(rename into place, then insert the rows in one transaction) runs shielded
from cancellation, so a client that goes away mid-commit cannot leave a row
without its file or a file without its row.
"""

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from .db import Database
from .models import AudioInfo, AudioRecord
from .probe import ProbePool
from .reconcile import reconcile
from .settings import Config
from .storage import LocalStorage, Upload
from .waveform import Waveforms

log = logging.getLogger(__name__)

# Parsers for waveforms, apart from the upload's: one is enough, as each file
# and size is computed once, and long files are sampled in bounded time.
WAVEFORM_WORKERS = 1


@dataclass
class Staged:
    """A received file, fsynced in temporary storage, waiting to be added."""

    name: str
    upload: Upload


class Library:
    """The database and the stored files, kept in agreement."""

    def __init__(self, db: Database, storage: LocalStorage, probes: ProbePool,
                 waveforms: Waveforms):
        self.db = db
        self.storage = storage
        self.probes = probes
        self.waveforms = waveforms

    async def add(self, staged: list[Staged], owner: str | None = None,
                  visibility: str = "public") -> list[AudioRecord]:
        """Probe and store all of `staged`, or none of them."""
        try:
            infos = [await self.probes.probe(item.upload.path, item.name) for item in staged]
        except BaseException:
            await self.discard(staged)
            raise
        return await asyncio.shield(self._commit(staged, infos, owner, visibility))

    async def _commit(self, staged: list[Staged], infos: list[AudioInfo], owner: str | None,
                      visibility: str) -> list[AudioRecord]:
        try:
            keys = await self.storage.publish([item.upload for item in staged])
        except BaseException:
            await self.discard(staged)
            raise
        created_at = now_rfc3339()
        records = [
            _record(item, info, key, created_at, owner, visibility)
            for item, info, key in zip(staged, infos, keys)
        ]
        try:
            await self.db.insert(records)
        except BaseException:
            await self.storage.remove(keys)
            raise
        for record in records:
            log.info("stored %r (%s, %.3f s, %d bytes)", record.name, record.format,
                     record.duration, record.size)
        return records

    async def discard(self, staged: list[Staged]) -> None:
        for item in staged:
            await self.storage.discard(item.upload)

    async def remove(self, name: str) -> AudioRecord:
        """Delete the row, then the file: a crash between leaves a stray file,
        which the next start removes, never a row pointing at nothing."""
        return await asyncio.shield(self._remove(name))

    async def _remove(self, name: str) -> AudioRecord:
        record = await self.db.delete(name)
        await self.storage.remove([record.storage_key])
        log.info("deleted %r", name)
        return record


@asynccontextmanager
async def open_library(config: Config, reconcile_storage: bool = True):
    """Open storage, database and parser pools; close whatever was opened.

    Only the server reconciles: an importer running beside it must not take
    the server's in-flight uploads for leftovers.
    """
    storage = LocalStorage(config.data_dir)
    if config.db_path.exists():
        storage.check_present()
    else:
        storage.create()
    async with AsyncExitStack() as stack:
        db = Database(config.db_path)
        stack.push_async_callback(db.close)  # close() copes with a half-done open()
        await db.open()
        probes = ProbePool(config.probe_workers, config.probe_timeout)
        stack.push_async_callback(probes.close)
        waveform_pool = ProbePool(WAVEFORM_WORKERS, config.probe_timeout)
        stack.push_async_callback(waveform_pool.close)
        waveforms = Waveforms(storage, waveform_pool)
        stack.push_async_callback(waveforms.close)  # first: see its docstring
        if reconcile_storage:
            await reconcile(db, storage)
        yield Library(db, storage, probes, waveforms)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _record(item: Staged, info: AudioInfo, key: str, created_at: str, owner: str | None,
            visibility: str) -> AudioRecord:
    return AudioRecord(
        name=item.name,
        duration=info.duration,
        frames=info.frames,
        samplerate=info.samplerate,
        channels=info.channels,
        format=info.format,
        subtype=info.subtype,
        content_type=info.content_type,
        size=item.upload.size,
        sha256=item.upload.sha256,
        created_at=created_at,
        owner=owner,
        visibility=visibility,
        storage_key=key,
    )
