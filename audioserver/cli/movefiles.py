"""`python -m audioserver migrate --to-storage DIR|s3://BUCKET/PREFIX`: move
the stored files of a library between a directory and a bucket.

Every row's file is copied under the same key with its `.meta` and its
cover art, and checked
by sha256 as it is written: the database needs no change. A file the target
already holds with the row's size is skipped (it was checked when copied),
so running it again finishes a run that was interrupted. The source is not
changed. Derived data (waveform peaks, previews) is not copied: it is made
again on first use.
"""

import sys
from dataclasses import replace

from ..config import Config
from ..errors import AudioServerError, StartupError
from ..library import COVER_SUFFIX, open_library
from ..storage import meta, open_storage
from .importer import ProgressBar


async def move_files(config: Config, target_storage: str) -> int:
    target_config = replace(config, storage=target_storage)
    try:
        async with open_library(config, reconcile_storage=False, parsers=False) as library, \
                open_storage(target_config) as target:
            if target.label == library.storage.label:
                return _fail("--to-storage names the storage the files are in already")
            await target.create()
            copied, present, failed = await _copy(library, target)
    except StartupError as exc:
        return _fail(str(exc))
    except AudioServerError as exc:
        return _fail(f"{exc.detail}; run migrate again once that is fixed: what was "
                     "copied stays copied")
    print(f"copied {copied} file{'s' if copied != 1 else ''} to {target.label}, verified "
          f"by sha256; {present} already there. The database and {library.storage.label} "
          f"are unchanged: start the server with --storage {target_storage}")
    if failed:
        return _fail(f"{len(failed)} not copied: " + "; ".join(failed))
    return 0


async def _copy(library, target) -> tuple[int, int, list[str]]:
    records = sorted(await library.db.records())
    sizes = await target.stored_sizes()
    progress = ProgressBar()
    progress.total = len(records)
    copied = present = 0
    failed = []
    for record in records:
        progress.show(record.name)
        progress.advance()
        if sizes.get(record.storage_key) == record.size:
            present += 1
            continue
        try:
            await _copy_cover(library.storage, target, record)
            async with library.storage.local_copy(record.storage_key) as path:
                sha256 = await target.store_as(record.storage_key, path, meta.encode(record))
        except FileNotFoundError:
            failed.append(f"{record.name!r} is missing from the source")
            continue
        if sha256 != record.sha256:
            await target.remove([record.storage_key])
            failed.append(f"{record.name!r} does not match its sha256 (run check --deep)")
            continue
        copied += 1
    progress.finish()
    return copied, present, failed


async def _copy_cover(source, target, record) -> None:
    """The cover art, the one sidecar that is not made again when asked for
    (peaks and previews are). It goes before the file, whose presence in the
    target is what makes a later run skip it."""
    if record.cover is None:
        return
    data = await source.read_sidecar(record.storage_key, COVER_SUFFIX)
    if data is not None:
        await target.write_sidecar(record.storage_key, COVER_SUFFIX, data)


def _fail(message: str) -> int:
    print(f"audioserver: {message}", file=sys.stderr)
    return 1
