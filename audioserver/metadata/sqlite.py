"""Every SQL statement of the metadata store, and its schema migrations.

One connection writes (under a lock, BEGIN IMMEDIATE) and one reads, so
writers never fight over SQLite's lock inside this process; WAL lets the
reader go on while a write commits, and busy_timeout covers other processes.
A third reads listings, each in one read transaction (under a lock of its
own), so a page and its count see the same state of the library. A fourth,
a plain sqlite3 connection on the event loop's own thread, answers point
reads by the unique name for /info: such a lookup costs microseconds, less
than the hand-off to another thread and back.
"""

import asyncio
import logging
import math
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from ..accounts import EVERYTHING, Viewer
from ..errors import NameTaken, StartupError, StorageFull
from ..models import EDITABLE_FIELDS, SORT_COLUMNS, AudioRecord, ListQuery
from . import Conflict, needs_copy, no_audio, visible

if TYPE_CHECKING:
    from .sqlite_accounts import Accounts

log = logging.getLogger(__name__)


def _epoch_to_text(column: str) -> str:
    """SQL turning REAL epoch seconds into clock.py's RFC 3339 form."""
    # Rounded, not truncated: a double near 1.7e9 holds microseconds only
    # to within a quarter of one.
    return (f"strftime('%Y-%m-%dT%H:%M:%S', {column}, 'unixepoch') || printf('.%06dZ', "
            f"min(999999, round(({column} - CAST({column} AS INTEGER)) * 1000000)))")


def _with_microseconds(column: str) -> str:
    """SQL giving a second-precision RFC 3339 time ('...:05Z') its microseconds."""
    return (f"CASE WHEN length({column}) = 20 THEN substr({column}, 1, 19) || '.000000Z'"
            f" ELSE {column} END")


# Each entry moves the schema one version up; PRAGMA user_version records
# how many have run. Never edit an entry once released: append a new one.
MIGRATIONS = [
    """
    CREATE TABLE audio (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        name_folded TEXT NOT NULL,
        storage_key TEXT NOT NULL UNIQUE,
        duration REAL NOT NULL,
        frames INTEGER NOT NULL,
        samplerate INTEGER NOT NULL,
        channels INTEGER NOT NULL,
        format TEXT NOT NULL,
        subtype TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        available INTEGER NOT NULL DEFAULT 1
    );
    -- Every listing asks for available = 1 first, so it leads each index:
    -- then a page is an index range and a count never touches the table.
    CREATE INDEX audio_name ON audio (available, name);
    CREATE INDEX audio_duration ON audio (available, duration, name);
    CREATE INDEX audio_size ON audio (available, size, name);
    CREATE INDEX audio_created ON audio (available, created_at, name);
    CREATE INDEX audio_format ON audio (available, format, name);
    CREATE INDEX audio_samplerate ON audio (available, samplerate, name);
    CREATE INDEX audio_channels ON audio (available, channels, name);
    """,
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        created_at TEXT NOT NULL
    );
    -- Only hashes of session and API tokens are kept: a copy of the
    -- database signs nobody in.
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created REAL NOT NULL,
        last_seen REAL NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_name);
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE INDEX api_tokens_user ON api_tokens (user_name);
    -- Failed sign-ins by account and by address, to slow guessing down.
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure REAL NOT NULL
    );
    -- Files uploaded before accounts existed have no owner and stay public.
    ALTER TABLE audio ADD COLUMN owner TEXT REFERENCES users (name) ON DELETE SET NULL;
    ALTER TABLE audio ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
        CHECK (visibility IN ('public', 'private'));
    CREATE INDEX audio_owner ON audio (available, owner, name)
    """,
    """
    -- When an API token ends by itself, in RFC 3339 UTC (NULL: when revoked).
    -- No semicolons in these comments: the migration is split on them.
    ALTER TABLE api_tokens ADD COLUMN expires_at TEXT
    """,
    # One form of time everywhere (clock.py): the REAL epoch seconds of
    # sessions and failures become RFC 3339 text, and the second-precision
    # times of accounts and tokens gain their microseconds, so text order is
    # time order in every column.
    f"""
    CREATE TABLE sessions_text (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    INSERT INTO sessions_text SELECT token_hash, user_name, csrf_token,
        {_epoch_to_text("created")}, {_epoch_to_text("last_seen")} FROM sessions;
    DROP TABLE sessions;
    ALTER TABLE sessions_text RENAME TO sessions;
    CREATE INDEX sessions_user ON sessions (user_name);
    CREATE TABLE login_failures_text (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure TEXT NOT NULL
    );
    INSERT INTO login_failures_text SELECT key, failures, {_epoch_to_text("last_failure")}
        FROM login_failures;
    DROP TABLE login_failures;
    ALTER TABLE login_failures_text RENAME TO login_failures;
    UPDATE users SET created_at = {_with_microseconds("created_at")};
    UPDATE api_tokens SET created_at = {_with_microseconds("created_at")},
        last_used_at = {_with_microseconds("last_used_at")},
        expires_at = {_with_microseconds("expires_at")}
    """,
    # Tags read from the file and the owner's edits (models.TEXT_FIELDS),
    # the cover art's media type, and the casefolded text `q` searches.
    """
    ALTER TABLE audio ADD COLUMN title TEXT;
    ALTER TABLE audio ADD COLUMN artist TEXT;
    ALTER TABLE audio ADD COLUMN album TEXT;
    ALTER TABLE audio ADD COLUMN track TEXT;
    ALTER TABLE audio ADD COLUMN date TEXT;
    ALTER TABLE audio ADD COLUMN genre TEXT;
    ALTER TABLE audio ADD COLUMN comment TEXT;
    ALTER TABLE audio ADD COLUMN description TEXT;
    ALTER TABLE audio ADD COLUMN cover TEXT;
    ALTER TABLE audio ADD COLUMN tags_folded TEXT NOT NULL DEFAULT '';
    CREATE INDEX audio_artist ON audio (available, artist, name);
    CREATE INDEX audio_album ON audio (available, album, name)
    """,
]

COLUMNS = (
    "name, duration, frames, samplerate, channels, format, subtype, "
    "content_type, size, sha256, created_at, owner, visibility, storage_key, available, "
    "title, artist, album, track, date, genre, comment, description, cover"
)
# Written with each row besides COLUMNS: what case-insensitive matching reads.
INSERT = (f"INSERT INTO audio ({COLUMNS}, name_folded, tags_folded) VALUES "
          f"({', '.join('?' * (COLUMNS.count(',') + 3))})")
BUSY_TIMEOUT_MS = 10_000
# The point reader never waits on the loop's thread: busy, it hands the
# read to the threaded reader, which may wait.
BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
DISK_FULL = ("the server's disk is full; nothing was changed. Try again later "
             "or ask the operator to free space")
MAX_KEPT_COUNTS = 1000


class Database:
    """The SQLite metadata store. Open with `await open()`, then `close()`."""

    def __init__(self, path: Path):
        self.path = path
        self.label = str(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lister: aiosqlite.Connection | None = None
        self._point: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._list_lock = asyncio.Lock()
        self._counts: dict[tuple[str, tuple], int] = {}
        self._counts_version: int | None = None

    async def is_blank(self) -> str | None:
        """No file, or an empty one (which SQLite would take for a new database)."""
        try:
            return "is empty (0 bytes)" if self.path.stat().st_size == 0 else None
        except FileNotFoundError:
            return "is missing"

    async def open(self) -> None:
        """Open and migrate. A file SQLite cannot use is a StartupError, and
        is left exactly as it was: nothing is created or migrated over it.
        (An empty file, which SQLite takes for a new database, is a lost one
        when files are stored: reconcile.check_not_lost says so
        before anything opens it.)"""
        try:
            self._writer = await self._connect()
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._migrate()
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only=ON")
            self._lister = await self._connect()
            await self._lister.execute("PRAGMA query_only=ON")
            self._point = self._connect_point_reader()
        except sqlite3.DatabaseError as exc:
            # Closed here, whoever called: an open connection's thread would
            # keep the process alive after the error.
            await self.close()
            raise _unusable(self.path, str(exc), _is_damage(exc)) from None

    async def close(self) -> None:
        """Close the connections; safe to call twice."""
        if self._point is not None:
            self._point.close()
        for conn in (self._lister, self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._point = self._lister = self._reader = self._writer = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            # FULL: a commit is on disk before we answer 201.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Removing a user removes their sessions and tokens, and disowns their files.
            await conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            # Its thread is not a daemon: left open, it keeps the process
            # alive after the error, serving nothing.
            await conn.close()
            raise
        return conn

    def _connect_point_reader(self) -> sqlite3.Connection:
        # Autocommit: each statement is a read transaction of its own, so it
        # sees every commit made before it, by any connection of any process.
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    async def _migrate(self) -> None:
        async with self.transaction() as conn:
            (version,) = await (await conn.execute("PRAGMA user_version")).fetchone()
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                log.info("migrating the database to schema version %d", number)
                for statement in filter(str.strip, script.split(";")):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version={number}")

    def accounts(self, on_disown=None) -> "Accounts":
        """The store of accounts that lives in this database (see
        sqlite_accounts.Accounts for `on_disown`)."""
        from .sqlite_accounts import Accounts  # it builds on this module
        return Accounts(self, on_disown)

    # The account store (sqlite_accounts.py) shares these two connections.

    def transaction(self) -> "_Transaction":
        """BEGIN IMMEDIATE on the writer: `async with db.transaction() as conn`."""
        return _Transaction(self._writer, self._write_lock)

    @property
    def reader(self) -> aiosqlite.Connection:
        return self._reader

    # Reads

    async def get(self, name: str, viewer: Viewer = EVERYTHING) -> AudioRecord:
        """The record called `name`; NotFound, or Gone when its file is missing.

        A private file `viewer` may not see is not found, exactly like a
        missing one, so its name is not given away."""
        rows = await self._point_read(f"SELECT {COLUMNS} FROM audio WHERE name = ?", (name,))
        return visible(_record(rows[0]) if rows else None, name, viewer)

    async def exists(self, name: str, viewer: Viewer = EVERYTHING) -> bool:
        """Whether a file called `name` exists that `viewer` may see."""
        # On the reader thread: only uploads ask, before their body, where
        # the hand-off does not show; answered at once, 200 concurrent
        # uploads may all start reading their bodies together (memory).
        cursor = await self._reader.execute(
            "SELECT owner, visibility FROM audio WHERE name = ?", (name,))
        row = await cursor.fetchone()
        return row is not None and viewer.may_see(*row)

    async def _point_read(self, sql: str, params: tuple) -> list[tuple]:
        """The rows of a lookup by a unique key, read on this thread; through
        the threaded reader when the database is busy (a WAL being recovered)."""
        try:
            # fetchall: the statement runs to its end, so no read transaction stays open.
            return self._point.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if (exc.sqlite_errorcode or 0) & 0xFF not in BUSY:
                raise
        return await (await self._reader.execute(sql, params)).fetchall()

    async def search(self, query: ListQuery, viewer: Viewer = EVERYTHING
                     ) -> tuple[list[AudioRecord], int, bool]:
        """One page of the records matching `query` that `viewer` may see, how
        many match in all, and whether another page follows."""
        async with self._snapshot() as conn:
            return await self._search(conn, query, viewer)

    async def _search(self, conn: aiosqlite.Connection, query: ListQuery, viewer: Viewer
                      ) -> tuple[list[AudioRecord], int, bool]:
        where, params = _filters(query, viewer)
        await self._forget_stale_counts(conn)
        total = await self._count(conn, " AND ".join(where), tuple(params))
        key = _sort_key(query)
        if total > await self._walk_threshold(conn, query.limit):
            # Many match: walking the sort index finds a page of them sooner
            # than sorting them all, which a filter's index would need.
            where, params = _filters(query, viewer, keep_index=key[0])
        # A Previous page walks the order the other way from its cursor.
        walk_down = query.descending != query.backward
        page_where, page_params = list(where), list(params)
        if query.after is not None:
            holes = ", ".join("?" * len(key))
            page_where.append(f"({', '.join(key)}) {'<' if walk_down else '>'} ({holes})")
            page_params += list(query.after)[-len(key):]
        order = ", ".join(f"{column} {'DESC' if walk_down else 'ASC'}" for column in key)
        sql = (f"SELECT {COLUMNS} FROM audio WHERE {' AND '.join(page_where)}"
               f" ORDER BY {order} LIMIT ?")
        # One row more than the page tells whether a next page exists.
        cursor = await conn.execute(sql, (*page_params, query.limit + 1))
        records = [_record(row) for row in await cursor.fetchall()]
        page = records[: query.limit]
        if query.backward:
            page.reverse()
        return page, total, len(records) > query.limit

    async def rows_before(self, query: ListQuery, key: tuple,
                          viewer: Viewer = EVERYTHING) -> int:
        """How many rows matching `query` come before `key` in its order."""
        columns = _sort_key(query)
        where, params = _filters(query, viewer)
        where.append(f"({', '.join(columns)}) {'>' if query.descending else '<'}"
                     f" ({', '.join('?' * len(columns))})")
        params += list(key)[-len(columns):]
        async with self._snapshot() as conn:
            await self._forget_stale_counts(conn)
            return await self._count(conn, " AND ".join(where), tuple(params))

    async def formats(self, viewer: Viewer = EVERYTHING) -> list[str]:
        """The formats of the available files `viewer` may see, sorted."""
        where, params = _filters(ListQuery(), viewer)
        # A skip scan of audio_format: one index probe per format, not a
        # read of every row.
        cursor = await self._reader.execute(
            "WITH RECURSIVE present(format) AS ("
            " SELECT min(format) FROM audio WHERE available = 1"
            " UNION ALL SELECT (SELECT min(format) FROM audio WHERE available = 1"
            "  AND format > present.format) FROM present WHERE present.format IS NOT NULL)"
            " SELECT format FROM present WHERE format IS NOT NULL AND EXISTS"
            f" (SELECT 1 FROM audio WHERE {' AND '.join(where)} AND format = present.format)"
            " ORDER BY format", params)
        return [format for (format,) in await cursor.fetchall()]

    @asynccontextmanager
    async def _snapshot(self):
        """One read transaction on the listing connection: every statement
        in it sees the library as it was at the first one."""
        async with self._list_lock:
            await self._lister.execute("BEGIN")
            try:
                yield self._lister
            finally:
                # Shielded: a cancelled request must not leave it open.
                await asyncio.shield(self._lister.execute("COMMIT"))

    async def _walk_threshold(self, conn: aiosqlite.Connection, limit: int) -> float:
        """Sorting k matches costs about k; walking the sort index to a page
        costs about limit * rows / k. They meet at k = sqrt(limit * rows)."""
        rows = await self._count(conn, "available = 1", ())
        return math.sqrt((limit + 1) * rows)

    async def _forget_stale_counts(self, conn: aiosqlite.Connection) -> None:
        """Counting is the dearest part of a page of a large library, so
        counts are kept until the database changes."""
        cursor = await conn.execute("PRAGMA data_version")
        # data_version moves whenever another connection (our writer, or
        # another worker's) commits: then every kept count may be stale.
        # Read inside the snapshot, it is the version the snapshot shows.
        (version,) = await cursor.fetchone()
        if version != self._counts_version or len(self._counts) > MAX_KEPT_COUNTS:
            self._counts, self._counts_version = {}, version

    async def _count(self, conn: aiosqlite.Connection, where: str, params: tuple) -> int:
        """How many rows match; call _forget_stale_counts first."""
        if (where, params) not in self._counts:
            cursor = await conn.execute(f"SELECT count(*) FROM audio WHERE {where}", params)
            (self._counts[where, params],) = await cursor.fetchone()
        return self._counts[where, params]

    async def data_version(self) -> int:
        # The point reader never writes, so every commit is another
        # connection's, which moves this connection's data_version.
        return self._point.execute("PRAGMA data_version").fetchone()[0]

    async def summary(self, viewer: Viewer = EVERYTHING) -> tuple[int, float]:
        """How many available files `viewer` may see, and their total duration."""
        where, params = _filters(ListQuery(), viewer)
        cursor = await self._reader.execute(
            f"SELECT count(*), coalesce(sum(duration), 0) FROM audio WHERE {' AND '.join(where)}",
            params,
        )
        count, duration = await cursor.fetchone()
        return count, duration

    async def totals(self) -> tuple[int, int, float]:
        """Every available file: how many, their bytes, their duration (/metrics)."""
        cursor = await self._reader.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(duration), 0) FROM audio"
            " WHERE available")
        return tuple(await cursor.fetchone())

    async def storage_keys(self) -> dict[str, tuple[str, bool]]:
        """Every row's storage key -> its name and whether its file was last seen.

        The first read of the whole table, at start-up: damage that open()
        could not see stops the server here, with the same one line."""
        try:
            cursor = await self._reader.execute("SELECT storage_key, name, available FROM audio")
            rows = await cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                raise _unusable(self.path, str(exc), damaged=True) from None
            raise
        return {key: (name, bool(available)) for key, name, available in rows}

    async def records(self) -> list[AudioRecord]:
        """Every row, available or not."""
        cursor = await self._reader.execute(f"SELECT {COLUMNS} FROM audio")
        return [_record(row) for row in await cursor.fetchall()]

    # Writes

    async def insert(self, records: list[AudioRecord]) -> None:
        """Insert all of `records` or none; NameTaken names the clash."""
        async with self.transaction() as conn:
            for record in records:
                try:
                    await conn.execute(INSERT, _values(record))
                except sqlite3.IntegrityError:
                    raise NameTaken(record.name) from None

    async def copy_in(self, records: list[AudioRecord]) -> int:
        """Insert those of `records` not here yet; Conflict for one that
        differs (see metadata.AudioStore.copy_in), and none is written."""
        copied = 0
        async with self.transaction() as conn:
            for record in records:
                cursor = await conn.execute(
                    f"SELECT {COLUMNS} FROM audio WHERE name = ? OR storage_key = ?",
                    (record.name, record.storage_key))
                if not needs_copy(record, [_record(row) for row in await cursor.fetchall()]):
                    continue
                try:
                    await conn.execute(INSERT, _values(record))
                except sqlite3.IntegrityError:  # only the owner can be missing
                    raise Conflict(f"{record.name!r} is owned by {record.owner!r}, "
                                   "an account the target does not have") from None
                copied += 1
        return copied

    async def delete(self, name: str, before_commit=None) -> AudioRecord:
        """Delete the row called `name` and return it (NotFound if none).

        `await before_commit(record)` runs inside the transaction, holding
        SQLite's write lock: if it raises, the row stays."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
                f"DELETE FROM audio WHERE name = ? RETURNING {COLUMNS}", (name,)
            )
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                raise no_audio(name)
            if before_commit is not None:
                await before_commit(_record(row))
        return _record(row)

    async def set_visibility(self, name: str, visibility: str,
                             before_commit=None) -> AudioRecord:
        """Change the visibility of `name`: an edit of that one column."""
        return await self.edit(name, {"visibility": visibility}, before_commit)

    async def edit(self, name: str, changes: dict, before_commit=None) -> AudioRecord:
        """Change the name or text fields of `name` (see AudioStore.edit)."""
        undo = None
        try:
            async with self.transaction() as conn:
                cursor = await conn.execute(f"SELECT {COLUMNS} FROM audio WHERE name = ?", (name,))
                row = await cursor.fetchone()
                await cursor.close()
                if row is None:
                    raise no_audio(name)
                before = _record(row)
                after = before._replace(**changes)
                try:
                    await conn.execute(
                        f"UPDATE audio SET {', '.join(f'{f} = ?' for f in EDITED)} WHERE name = ?",
                        (*_edited(after), name))
                except sqlite3.IntegrityError:
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
            await conn.executemany(
                "UPDATE audio SET available = ? WHERE storage_key = ?",
                [(int(available), key) for key in keys],
            )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT on the writer, rolled back on any error."""

    def __init__(self, conn: aiosqlite.Connection, lock: asyncio.Lock):
        self.conn, self.lock = conn, lock

    async def __aenter__(self) -> aiosqlite.Connection:
        await self.lock.acquire()
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                exc = await self._commit()
            else:
                await self._roll_back()
        finally:
            self.lock.release()
        if _is_disk_full(exc):
            raise StorageFull(DISK_FULL) from exc
        if exc_type is None and exc is not None:
            raise exc

    async def _commit(self) -> sqlite3.Error | None:
        """COMMIT, or roll back and return why it failed."""
        try:
            # Shielded: a cancelled request must not leave the writer
            # connection inside an open transaction.
            await asyncio.shield(self.conn.execute("COMMIT"))
        except sqlite3.Error as exc:
            await self._roll_back()
            return exc
        return None

    async def _roll_back(self) -> None:
        # A failed COMMIT may have rolled back already (SQLITE_FULL does).
        if self.conn.in_transaction:
            await asyncio.shield(self.conn.execute("ROLLBACK"))


def _is_disk_full(exc: BaseException | None) -> bool:
    return (isinstance(exc, sqlite3.OperationalError)
            and (exc.sqlite_errorcode or 0) & 0xFF == sqlite3.SQLITE_FULL)


def _sort_key(query: ListQuery) -> tuple[str, ...]:
    """The key of the order: the column, then the unique name to break ties."""
    return ("name",) if query.sort == "name" else (SORT_COLUMNS[query.sort], "name")


def _filters(query: ListQuery, viewer: Viewer,
             keep_index: str | None = None) -> tuple[list[str], list]:
    """WHERE terms and their parameters. With `keep_index`, a filter on any
    other column is written `+column`, which SQLite cannot use an index for:
    that steers it to walk the sort column's index instead."""
    where, params = ["available = 1"], []
    if not viewer.sees_all:
        if viewer.name is None:
            where.append("visibility = 'public'")
        else:
            where.append("(visibility = 'public' OR owner = ?)")
            params.append(viewer.name)

    def column(name: str) -> str:
        return name if keep_index in (None, name) else f"+{name}"

    for name, test, value in (
        ("duration", ">= ?", query.min_duration),
        ("duration", "<= ?", query.max_duration),
        ("samplerate", "= ?", query.samplerate),
        ("channels", "= ?", query.channels),
        ("owner", "= ?", query.owner),
        ("visibility", "= ?", query.visibility),
        ("artist", "= ?", query.artist),
        ("album", "= ?", query.album),
    ):
        if value is not None:
            where.append(f"{column(name)} {test}")
            params.append(value)
    if query.formats:
        where.append(f"{column('format')} IN ({', '.join('?' * len(query.formats))})")
        params += query.formats
    if query.q:
        where.append("(instr(name_folded, ?) > 0 OR instr(tags_folded, ?) > 0)")
        params += [query.q.casefold()] * 2
    return where, params


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    return (exc.sqlite_errorcode or 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _unusable(path: Path, reason: str, damaged: bool) -> StartupError:
    """The one line an operator reads when the database cannot be opened."""
    if damaged:
        return StartupError(
            f"the database {path} is damaged ({reason}); nothing was changed. Restore it "
            "from a backup, or rebuild it from the stored files with "
            "`python -m audioserver recover`"
        )
    return StartupError(f"cannot open the database {path} ({reason}); nothing was changed")



def _values(record: AudioRecord) -> tuple:
    """INSERT's values: COLUMNS, then name_folded and tags_folded."""
    return (*record._replace(available=int(record.available)), record.name.casefold(),
            record.tags_folded())


# What an edit writes: the name and the text fields, with their folded forms.
EDITED = ("name", "name_folded", "visibility", *EDITABLE_FIELDS, "tags_folded")


def _edited(record: AudioRecord) -> tuple:
    return (record.name, record.name.casefold(), record.visibility,
            *(getattr(record, field) for field in EDITABLE_FIELDS), record.tags_folded())


# Where `available` is in a row (COLUMNS order, which is AudioRecord's field order).
AVAILABLE = AudioRecord._fields.index("available")


def _record(row: tuple) -> AudioRecord:
    return AudioRecord(*row[:AVAILABLE], bool(row[AVAILABLE]), *row[AVAILABLE + 1:])
