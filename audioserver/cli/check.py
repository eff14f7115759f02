"""`python -m audioserver check [--repair] [--deep]`: every row against its stored file.

Reports what is missing (a row whose file is not stored), damaged (stored
with another size, or with --deep another sha256) and extra (a stored file
no row names), and exits 1 if anything is missing or damaged. With
--repair, rows whose file is missing are marked unavailable (410), and
those whose file is back available again, as the server's start does;
nothing is ever deleted.
"""

import sys

from ..config import Config
from ..library import open_library
from .importer import ProgressBar


async def check(config: Config, repair: bool = False, deep: bool = False) -> int:
    async with open_library(config, reconcile_storage=False, parsers=False) as library:
        records = await library.db.records()
        available = await library.db.storage_keys()
        sizes = await library.storage.stored_sizes()
        missing, damaged = [], []
        progress = ProgressBar()
        progress.total = len(records)
        for record in records:
            progress.show(record.name)
            why = await _problem(library.storage, record, sizes, deep)
            progress.advance()
            if why is None:
                continue
            (missing if why == "missing" else damaged).append(record)
            progress.note(f"{why}: {record.name!r} (key {record.storage_key})")
        progress.finish()
        extra = sorted(sizes.keys() - {record.storage_key for record in records})
        for key in extra:
            print(f"extra: {key} (no row names it; `recover --merge` adds it)", file=sys.stderr)
        if repair:
            await _repair(library.db, available, sizes.keys())
    print(f"checked {len(records)} file{'s' if len(records) != 1 else ''}: {len(missing)} "
          f"missing, {len(damaged)} damaged, {len(extra)} extra"
          + (" (sizes only: --deep checks every sha256)" if not deep else ""))
    return 1 if missing or damaged else 0


async def _problem(storage, record, sizes: dict[str, int], deep: bool) -> str | None:
    """What is wrong with the stored file of `record`, or None."""
    size = sizes.get(record.storage_key)
    if size is None:
        return "missing"
    if size != record.size:
        return f"damaged (size {size}, not {record.size})"
    if deep:
        try:
            sha256, _ = await storage.hash_stored(record.storage_key)
        except FileNotFoundError:
            return "missing"
        if sha256 != record.sha256:
            return "damaged (sha256 differs)"
    return None


async def _repair(db, rows: dict[str, tuple[str, bool]], stored) -> None:
    """What the server's start does: missing files' rows unavailable, returned ones available."""
    gone = [key for key, (_, available) in rows.items() if available and key not in stored]
    back = [key for key, (_, available) in rows.items() if not available and key in stored]
    if gone:
        await db.set_available(gone, False)
    if back:
        await db.set_available(back, True)
    print(f"repaired: {len(gone)} marked unavailable, {len(back)} available again")
