"""Every SQL statement about accounts: users, sessions, API tokens and
failed sign-ins. It shares the audio store's connections (sqlite.py), whose
migrations create these tables.

Tokens and session ids arrive here already hashed: this module never sees
a secret a client could sign in with.
"""

import sqlite3
from dataclasses import astuple

from ..accounts import ApiToken, Session, User
from ..errors import NotFound, UserExists
from . import Conflict, TokenRow, UserRow, needs_copy, no_user
from .sqlite import Database

_DELETE_ENDED_SESSIONS = "DELETE FROM sessions WHERE last_seen < ? OR created < ?"



_TOKEN_COLUMNS = "api_tokens.id, label, api_tokens.created_at, last_used_at, expires_at"
# In the field order of metadata.UserRow and TokenRow.
_USER_ROW = "name, role, password_hash, created_at"
_TOKEN_ROW = "user_name, label, token_hash, created_at, last_used_at, expires_at"



class Accounts:
    def __init__(self, db: Database, on_disown=None):
        """`on_disown(storage_keys)`, if given, runs inside the transaction
        that removes an account, for the files it owned, and returns an async
        undo for when the commit fails (Library.disown keeps their sidecars
        in line)."""
        self.db = db
        self.on_disown = on_disown

    # Users

    async def add_user(self, user: User, password_hash: str, created_at: str) -> None:
        async with self.db.transaction() as conn:
            try:
                await conn.execute(
                    "INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                    (user.name, password_hash, user.role, created_at))
            except sqlite3.IntegrityError:
                raise UserExists(user.name) from None

    async def count_users(self) -> int:
        (count,) = await self._one("SELECT count(*) FROM users", ())
        return count

    async def users(self) -> list[tuple[User, str, int]]:
        """Every account with when it was created and how many files it owns."""
        cursor = await self.db.reader.execute(
            "SELECT users.name, role, users.created_at, count(audio.owner) FROM users"
            " LEFT JOIN audio ON audio.owner = users.name GROUP BY users.name ORDER BY users.name")
        return [(User(name, role), created, files)
                for name, role, created, files in await cursor.fetchall()]

    async def password_hash(self, name: str) -> tuple[User, str] | None:
        row = await self._one("SELECT name, role, password_hash FROM users WHERE name = ?", (name,))
        return None if row is None else (User(row[0], row[1]), row[2])

    async def set_password(self, name: str, password_hash: str,
                           revoke_tokens: bool = False) -> None:
        """A new password also ends every session of the account, and with
        `revoke_tokens` every API token: all in one transaction."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))
            if cursor.rowcount == 0:
                raise no_user(name)
            await conn.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            if revoke_tokens:
                await conn.execute("DELETE FROM api_tokens WHERE user_name = ?", (name,))

    async def remove_user(self, name: str) -> None:
        """Its sessions and tokens go with it; its files stay, without an owner."""
        undo = None
        try:
            async with self.db.transaction() as conn:
                cursor = await conn.execute("SELECT storage_key FROM audio WHERE owner = ?",
                                            (name,))
                keys = [key for (key,) in await cursor.fetchall()]
                cursor = await conn.execute("DELETE FROM users WHERE name = ?", (name,))
                if cursor.rowcount == 0:
                    raise no_user(name)
                if keys and self.on_disown is not None:
                    undo = await self.on_disown(keys)
        except BaseException:
            if undo is not None:
                await undo()
            raise

    # Sessions

    async def add_session(self, session: Session, idle_since: str,
                          created_since: str) -> None:
        """Store `session`, and sweep out the ones that have ended (idle since
        `idle_since`, or made before `created_since`) in the same transaction."""
        async with self.db.transaction() as conn:
            await conn.execute(_DELETE_ENDED_SESSIONS, (idle_since, created_since))
            await conn.execute(
                "INSERT INTO sessions (token_hash, user_name, csrf_token, created, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (session.token_hash, session.user.name, session.csrf_token, session.created,
                 session.last_seen))

    async def session(self, token_hash: str) -> Session | None:
        row = await self._one(
            "SELECT users.name, role, csrf_token, created, last_seen FROM sessions"
            " JOIN users ON users.name = sessions.user_name WHERE token_hash = ?", (token_hash,))
        if row is None:
            return None
        name, role, csrf_token, created, last_seen = row
        return Session(User(name, role), token_hash, csrf_token, created, last_seen)

    async def touch_session(self, token_hash: str, now: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?",
                               (now, token_hash))

    async def remove_session(self, token_hash: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    async def remove_expired_sessions(self, idle_since: str, created_since: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(_DELETE_ENDED_SESSIONS, (idle_since, created_since))

    # API tokens

    async def add_token(self, name: str, label: str, token_hash: str, created_at: str,
                        expires_at: str | None = None) -> ApiToken:
        async with self.db.transaction() as conn:
            try:
                cursor = await conn.execute(
                    "INSERT INTO api_tokens (user_name, label, token_hash, created_at,"
                    " expires_at) VALUES (?, ?, ?, ?, ?)",
                    (name, label, token_hash, created_at, expires_at))
            except sqlite3.IntegrityError:  # the account is gone
                raise no_user(name) from None
        return ApiToken(cursor.lastrowid, label, created_at, None, expires_at)

    async def tokens(self, name: str) -> list[ApiToken]:
        cursor = await self.db.reader.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE user_name = ? ORDER BY id", (name,))
        return [ApiToken(*row) for row in await cursor.fetchall()]

    async def token_user(self, token_hash: str) -> tuple[User, ApiToken] | None:
        """The account a token signs in, and the token."""
        row = await self._one(
            f"SELECT users.name, role, {_TOKEN_COLUMNS} FROM api_tokens"
            " JOIN users ON users.name = api_tokens.user_name WHERE token_hash = ?",
            (token_hash,))
        return None if row is None else (User(row[0], row[1]), ApiToken(*row[2:]))

    async def touch_token(self, token_id: int, used_at: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                               (used_at, token_id))

    async def remove_token(self, name: str, token_id: int) -> None:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user_name = ?", (token_id, name))
        if cursor.rowcount == 0:
            raise NotFound(f"you have no API token with id {token_id}; GET /account lists them",
                           id=token_id)

    # Failed sign-ins, by key: "user:NAME" and "address:ADDRESS"

    async def failures(self, keys: list[str]) -> tuple[int, str | None]:
        """The most failures of any of `keys`, and the last one's time (None: none)."""
        holes = ", ".join("?" * len(keys))
        failures, last = await self._one(
            f"SELECT coalesce(max(failures), 0), max(last_failure)"
            f" FROM login_failures WHERE key IN ({holes})", tuple(keys))
        return failures, last

    async def add_failure(self, keys: list[str], now: str, forget_before: str) -> None:
        """Count a failure for each of `keys`, and forget keys that have had
        none since `forget_before`: the table stays as small as the trouble."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM login_failures WHERE last_failure < ?",
                               (forget_before,))
            await conn.executemany(
                "INSERT INTO login_failures (key, failures, last_failure) VALUES (?, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET failures = failures + 1,"
                # Processes commit in any order: the latest time wins, never the last write.
                " last_failure = max(last_failure, excluded.last_failure)",
                [(key, now) for key in keys])

    async def clear_failures(self, keys: list[str]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany("DELETE FROM login_failures WHERE key = ?",
                                   [(key,) for key in keys])

    # Copying between databases (migrate)

    async def export(self) -> tuple[list[UserRow], list[TokenRow]]:
        """Every account and API token with its hash; tokens in the order made."""
        users = await self.db.reader.execute(f"SELECT {_USER_ROW} FROM users ORDER BY name")
        tokens = await self.db.reader.execute(f"SELECT {_TOKEN_ROW} FROM api_tokens ORDER BY id")
        return ([UserRow(*row) for row in await users.fetchall()],
                [TokenRow(*row) for row in await tokens.fetchall()])

    async def copy_in(self, users: list[UserRow], tokens: list[TokenRow]) -> tuple[int, int]:
        """Add the accounts and tokens not here yet, in one transaction;
        Conflict for one that differs (see metadata.AccountStore.copy_in)."""
        counts = [0, 0]
        async with self.db.transaction() as conn:
            for index, (rows, table, key, make) in enumerate([
                    (users, "users", "name", UserRow),
                    (tokens, "api_tokens", "token_hash", TokenRow)]):
                columns = _USER_ROW if make is UserRow else _TOKEN_ROW
                for row in rows:
                    cursor = await conn.execute(
                        f"SELECT {columns} FROM {table} WHERE {key} = ?", (getattr(row, key),))
                    if not needs_copy(row, [make(*found) for found in await cursor.fetchall()]):
                        continue
                    values = astuple(row)
                    try:
                        await conn.execute(f"INSERT INTO {table} ({columns}) VALUES"
                                           f" ({', '.join('?' * len(values))})", values)
                    except sqlite3.IntegrityError:  # a token whose account is missing
                        raise Conflict(f"an API token of {row.user_name!r} has no account "
                                       "to go with") from None
                    counts[index] += 1
        return counts[0], counts[1]

    async def _one(self, sql: str, params: tuple):
        cursor = await self.db.reader.execute(sql, params)
        return await cursor.fetchone()

