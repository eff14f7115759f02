"""The metadata store: the library's rows and the accounts.

This is the interface callers (library.py, auth.py, the commands) are
written against; each backend fills it in a module of its own and keeps its
own tricks there (SQLite's PRAGMA data_version and index steering stay in
sqlite.py). Times are RFC 3339 text, as clock.py writes them, in every
backend. Errors are the ones in errors.py: NotFound, Gone, NameTaken,
UserExists, StorageFull, and StartupError when the store cannot be opened.
"""

from dataclasses import dataclass, fields, replace
from typing import Awaitable, Callable, Protocol

from ..accounts import EVERYTHING, ApiToken, Session, User, Viewer
from ..config import Config
from ..errors import Gone, NotFound
from ..models import AudioRecord, ListQuery

# Runs inside a write's transaction, before it commits; whatever it raises
# undoes the write. It may return an async undo, awaited if the commit fails.
BeforeCommit = Callable[..., Awaitable[Callable[[], Awaitable[None]] | None]]


class Conflict(Exception):
    """A copied row that the target holds in another form (`migrate`):
    one line naming it; nothing of its batch was written."""


@dataclass(frozen=True)
class UserRow:
    """An account as it is stored, its password hash included."""
    name: str
    role: str
    password_hash: str
    created_at: str


@dataclass(frozen=True)
class TokenRow:
    """An API token as it is stored (by its hash), without its local id."""
    user_name: str
    label: str
    token_hash: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None


# What makes two copies of an audio row the same row: `migrate` skips an
# identical one, stops at a different one, and checksums these.
IDENTITY = ("name", "storage_key", "sha256", "size", "owner", "visibility", "created_at")


def identity(record: AudioRecord) -> tuple:
    return tuple(getattr(record, field) for field in IDENTITY)


def needs_copy(row: "AudioRecord | UserRow | TokenRow", found: list) -> bool:
    """For a backend's copy_in: whether `row` is new to a target whose rows
    sharing one of its unique keys are `found`; Conflict if one is not `row`."""
    if not found:
        return True
    if isinstance(row, AudioRecord):
        same = [identity(other) for other in found] == [identity(row)]
        what = repr(row.name)
    elif isinstance(row, TokenRow):
        # Its last use is the one thing a token changes by itself.
        same = found == [replace(row, last_used_at=found[0].last_used_at)]
        what = f"an API token of {row.user_name!r}"
    else:
        same, what = found == [row], f"the account {row.name!r}"
    if not same:
        raise Conflict(f"the target already holds {what} with other values: "
                       f"{_differences(row, found[0])}")
    return False


def _differences(row, other) -> str:
    names = IDENTITY if isinstance(row, AudioRecord) else [field.name for field in fields(row)]
    differ = [field for field in names if getattr(row, field) != getattr(other, field)]
    return "its " + ", ".join(differ) + " differ" if differ else "another row has its key"


def audio_store(config: Config) -> "AudioStore":
    """The store the configuration names, not yet opened."""
    # Imported here: each builds on this module, and asyncpg is only
    # loaded by whoever uses PostgreSQL.
    if config.on_postgres:
        from .postgres import PostgresDatabase
        return PostgresDatabase(config.database, max_size=config.database_pool)
    from .sqlite import Database
    return Database(config.db_path)


def visible(record: AudioRecord | None, name: str, viewer: Viewer) -> AudioRecord:
    """What every backend's get() answers for the row it found (or None).

    A private file `viewer` may not see is not found, exactly like a
    missing one, so its name is not given away."""
    if record is None or not viewer.may_see(record.owner, record.visibility):
        raise no_audio(name)
    if not record.available:
        raise Gone(f"{name!r} is in the library but its file is missing from storage; "
                   "it comes back when the file is restored", name=name)
    return record


def no_audio(name: str) -> NotFound:
    return NotFound(f"there is no audio called {name!r}; GET /list shows what there is",
                    name=name)


def no_user(name: str) -> NotFound:
    return NotFound(f"there is no account called {name!r}", user=name)


class AudioStore(Protocol):
    """The library's rows: one per stored file."""

    # Where the store is, for messages to the operator (never a password).
    label: str

    async def is_blank(self) -> str | None:
        """Before open(): why this is a database never written to (a new
        library, or a lost one), e.g. "is missing"; None if it has a schema."""

    async def open(self) -> None:
        """Connect and migrate; StartupError with one line if that cannot be done."""

    async def close(self) -> None:
        """Disconnect; safe to call twice, and after a failed open()."""

    def accounts(self, on_disown: BeforeCommit | None = None) -> "AccountStore":
        """The account store kept in the same database."""

    async def get(self, name: str, viewer: Viewer = EVERYTHING) -> AudioRecord:
        """NotFound (also for a file `viewer` may not see), or Gone."""

    async def exists(self, name: str, viewer: Viewer = EVERYTHING) -> bool: ...

    async def search(self, query: ListQuery, viewer: Viewer = EVERYTHING
                     ) -> tuple[list[AudioRecord], int, bool]:
        """A page, the count of all matches and whether more follow (with
        query.backward: more before it), all from one snapshot. A page is
        always in the query's order."""

    async def rows_before(self, query: ListQuery, key: tuple,
                          viewer: Viewer = EVERYTHING) -> int:
        """How many rows matching `query` come before `key` (sort value,
        name) in its order: where a page starting there is, for people."""

    async def formats(self, viewer: Viewer = EVERYTHING) -> list[str]:
        """The formats of the available files `viewer` may see, sorted."""

    async def data_version(self) -> int:
        """A number that moves whenever any process commits a change of the
        library's rows; the same number means the same rows. (Within this
        process: two processes may number the same state differently.)"""
        ...

    async def summary(self, viewer: Viewer = EVERYTHING) -> tuple[int, float]:
        """How many available files `viewer` may see, and their total duration."""

    async def totals(self) -> tuple[int, int, float]:
        """Every available file: how many, their bytes, their duration."""

    async def storage_keys(self) -> dict[str, tuple[str, bool]]:
        """Every row's storage key -> (name, available)."""

    async def records(self) -> list[AudioRecord]: ...

    async def insert(self, records: list[AudioRecord]) -> None:
        """All or none; NameTaken when the unique name constraint refuses one."""

    async def copy_in(self, records: list[AudioRecord]) -> int:
        """Insert those of `records` the store does not hold, in one
        transaction, and return how many; a row already there with the same
        name, storage key, sha256, size, owner, visibility and time is
        skipped. Conflict (and nothing of the batch written) if one differs."""

    async def delete(self, name: str, before_commit: BeforeCommit | None = None
                     ) -> AudioRecord: ...

    async def set_visibility(self, name: str, visibility: str,
                             before_commit: BeforeCommit | None = None) -> AudioRecord:
        """edit(name, {"visibility": visibility}, before_commit)."""

    async def edit(self, name: str, changes: dict, before_commit: BeforeCommit | None = None
                   ) -> AudioRecord:
        """Set `changes` (a new `name`, `visibility`, models.EDITABLE_FIELDS)
        on the row `name` and return it; NotFound, or NameTaken for a name in
        use. `before_commit(before, after)`, if given, runs inside the
        transaction and returns an async undo, awaited if the commit fails."""

    async def set_available(self, keys: list[str], available: bool) -> None: ...


class AccountStore(Protocol):
    """Users, browser sessions, API tokens and failed sign-ins. Secrets
    arrive already hashed."""

    async def add_user(self, user: User, password_hash: str, created_at: str) -> None: ...

    async def count_users(self) -> int: ...

    async def users(self) -> list[tuple[User, str, int]]:
        """Each user, when it was made, and how many files it owns."""

    async def password_hash(self, name: str) -> tuple[User, str] | None: ...

    async def set_password(self, name: str, password_hash: str,
                           revoke_tokens: bool = False) -> None:
        """Also ends the account's sessions (and with `revoke_tokens`, its tokens)."""

    async def remove_user(self, name: str) -> None:
        """Its sessions and tokens go; its files stay, ownerless (on_disown)."""

    async def add_session(self, session: Session, idle_since: str,
                          created_since: str) -> None:
        """Store it, and sweep out the sessions that have ended."""

    async def session(self, token_hash: str) -> Session | None: ...

    async def touch_session(self, token_hash: str, now: str) -> None: ...

    async def remove_session(self, token_hash: str) -> None: ...

    async def remove_expired_sessions(self, idle_since: str, created_since: str) -> None: ...

    async def add_token(self, name: str, label: str, token_hash: str, created_at: str,
                        expires_at: str | None = None) -> ApiToken: ...

    async def tokens(self, name: str) -> list[ApiToken]: ...

    async def token_user(self, token_hash: str) -> tuple[User, ApiToken] | None: ...

    async def touch_token(self, token_id: int, used_at: str) -> None: ...

    async def remove_token(self, name: str, token_id: int) -> None: ...

    async def failures(self, keys: list[str]) -> tuple[int, str | None]:
        """The most failures of any of `keys`, and the last one's time."""

    async def add_failure(self, keys: list[str], now: str, forget_before: str) -> None: ...

    async def clear_failures(self, keys: list[str]) -> None: ...

    async def export(self) -> tuple[list[UserRow], list[TokenRow]]:
        """Every account and every API token, with their hashes, sorted."""

    async def copy_in(self, users: list[UserRow], tokens: list[TokenRow]) -> tuple[int, int]:
        """Add the accounts and tokens the store does not hold, in one
        transaction; how many of each. An identical one is skipped (a token's
        last use may differ); Conflict, and nothing written, if one differs."""
