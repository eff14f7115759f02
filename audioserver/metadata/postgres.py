"""The metadata store on PostgreSQL, through an asyncpg connection pool.

Several server instances may share one database, so nothing here relies on
being the only writer: the UNIQUE constraint decides name clashes, a listing
reads its count and its page from one REPEATABLE READ snapshot, and every
transaction that changes audio rows bumps a one-row `data_version`, which is
what lets each process keep counts it can trust. The audio table stays
distributable on `name` (Citus): every unique key on it contains `name`.
"""

import logging
import urllib.parse
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg

from ..accounts import EVERYTHING, Viewer
from ..errors import NameTaken, StartupError, StorageFull
from ..models import EDITABLE_FIELDS, SORT_COLUMNS, AudioRecord, ListQuery
from . import Conflict, needs_copy, no_audio, visible

if TYPE_CHECKING:
    from .postgres_accounts import PostgresAccounts

log = logging.getLogger(__name__)

# The same version numbers as sqlite.MIGRATIONS, written for PostgreSQL:
# entry N here brings a database to the state of SQLite's entry N. Never
# edit an entry once released: append a new one. Times are RFC 3339 UTC text.
MIGRATIONS = [
    """
    CREATE TABLE audio (
        name TEXT NOT NULL,
        name_folded TEXT NOT NULL,
        storage_key TEXT NOT NULL,
        duration DOUBLE PRECISION NOT NULL,
        frames BIGINT NOT NULL,
        samplerate BIGINT NOT NULL,
        channels BIGINT NOT NULL,
        format TEXT NOT NULL,
        subtype TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        available BOOLEAN NOT NULL DEFAULT TRUE,
        -- The default page (by name) walks this index; the duration rides
        -- along for /info's total without touching the table.
        CONSTRAINT audio_name UNIQUE (name) INCLUDE (duration)
    );
    -- Not UNIQUE: a unique key without name could not be distributed by
    -- name. Keys are random, and the storage refuses to reuse one.
    CREATE INDEX audio_storage_key ON audio (storage_key);
    -- Every listing asks for available rows, so it leads each sort's index.
    CREATE INDEX audio_duration ON audio (available, duration, name);
    CREATE INDEX audio_size ON audio (available, size, name);
    CREATE INDEX audio_created ON audio (available, created_at, name);
    CREATE INDEX audio_format ON audio (available, format, name);
    CREATE INDEX audio_samplerate ON audio (available, samplerate, name);
    CREATE INDEX audio_channels ON audio (available, channels, name);
    -- Bumped by every transaction that changes audio rows (see module doc).
    CREATE TABLE data_version (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        version BIGINT NOT NULL
    );
    INSERT INTO data_version (version) VALUES (0);
    """,
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_name);
    CREATE TABLE api_tokens (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE INDEX api_tokens_user ON api_tokens (user_name);
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures BIGINT NOT NULL,
        last_failure TEXT NOT NULL
    );
    ALTER TABLE audio ADD COLUMN owner TEXT REFERENCES users (name) ON DELETE SET NULL;
    ALTER TABLE audio ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
        CHECK (visibility IN ('public', 'private'));
    CREATE INDEX audio_owner ON audio (available, owner, name);
    """,
    """
    ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
    """,
    """
    -- SQLite's version 4 turns epoch seconds and second-precision times
    -- into clock.py's one form. Here every time was that form from the
    -- start: nothing to do but keep the numbers in step.
    SELECT 1;
    """,
    """
    ALTER TABLE audio ADD COLUMN title TEXT, ADD COLUMN artist TEXT, ADD COLUMN album TEXT,
        ADD COLUMN track TEXT, ADD COLUMN date TEXT, ADD COLUMN genre TEXT,
        ADD COLUMN comment TEXT, ADD COLUMN description TEXT, ADD COLUMN cover TEXT,
        ADD COLUMN tags_folded TEXT NOT NULL DEFAULT '';
    CREATE INDEX audio_artist ON audio (available, artist, name);
    CREATE INDEX audio_album ON audio (available, album, name);
    """,
]

COLUMNS = (
    "name, duration, frames, samplerate, channels, format, subtype, "
    "content_type, size, sha256, created_at, owner, visibility, storage_key, available, "
    "title, artist, album, track, date, genre, comment, description, cover"
)
# Written with each row besides COLUMNS: what case-insensitive matching reads.
INSERT = (f"INSERT INTO audio ({COLUMNS}, name_folded, tags_folded) VALUES "
          f"({', '.join(f'${n}' for n in range(1, COLUMNS.count(',') + 4))})")
# What an edit writes: the name and the text fields, with their folded forms.
EDITED = ("name", "name_folded", "visibility", *EDITABLE_FIELDS, "tags_folded")
# Any constant will do; it only has to be the same in every instance.
MIGRATION_LOCK = 0x617564696F
BUMP_VERSION = "UPDATE data_version SET version = version + 1"
CONNECT_TIMEOUT = 10.0
CONNECT_ADVICE = ("Check that the server runs, that the database exists and that the user "
                  "and password in --database are right")
DISK_FULL = ("the database server's disk is full; nothing was changed. Try again later "
             "or ask the operator to free space")
MAX_KEPT_COUNTS = 1000


class PostgresDatabase:
    """The PostgreSQL metadata store. Open with `await open()`, then `close()`."""

    def __init__(self, url: str, min_size: int = 1, max_size: int = 10):
        self.url = url
        # Host and database only: the URL may carry a password.
        parts = urllib.parse.urlsplit(url)
        self.label = (f"postgresql://{parts.hostname or 'localhost'}:{parts.port or 5432}"
                      f"/{parts.path.lstrip('/')}")
        self.min_size, self.max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None
        self._counts: dict[tuple[str, tuple], int] = {}
        self._counts_version: int | None = None

    async def is_blank(self) -> str | None:
        """Before open(): whether the database has never held our schema (a
        new library, or a lost one). Unreachable is a StartupError."""
        try:
            conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._unusable(exc, CONNECT_ADVICE) from None
        try:
            found = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        finally:
            await conn.close()
        return None if found else "has no tables yet"

    async def open(self) -> None:
        """Connect and migrate; StartupError in one line if that fails."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size,
                timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._unusable(exc, CONNECT_ADVICE) from None
        try:
            await self._migrate()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self.close()
            raise self._unusable(exc, "The user in --database must be allowed to create "
                                      "tables in it") from None

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    def _unusable(self, exc: BaseException, advice: str) -> StartupError:
        """The one line an operator reads."""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StartupError(
            f"cannot use the database {self.label} ({reason}); nothing was changed. " + advice)

    async def _migrate(self) -> None:
        """Bring the schema up to date, one instance at a time: the others
        wait on the lock, then find nothing left to do."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version"
                               " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                log.info("migrating the database to schema version %d", number)
                await conn.execute(script)
                await conn.execute(
                    "INSERT INTO schema_version VALUES ($1, to_char(now() AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))", number)

    def accounts(self, on_disown=None) -> "PostgresAccounts":
        """The store of accounts that lives in this database (see
        PostgresAccounts for `on_disown`)."""
        from .postgres_accounts import PostgresAccounts  # it builds on this module
        return PostgresAccounts(self, on_disown)

    @asynccontextmanager
    async def transaction(self, changes_audio: bool = True):
        """A read-write transaction on a pooled connection. When it changes
        audio rows, data_version is bumped last, so its row lock is held
        only for the commit."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
                if changes_audio:
                    await conn.execute(BUMP_VERSION)
        except asyncpg.DiskFullError:
            raise StorageFull(DISK_FULL) from None

    @property
    def pool(self) -> asyncpg.Pool:
        """For the account store (PostgresAccounts), which shares it."""
        return self._pool

    # Reads

    async def get(self, name: str, viewer: Viewer = EVERYTHING) -> AudioRecord:
        """The record called `name`; NotFound, or Gone when its file is missing.

        A private file `viewer` may not see is not found, exactly like a
        missing one, so its name is not given away."""
        row = await self._pool.fetchrow(f"SELECT {COLUMNS} FROM audio WHERE name = $1", name)
        return visible(None if row is None else AudioRecord(*row), name, viewer)

    async def exists(self, name: str, viewer: Viewer = EVERYTHING) -> bool:
        """Whether a file called `name` exists that `viewer` may see."""
        row = await self._pool.fetchrow(
            "SELECT owner, visibility FROM audio WHERE name = $1", name)
        return row is not None and viewer.may_see(*row)

    async def search(self, query: ListQuery, viewer: Viewer = EVERYTHING
                     ) -> tuple[list[AudioRecord], int, bool]:
        """One page of the records matching `query` that `viewer` may see, how
        many match in all, and whether another page follows."""
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            # The snapshot starts here: the version is the one the page shows.
            version = await conn.fetchval("SELECT version FROM data_version")
            where, params = _filters(query, viewer)
            total = await self._count(conn, version, where, params)
            key = _sort_key(query)
            # A Previous page walks the order the other way from its cursor.
            walk_down = query.descending != query.backward
            if query.after is not None:
                where = where + [_key_test(key, "<" if walk_down else ">", query.after, params)]
            order = ", ".join(f"{column} {'DESC' if walk_down else 'ASC'}" for column in key)
            # One row more than the page tells whether a next page exists.
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM audio WHERE {' AND '.join(where)}"
                f" ORDER BY {order} LIMIT {_hole(params, query.limit + 1)}", *params)
        records = [AudioRecord(*row) for row in rows]
        page = records[: query.limit]
        if query.backward:
            page.reverse()
        return page, total, len(records) > query.limit

    async def rows_before(self, query: ListQuery, key: tuple,
                          viewer: Viewer = EVERYTHING) -> int:
        """How many rows matching `query` come before `key` in its order."""
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            version = await conn.fetchval("SELECT version FROM data_version")
            where, params = _filters(query, viewer)
            where.append(_key_test(_sort_key(query), ">" if query.descending else "<", key,
                                   params))
            return await self._count(conn, version, where, params)

    async def formats(self, viewer: Viewer = EVERYTHING) -> list[str]:
        """The formats of the available files `viewer` may see, sorted."""
        where, params = _filters(ListQuery(), viewer)
        # A skip scan of audio_format: one index probe per format, not a
        # read of every row.
        rows = await self._pool.fetch(
            "WITH RECURSIVE present(format) AS ("
            " SELECT min(format) FROM audio WHERE available"
            " UNION ALL SELECT (SELECT min(format) FROM audio WHERE available"
            "  AND format > present.format) FROM present WHERE present.format IS NOT NULL)"
            " SELECT format FROM present WHERE format IS NOT NULL AND EXISTS"
            f" (SELECT 1 FROM audio WHERE {' AND '.join(where)} AND format = present.format)"
            " ORDER BY format", *params)
        return [row[0] for row in rows]

    async def _count(self, conn, version: int, where: list[str], params: list) -> int:
        """How many rows match, kept per process until data_version moves.
        A snapshot older than the kept counts neither uses nor keeps one."""
        if self._counts_version is None or version > self._counts_version \
                or len(self._counts) > MAX_KEPT_COUNTS:
            self._counts, self._counts_version = {}, version
        key = (" AND ".join(where), tuple(map(_hashable, params)))
        if version == self._counts_version and key in self._counts:
            return self._counts[key]
        count = await conn.fetchval(f"SELECT count(*) FROM audio WHERE {key[0]}", *params)
        if version == self._counts_version:
            self._counts[key] = count
        return count

    async def data_version(self) -> int:
        # Shared by every instance on this database: bumped by each audio write.
        return await self._pool.fetchval("SELECT version FROM data_version")

    async def summary(self, viewer: Viewer = EVERYTHING) -> tuple[int, float]:
        """How many available files `viewer` may see, and their total duration."""
        where, params = _filters(ListQuery(), viewer)
        row = await self._pool.fetchrow(
            f"SELECT count(*), coalesce(sum(duration), 0) FROM audio"
            f" WHERE {' AND '.join(where)}", *params)
        return row[0], row[1]

    async def totals(self) -> tuple[int, int, float]:
        """Every available file: how many, their bytes, their duration (/metrics)."""
        row = await self._pool.fetchrow(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(duration), 0) FROM audio"
            " WHERE available")
        return row[0], int(row[1]), row[2]

    async def storage_keys(self) -> dict[str, tuple[str, bool]]:
        """Every row's storage key -> its name and whether its file was last seen."""
        rows = await self._pool.fetch("SELECT storage_key, name, available FROM audio")
        return {key: (name, available) for key, name, available in rows}

    async def records(self) -> list[AudioRecord]:
        """Every row, available or not."""
        rows = await self._pool.fetch(f"SELECT {COLUMNS} FROM audio")
        return [AudioRecord(*row) for row in rows]

    # Writes

    async def insert(self, records: list[AudioRecord]) -> None:
        """Insert all of `records` or none; NameTaken names the clash."""
        async with self.transaction() as conn:
            for record in records:
                try:
                    await conn.execute(INSERT, *record, record.name.casefold(),
                                       record.tags_folded())
                except asyncpg.UniqueViolationError:
                    raise NameTaken(record.name) from None

    async def copy_in(self, records: list[AudioRecord]) -> int:
        """Insert those of `records` not here yet; Conflict for one that
        differs (see metadata.AudioStore.copy_in), and none is written."""
        copied = 0
        async with self.transaction() as conn:
            for record in records:
                # storage_key is not UNIQUE here (see MIGRATIONS): looked up too.
                found = await conn.fetch(
                    f"SELECT {COLUMNS} FROM audio WHERE name = $1 OR storage_key = $2",
                    record.name, record.storage_key)
                if not needs_copy(record, [AudioRecord(*row) for row in found]):
                    continue
                try:
                    await conn.execute(INSERT, *record, record.name.casefold(),
                                       record.tags_folded())
                except asyncpg.ForeignKeyViolationError:
                    raise Conflict(f"{record.name!r} is owned by {record.owner!r}, "
                                   "an account the target does not have") from None
                except asyncpg.UniqueViolationError:  # written meanwhile
                    raise Conflict(f"{record.name!r} was added to the target meanwhile; "
                                   "run migrate again") from None
                copied += 1
        return copied

    async def delete(self, name: str, before_commit=None) -> AudioRecord:
        """Delete the row called `name` and return it (NotFound if none).

        `await before_commit(record)` runs inside the transaction, holding
        the row's lock: if it raises, the row stays."""
        async with self.transaction() as conn:
            row = await conn.fetchrow(f"DELETE FROM audio WHERE name = $1 RETURNING {COLUMNS}",
                                      name)
            if row is None:
                raise no_audio(name)
            record = AudioRecord(*row)
            if before_commit is not None:
                await before_commit(record)
        return record

    async def set_visibility(self, name: str, visibility: str,
                             before_commit=None) -> AudioRecord:
        """Change the visibility of `name`: an edit of that one column."""
        return await self.edit(name, {"visibility": visibility}, before_commit)

    async def edit(self, name: str, changes: dict, before_commit=None) -> AudioRecord:
        """Change the name or text fields of `name` (see AudioStore.edit)."""
        undo = None
        try:
            async with self.transaction() as conn:
                row = await conn.fetchrow(
                    f"SELECT {COLUMNS} FROM audio WHERE name = $1 FOR UPDATE", name)
                if row is None:
                    raise no_audio(name)
                before = AudioRecord(*row)
                after = before._replace(**changes)
                sets = ", ".join(f"{field} = ${n}" for n, field in enumerate(EDITED, start=1))
                try:
                    await conn.execute(
                        f"UPDATE audio SET {sets} WHERE name = ${len(EDITED) + 1}",
                        after.name, after.name.casefold(), after.visibility,
                        *(getattr(after, field) for field in EDITABLE_FIELDS),
                        after.tags_folded(), name)
                except asyncpg.UniqueViolationError:
                    raise NameTaken(after.name) from None
                if before_commit is not None:
                    undo = await before_commit(before, after)
        except BaseException:
            if undo is not None:
                await undo()
            raise
        return after

    async def set_available(self, keys: list[str], available: bool) -> None:
        async with self.transaction() as conn:
            await conn.execute("UPDATE audio SET available = $1 WHERE storage_key = ANY($2)",
                               available, keys)


def _sort_key(query: ListQuery) -> tuple[str, ...]:
    """The key of the order: the column, then the unique name to break ties."""
    return ("name",) if query.sort == "name" else (SORT_COLUMNS[query.sort], "name")


def _key_test(key: tuple[str, ...], test: str, values: tuple, params: list) -> str:
    """`(column, name) < ($n, $m)`, its values appended to `params`."""
    values = list(values)[-len(key):]
    if key[0] == "duration":  # a cursor's JSON may hold 3 for 3.0
        values[0] = float(values[0])
    holes = ", ".join(_hole(params, value) for value in values)
    return f"({', '.join(key)}) {test} ({holes})"


def _hole(params: list, value) -> str:
    """Append `value` to `params` and return its placeholder."""
    params.append(value)
    return f"${len(params)}"


def _filters(query: ListQuery, viewer: Viewer) -> tuple[list[str], list]:
    """WHERE terms and their parameters ($1, $2, ... in order)."""
    where, params = ["available"], []
    if not viewer.sees_all:
        if viewer.name is None:
            where.append("visibility = 'public'")
        else:
            where.append(f"(visibility = 'public' OR owner = {_hole(params, viewer.name)})")
    for column, test, value in (
        ("duration", ">=", _float(query.min_duration)),
        ("duration", "<=", _float(query.max_duration)),
        ("samplerate", "=", query.samplerate),
        ("channels", "=", query.channels),
        ("owner", "=", query.owner),
        ("visibility", "=", query.visibility),
        ("artist", "=", query.artist),
        ("album", "=", query.album),
    ):
        if value is not None:
            where.append(f"{column} {test} {_hole(params, value)}")
    if query.formats:
        where.append(f"format = ANY({_hole(params, list(query.formats))})")
    if query.q:
        # name_folded holds Python's casefold(), which lower() cannot match.
        folded = _hole(params, query.q.casefold())
        where.append(f"(strpos(name_folded, {folded}) > 0 OR strpos(tags_folded, {folded}) > 0)")
    return where, params


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _float(value):
    return None if value is None else float(value)

