"""Bring the database and the stored files into agreement at start-up.

Nothing a user uploaded is ever deleted here: rows whose file is missing are
only marked unavailable (and come back with the file); what is removed is
what no row references — unfinished temporary uploads and files whose
upload never committed.
"""

import asyncio
import logging

from .db import Database
from .errors import StartupError
from .storage import LocalStorage

log = logging.getLogger(__name__)


async def reconcile(db: Database, storage: LocalStorage) -> None:
    rows = await db.storage_keys()
    # A delete interrupted before its row went: the file comes back.
    for key in await asyncio.to_thread(storage.restore_trashed, rows.keys()):
        log.warning("put back the file of %r: its delete never completed", rows[key][0])
    stored = await asyncio.to_thread(storage.stored_keys)
    if rows and not rows.keys() & stored:
        raise StartupError(
            f"none of the {len(rows)} files the database lists is in {storage.audio_dir}: "
            "is the right disk mounted? Nothing was changed."
        )
    for leftover in await asyncio.to_thread(storage.remove_temp_leftovers):
        log.warning("removed the unfinished upload %s", leftover)
    # Derived files (waveform peaks) of a file deleted while they were made.
    unreferenced = (stored | await asyncio.to_thread(storage.sidecar_keys)) - rows.keys()
    if unreferenced:
        for key in sorted(unreferenced):
            log.warning("removed %s: no row references it (an upload that never committed)", key)
        await asyncio.to_thread(storage.remove_unreferenced, unreferenced)
    await _update_availability(db, storage, rows, stored)


async def _update_availability(
    db: Database, storage: LocalStorage, rows: dict, stored: set[str]
) -> None:
    missing = [key for key, (_, available) in rows.items() if available and key not in stored]
    returned = [key for key, (_, available) in rows.items() if not available and key in stored]
    for key in missing:
        log.error("the file of %r (%s) is missing; it is unavailable until restored",
                  rows[key][0], storage.path(key))
    for key in returned:
        log.warning("the file of %r is back; it is available again", rows[key][0])
    if missing:
        await db.set_available(missing, False)
    if returned:
        await db.set_available(returned, True)

