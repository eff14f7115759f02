"""Bring the database and the stored files into agreement at start-up.

Nothing a user uploaded is ever deleted here: rows whose file is missing are
only marked unavailable (and come back with the file), and a complete file
no row names is left in place (`recover` can adopt it). What is removed is
unfinished temporary uploads, and derived files whose audio file is gone.
"""

import logging

from .errors import StartupError
from .metadata import AudioStore
from .storage import Storage, meta

log = logging.getLogger(__name__)


async def reconcile(db: AudioStore, storage: Storage) -> None:
    rows = await db.storage_keys()
    # A delete interrupted before its row went: the file comes back.
    for key in await storage.restore_trashed(rows.keys()):
        log.warning("put back the file of %r: its delete never completed", rows[key][0])
    stored = await storage.stored_keys()
    if rows and not rows.keys() & stored:
        raise StartupError(
            f"none of the {len(rows)} files the database lists is in the storage "
            f"{storage.label}: is the right disk mounted? Nothing was changed."
        )
    if not rows and stored:
        # A database that lists nothing beside a store that holds files was
        # lost or replaced: serving it would show an empty library.
        raise StartupError(lost_database_message(storage, len(stored),
                                                 f"its database {db.label} lists none"))
    for leftover in await storage.remove_temp_leftovers():
        log.warning("removed the unfinished upload %s", leftover)
    for key in sorted(stored - rows.keys()):
        log.warning("kept %s: no row names it (an upload or a delete cut short by a crash); "
                    "`python -m audioserver recover --merge` adds it to the library, "
                    "or delete the file by hand", key)
    # Derived files (waveform peaks) of a file deleted while they were made.
    orphans = await storage.sidecar_keys() - rows.keys() - stored
    if orphans:
        await storage.remove_sidecars(orphans)
    await _update_availability(db, storage, rows, stored)
    await _sync_metas(db, storage, stored)


async def _sync_metas(db: AudioStore, storage: Storage, stored: set[str]) -> None:
    """Make every stored file's sidecar say what its row says: a library from
    before sidecars gets them (so an upgrade is protected at once), and one
    a crash left ahead of its row is put back (the database is the truth)."""
    metas = {record.storage_key: meta.encode(record) for record in await db.records()
             if record.storage_key in stored}
    written = await storage.sync_metas(metas)
    if written:
        log.warning("wrote the metadata sidecar of %d stored file%s, from which "
                    "`python -m audioserver recover` can rebuild a lost database",
                    len(written), "s" if len(written) != 1 else "")


async def check_not_lost(db: AudioStore, storage: Storage) -> bool:
    """Whether `db` is blank (a new library), before anything opens it.

    Stored files beside a blank database are a lost database, not a new
    install: starting would make an empty library and hide every file, so
    that is a StartupError, and nothing is changed."""
    blank = await db.is_blank()
    if blank and (stored := await storage.count_stored()):
        raise StartupError(lost_database_message(storage, stored,
                                                 f"its database {db.label} {blank}"))
    return bool(blank)


def lost_database_message(storage: Storage, stored: int, what: str) -> str:
    files = f"{stored} stored audio file{'s' if stored != 1 else ''}"
    return (
        f"the storage {storage.label} holds {files} but {what}. Restore the database "
        "from a backup, or rebuild the library from the stored files with "
        "`python -m audioserver recover`. Nothing was changed."
    )


async def _update_availability(
    db: AudioStore, storage: Storage, rows: dict, stored: set[str]
) -> None:
    missing = [key for key, (_, available) in rows.items() if available and key not in stored]
    returned = [key for key, (_, available) in rows.items() if not available and key in stored]
    for key in missing:
        log.error("the file of %r (key %s) is missing from the storage %s; it is "
                  "unavailable until restored", rows[key][0], key, storage.label)
    for key in returned:
        log.warning("the file of %r is back; it is available again", rows[key][0])
    if missing:
        await db.set_available(missing, False)
    if returned:
        await db.set_available(returned, True)

