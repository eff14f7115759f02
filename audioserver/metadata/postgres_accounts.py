"""Every SQL statement about accounts on PostgreSQL: users, sessions, API
tokens and failed sign-ins. It shares the audio store's pool (postgres.py),
whose migrations create these tables. Tokens and session ids arrive here
already hashed.
"""

from dataclasses import astuple

import asyncpg

from ..accounts import ApiToken, Session, User
from ..errors import NotFound, UserExists
from . import Conflict, TokenRow, UserRow, needs_copy, no_user
from .postgres import PostgresDatabase

_DELETE_ENDED_SESSIONS = "DELETE FROM sessions WHERE last_seen < $1 OR created < $2"
_TOKEN_COLUMNS = "api_tokens.id, label, api_tokens.created_at, last_used_at, expires_at"
# In the field order of metadata.UserRow and TokenRow.
_USER_ROW = "name, role, password_hash, created_at"
_TOKEN_ROW = "user_name, label, token_hash, created_at, last_used_at, expires_at"


class PostgresAccounts:
    """Users, sessions, API tokens and failed sign-ins, on the audio
    store's pool (its migrations create these tables). Only transactions
    that change audio rows (removing a user disowns its files) bump
    data_version: sign-ins must not throw away every kept count."""

    def __init__(self, db: PostgresDatabase, on_disown=None):
        """`on_disown(storage_keys)`, if given, runs inside the transaction
        that removes an account, for the files it owned, and returns an async
        undo for when the commit fails."""
        self.db = db
        self.on_disown = on_disown

    def _writing(self):
        return self.db.transaction(changes_audio=False)

    # Users

    async def add_user(self, user: User, password_hash: str, created_at: str) -> None:
        async with self._writing() as conn:
            try:
                await conn.execute(
                    "INSERT INTO users (name, password_hash, role, created_at)"
                    " VALUES ($1, $2, $3, $4)", user.name, password_hash, user.role, created_at)
            except asyncpg.UniqueViolationError:
                raise UserExists(user.name) from None

    async def count_users(self) -> int:
        return await self.db.pool.fetchval("SELECT count(*) FROM users")

    async def users(self) -> list[tuple[User, str, int]]:
        """Every account with when it was created and how many files it owns."""
        rows = await self.db.pool.fetch(
            "SELECT users.name, role, users.created_at, count(audio.owner) FROM users"
            " LEFT JOIN audio ON audio.owner = users.name GROUP BY users.name"
            " ORDER BY users.name")
        return [(User(name, role), created, files) for name, role, created, files in rows]

    async def password_hash(self, name: str) -> tuple[User, str] | None:
        row = await self.db.pool.fetchrow(
            "SELECT name, role, password_hash FROM users WHERE name = $1", name)
        return None if row is None else (User(row[0], row[1]), row[2])

    async def set_password(self, name: str, password_hash: str,
                           revoke_tokens: bool = False) -> None:
        """A new password also ends every session of the account, and with
        `revoke_tokens` every API token: all in one transaction."""
        async with self._writing() as conn:
            status = await conn.execute(
                "UPDATE users SET password_hash = $1 WHERE name = $2", password_hash, name)
            if _rowcount(status) == 0:
                raise no_user(name)
            await conn.execute("DELETE FROM sessions WHERE user_name = $1", name)
            if revoke_tokens:
                await conn.execute("DELETE FROM api_tokens WHERE user_name = $1", name)

    async def remove_user(self, name: str) -> None:
        """Its sessions and tokens go with it; its files stay, without an owner."""
        undo = None
        try:
            # Its files lose their owner: that changes audio rows.
            async with self.db.transaction() as conn:
                keys = [key for (key,) in await conn.fetch(
                    "SELECT storage_key FROM audio WHERE owner = $1", name)]
                status = await conn.execute("DELETE FROM users WHERE name = $1", name)
                if _rowcount(status) == 0:
                    raise no_user(name)
                if keys and self.on_disown is not None:
                    undo = await self.on_disown(keys)
        except BaseException:
            if undo is not None:
                await undo()
            raise

    # Sessions

    async def add_session(self, session: Session, idle_since: str, created_since: str) -> None:
        """Store `session`, and sweep out the ones that have ended (idle since
        `idle_since`, or made before `created_since`) in the same transaction."""
        async with self._writing() as conn:
            await conn.execute(_DELETE_ENDED_SESSIONS, idle_since, created_since)
            await conn.execute(
                "INSERT INTO sessions (token_hash, user_name, csrf_token, created, last_seen)"
                " VALUES ($1, $2, $3, $4, $5)", session.token_hash, session.user.name,
                session.csrf_token, session.created, session.last_seen)

    async def session(self, token_hash: str) -> Session | None:
        row = await self.db.pool.fetchrow(
            "SELECT users.name, role, csrf_token, created, last_seen FROM sessions"
            " JOIN users ON users.name = sessions.user_name WHERE token_hash = $1", token_hash)
        if row is None:
            return None
        name, role, csrf_token, created, last_seen = row
        return Session(User(name, role), token_hash, csrf_token, created, last_seen)

    async def touch_session(self, token_hash: str, now: str) -> None:
        await self.db.pool.execute(
            "UPDATE sessions SET last_seen = $1 WHERE token_hash = $2", now, token_hash)

    async def remove_session(self, token_hash: str) -> None:
        await self.db.pool.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def remove_expired_sessions(self, idle_since: str, created_since: str) -> None:
        await self.db.pool.execute(_DELETE_ENDED_SESSIONS, idle_since, created_since)

    # API tokens

    async def add_token(self, name: str, label: str, token_hash: str, created_at: str,
                        expires_at: str | None = None) -> ApiToken:
        async with self._writing() as conn:
            try:
                token_id = await conn.fetchval(
                    "INSERT INTO api_tokens (user_name, label, token_hash, created_at,"
                    " expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    name, label, token_hash, created_at, expires_at)
            except asyncpg.ForeignKeyViolationError:  # the account is gone
                raise no_user(name) from None
        return ApiToken(token_id, label, created_at, None, expires_at)

    async def tokens(self, name: str) -> list[ApiToken]:
        rows = await self.db.pool.fetch(
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE user_name = $1 ORDER BY id", name)
        return [ApiToken(*row) for row in rows]

    async def token_user(self, token_hash: str) -> tuple[User, ApiToken] | None:
        """The account a token signs in, and the token."""
        row = await self.db.pool.fetchrow(
            f"SELECT users.name, role, {_TOKEN_COLUMNS} FROM api_tokens"
            " JOIN users ON users.name = api_tokens.user_name WHERE token_hash = $1",
            token_hash)
        return None if row is None else (User(row[0], row[1]), ApiToken(*row[2:]))

    async def touch_token(self, token_id: int, used_at: str) -> None:
        await self.db.pool.execute(
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2", used_at, token_id)

    async def remove_token(self, name: str, token_id: int) -> None:
        status = await self.db.pool.execute(
            "DELETE FROM api_tokens WHERE id = $1 AND user_name = $2", token_id, name)
        if _rowcount(status) == 0:
            raise NotFound(f"you have no API token with id {token_id}; GET /account lists them",
                           id=token_id)

    # Failed sign-ins, by key: "user:NAME" and "address:ADDRESS"

    async def failures(self, keys: list[str]) -> tuple[int, str | None]:
        """The most failures of any of `keys`, and the last one's time (None: none)."""
        row = await self.db.pool.fetchrow(
            "SELECT coalesce(max(failures), 0), max(last_failure)"
            " FROM login_failures WHERE key = ANY($1)", keys)
        return row[0], row[1]

    async def add_failure(self, keys: list[str], now: str, forget_before: str) -> None:
        """Count a failure for each of `keys`, and forget keys that have had
        none since `forget_before`: the table stays as small as the trouble."""
        async with self._writing() as conn:
            await conn.execute("DELETE FROM login_failures WHERE last_failure < $1",
                               forget_before)
            # Sorted: two instances counting the same keys lock them in one
            # order, so they cannot deadlock. greatest(): instances commit in
            # any order, and the last failure is the latest one.
            await conn.executemany(
                "INSERT INTO login_failures (key, failures, last_failure) VALUES ($1, 1, $2)"
                " ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1,"
                " last_failure = greatest(login_failures.last_failure, excluded.last_failure)",
                [(key, now) for key in sorted(keys)])

    async def clear_failures(self, keys: list[str]) -> None:
        await self.db.pool.execute("DELETE FROM login_failures WHERE key = ANY($1)", keys)

    # Copying between databases (migrate)

    async def export(self) -> tuple[list[UserRow], list[TokenRow]]:
        """Every account and API token with its hash; tokens in the order made."""
        users = await self.db.pool.fetch(f"SELECT {_USER_ROW} FROM users ORDER BY name")
        tokens = await self.db.pool.fetch(f"SELECT {_TOKEN_ROW} FROM api_tokens ORDER BY id")
        return [UserRow(*row) for row in users], [TokenRow(*row) for row in tokens]

    async def copy_in(self, users: list[UserRow], tokens: list[TokenRow]) -> tuple[int, int]:
        """Add the accounts and tokens not here yet, in one transaction;
        Conflict for one that differs (see metadata.AccountStore.copy_in)."""
        counts = [0, 0]
        async with self._writing() as conn:
            for index, (rows, table, key, make) in enumerate([
                    (users, "users", "name", UserRow),
                    (tokens, "api_tokens", "token_hash", TokenRow)]):
                columns = _USER_ROW if make is UserRow else _TOKEN_ROW
                for row in rows:
                    found = await conn.fetch(
                        f"SELECT {columns} FROM {table} WHERE {key} = $1", getattr(row, key))
                    if not needs_copy(row, [make(*other) for other in found]):
                        continue
                    values = astuple(row)
                    holes = ", ".join(f"${number}" for number in range(1, len(values) + 1))
                    try:
                        await conn.execute(
                            f"INSERT INTO {table} ({columns}) VALUES ({holes})", *values)
                    except asyncpg.ForeignKeyViolationError:
                        raise Conflict(f"an API token of {row.user_name!r} has no account "
                                       "to go with") from None
                    counts[index] += 1
        return counts[0], counts[1]


def _rowcount(status: str) -> int:
    """The row count of a command status such as 'UPDATE 1'."""
    return int(status.rsplit(" ", 1)[-1])

