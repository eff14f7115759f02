"""Operations that span the database and the file storage.

Each one either completes or leaves the library as it was: the last step
(rename into place, then insert the rows in one transaction) runs shielded
from cancellation, so a client that goes away mid-commit cannot leave a row
without its file or a file without its row.
"""

import asyncio
import functools
import logging
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from .clock import now_rfc3339
from .config import Config
from .errors import StartupError, StorageUnavailable
from .media.preview import Previews
from .media.probe import ProbePool
from .media.waveform import Waveforms
from .metadata import AudioStore, audio_store
from .models import AudioInfo, AudioRecord
from .reconcile import check_not_lost, reconcile
from .storage import Storage, meta, open_storage
from .storage.staging import Upload

log = logging.getLogger(__name__)

# Upload parsers started before serving, in each serving worker; a second
# (config.probe_workers) starts only when one is stuck (see ProbePool).
PROBE_WARM = 1
# Parsers for waveforms, apart from the upload's: one is enough, as each file
# and size is computed once, and long files are sampled in bounded time.
WAVEFORM_WORKERS = 1
# The cover art read from a file's tags, beside it; its media type is in the row.
COVER_SUFFIX = "cover"
# Previews have one of their own: a long file's takes seconds, and must not
# hold the waveforms up.
PREVIEW_WORKERS = 1


@dataclass
class Staged:
    """A received file, fsynced in temporary storage, waiting to be added."""

    name: str
    upload: Upload


class Library:
    """The database and the stored files, kept in agreement."""

    def __init__(self, db: AudioStore, storage: Storage, probes: ProbePool | None,
                 waveforms: Waveforms | None, previews: Previews | None = None):
        self.db = db
        self.storage = storage
        self.probes = probes  # None when opened without parsers
        self.waveforms = waveforms
        # Called with each probe's seconds (the server's metrics), if set.
        self.on_probe = None
        self.previews = previews
        # Removing an account disowns its files, in their sidecars too.
        self.accounts = db.accounts(on_disown=self.disown)

    async def add(self, staged: list[Staged], owner: str | None = None,
                  visibility: str = "public") -> list[AudioRecord]:
        """Probe and store all of `staged`, or none of them."""
        try:
            # Staged uploads are local files whatever the backend (staging.py).
            infos = [await self._probe(item) for item in staged]
        except BaseException:
            await self.discard(staged)
            raise
        return await asyncio.shield(self._commit(staged, infos, owner, visibility))

    async def _probe(self, item: Staged) -> AudioInfo:
        started = time.perf_counter()
        try:
            return await self.probes.probe(item.upload.path, item.name)
        finally:
            if self.on_probe is not None:
                self.on_probe(time.perf_counter() - started)

    async def _commit(self, staged: list[Staged], infos: list[AudioInfo], owner: str | None,
                      visibility: str) -> list[AudioRecord]:
        created_at = now_rfc3339()
        # Keys are chosen when the files are published; the sidecars do not hold them.
        records = [_record(item, info, "", created_at, owner, visibility)
                   for item, info in zip(staged, infos)]
        try:
            keys = await self.storage.publish([item.upload for item in staged],
                                              [meta.encode(record) for record in records])
        except BaseException:
            await self.discard(staged)
            raise
        records = [record._replace(storage_key=key) for record, key in zip(records, keys)]
        try:
            for record, info in zip(records, infos):
                if info.cover is not None:
                    await self.storage.write_sidecar(record.storage_key, COVER_SUFFIX,
                                                     info.cover[1])
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
        """Both the row and the file go, or neither: the file is renamed aside
        first (a storage that refuses changes refuses this, and nothing has
        changed), then the row is deleted, then the file. If the row stays,
        the file is put back; after a crash, the next start puts it back or
        removes it, as its row says."""
        return await asyncio.shield(self._remove(name))

    async def _remove(self, name: str) -> AudioRecord:
        trashed = []

        async def trash(record: AudioRecord) -> None:
            if await self.storage.trash(record.storage_key):
                trashed.append(record.storage_key)

        try:
            record = await self.db.delete(name, before_commit=trash)
        except BaseException:
            for key in trashed:
                await self.storage.untrash(key)
            raise
        await self.storage.remove([record.storage_key])
        log.info("deleted %r", name)
        return record

    async def set_visibility(self, name: str, visibility: str) -> AudioRecord:
        return await asyncio.shield(self.db.set_visibility(name, visibility, self._rewrite_meta))

    async def edit(self, name: str, changes: dict) -> AudioRecord:
        """Rename `name` or change its text fields: the row and its sidecar,
        never the stored bytes (nor the storage key: keys are the server's)."""
        return await asyncio.shield(self.db.edit(name, changes, self._rewrite_meta))

    async def _rewrite_meta(self, before: AudioRecord, after: AudioRecord):
        """Called inside the row's transaction, before it commits: the
        database's write lock, shared by every worker, orders the sidecar
        writes as it orders the commits. A commit that fails puts the old
        sidecar back; a crash before the commit leaves the sidecar ahead of
        the row, and the next start rewrites it from the row (reconcile)."""
        await self.storage.write_meta(after.storage_key, meta.encode(after))
        return functools.partial(self.storage.write_meta, before.storage_key, meta.encode(before))

    async def disown(self, keys: list[str]):
        """Remove the owner from the sidecars of `keys`, inside the transaction
        that removes the account (see _rewrite_meta for why inside); return
        an undo that puts them back."""
        old, new = {}, {}
        for key in keys:
            data = await self.storage.read_meta(key)
            try:
                new[key] = meta.disowned(data or b"")
                old[key] = data
            except ValueError:
                pass  # missing or unreadable: the next start writes it from the row
        await self.storage.sync_metas(new)

        async def undo():
            await self.storage.sync_metas(old)
        return undo


@asynccontextmanager
async def open_library(config: Config, reconcile_storage: bool = True,
                       recovering: bool = False, parsers: bool = True):
    """Open storage, database and (with `parsers`) the parser pools; close
    whatever was opened. The server, the supervisor and every command open
    the library here, each with only what it needs: account commands and
    the start-up check need no parsers.

    Only the server reconciles: an importer running beside it must not take
    the server's in-flight uploads for leftovers. Only `recover` may open a
    lost database (see check_not_lost).
    """
    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(open_storage(config))
        db = audio_store(config)
        blank = not recovering and await check_not_lost(db, storage)
        if blank:
            await storage.create()  # a new library (and SQLite's file goes in its directory)
        stack.push_async_callback(db.close)  # close() copes with a half-done open()
        await db.open()
        if not blank:
            # A database that lists files must find their storage: a missing
            # one is an unmounted disk, not a new library. One that lists none
            # (a PostgreSQL database made empty for us) starts a new library.
            if await db.storage_keys():
                await storage.check_present()
            else:
                await storage.create()
        probes = waveforms = previews = None
        if parsers:
            # One kept warm: the first upload is as quick as the rest.
            probes = ProbePool(config.probe_workers, config.probe_timeout, warm=PROBE_WARM)
            stack.push_async_callback(probes.close)
            await probes.start()  # before serving
            # These two start on their first job and stop when idle.
            waveform_pool = ProbePool(WAVEFORM_WORKERS, config.probe_timeout, warm=0,
                                      name="waveform")
            stack.push_async_callback(waveform_pool.close)
            waveforms = Waveforms(storage, waveform_pool)
            stack.push_async_callback(waveforms.close)  # first: see its docstring
            preview_pool = ProbePool(PREVIEW_WORKERS, config.probe_timeout, warm=0,
                                     name="preview")
            stack.push_async_callback(preview_pool.close)
            previews = Previews(storage, preview_pool)
            stack.push_async_callback(previews.close)
        if reconcile_storage:
            try:
                await reconcile(db, storage)
            except StorageUnavailable:  # an object store that went away meanwhile
                raise StartupError(f"the storage {storage.label} stopped answering while it "
                                   "was checked against the database; start again once it "
                                   "is back") from None
        yield Library(db, storage, probes, waveforms, previews)


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
        cover=info.cover and info.cover[0],
        **info.tags,
    )
