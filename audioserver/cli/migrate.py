"""`python -m audioserver migrate --to URL`: copy a library's rows and
accounts into another database, SQLite or PostgreSQL, either way.

Both databases describe the same stored files (the data directory), so
nothing there is read or written. Accounts go first (files name their
owners), then the rows in batches of one transaction each; a row the target
already holds as it is is skipped, so running it again finishes a run that
was interrupted and copies nothing after one that completed. Sessions and
failed sign-ins stay behind: people sign in again.
"""

import hashlib
import json
import sys
from dataclasses import astuple, replace

from ..config import Config
from ..errors import AudioServerError, StartupError
from ..metadata import AudioStore, Conflict, audio_store, identity
from .importer import ProgressBar

# Rows per transaction: what an interruption can lose, and what each commit costs.
BATCH = 1000


async def migrate(config: Config, source_url: str | None, target_url: str) -> int:
    """Copy everything from `source_url` (None: the configured database) to
    `target_url`, verify, print a summary; 1 on any difference."""
    source_config = replace(config, database=source_url or config.database)
    target_config = replace(config, database=target_url)
    if _same_database(source_config, target_config):
        return _fail("--from and --to name the same database; nothing was copied")
    source, target = audio_store(source_config), audio_store(target_config)
    try:
        if (blank := await source.is_blank()) is not None:
            return _fail(f"the database {source.label} {blank}, so there is nothing to "
                         "migrate; --from names the database to copy from")
        await source.open()
        await target.open()  # migrated to the current schema, as the server would
        copied, accounts = await _copy(source, target)
        differences = await _differences(source, target)
    except StartupError as exc:
        return _fail(str(exc))
    except AudioServerError as exc:  # the target's disk is full, say
        return _fail(f"{exc.detail}; run migrate again once that is fixed")
    except Conflict as exc:
        return _fail(f"{exc}; migrate stopped there. What it copied before stays; remove "
                     f"the differing row from {target.label} (or choose an empty --to) and "
                     "run it again")
    finally:
        await source.close()
        await target.close()
    print(f"the stored files were not touched: {source.label} and {target.label} both "
          f"describe the files in {config.data_dir}. Sessions and failed sign-ins were "
          "not copied: people sign in again; passwords and API tokens work as before")
    if differences:
        return _fail("copied, but the databases differ: " + "; ".join(differences))
    print(f"migrated {copied} file{'s' if copied != 1 else ''} and {accounts} "
          f"account{'s' if accounts != 1 else ''}; verified: counts and checksums match")
    return 0


async def _copy(source: AudioStore, target: AudioStore) -> tuple[int, int]:
    """How many files and accounts the target did not have."""
    users, tokens = await source.accounts().export()
    accounts, _ = await target.accounts().copy_in(users, tokens)
    records = sorted(await source.records())
    progress = ProgressBar()
    progress.total = len(records)
    copied = 0
    for start in range(0, len(records), BATCH):
        batch = records[start:start + BATCH]
        progress.show(batch[0].name)
        copied += await target.copy_in(batch)
        progress.advance(len(batch))
    progress.finish()
    return copied, accounts


async def _differences(source: AudioStore, target: AudioStore) -> list[str]:
    """What differs between the two databases' copies, counted and checksummed."""
    sides = []
    for store in (source, target):
        users, tokens = await store.accounts().export()
        sides.append({
            "files": [identity(record) for record in await store.records()],
            "accounts": [astuple(user) for user in users],
            # A token's last use is not part of it (the target's may be newer).
            "API tokens": [astuple(replace(token, last_used_at=None)) for token in tokens],
        })
    differences = []
    for table, rows in sides[0].items():
        theirs = sides[1][table]
        if len(rows) != len(theirs):
            differences.append(f"{len(rows)} {table} in --from, {len(theirs)} in --to")
        elif _checksum(rows) != _checksum(theirs):
            differences.append(f"the checksums of the {table} differ")
    return differences


def _checksum(rows: list[tuple]) -> str:
    """sha256 over the sorted rows, each as one line of JSON."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=json.dumps):
        digest.update(json.dumps(row).encode() + b"\n")
    return digest.hexdigest()


def _same_database(first: Config, second: Config) -> bool:
    if first.on_postgres or second.on_postgres:
        return audio_store(first).label == audio_store(second).label
    return first.db_path.resolve() == second.db_path.resolve()


def _fail(message: str) -> int:
    print(f"audioserver: {message}", file=sys.stderr)
    return 1
