"""The metadata store: the library's rows and the accounts.

This is the interface callers (library.py, auth.py, the commands) are
written against; each backend fills it in a module of its own and keeps its
own tricks there (SQLite's PRAGMA data_version and index steering stay in
sqlite.py). Times are RFC 3339 text, as clock.py writes them, in every
backend. Errors are the ones in errors.py: NotFound, Gone, NameTaken,
UserExists, StorageFull, and StartupError when the store cannot be opened.
"""

from typing import Awaitable, Callable, Protocol

from ..accounts import EVERYTHING, ApiToken, Session, User, Viewer
from ..config import Config
from ..errors import Gone, NotFound
from ..models import AudioRecord, ListQuery

# Runs inside a write's transaction, before it commits; whatever it raises
# undoes the write. It may return an async undo, awaited if the commit fails.
BeforeCommit = Callable[..., Awaitable[Callable[[], Awaitable[None]] | None]]


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
        """A page, the count of all matches and whether more follow, all
        from one snapshot."""

    async def summary(self, viewer: Viewer = EVERYTHING) -> tuple[int, float]:
        """How many available files `viewer` may see, and their total duration."""

    async def storage_keys(self) -> dict[str, tuple[str, bool]]:
        """Every row's storage key -> (name, available)."""

    async def records(self) -> list[AudioRecord]: ...

    async def insert(self, records: list[AudioRecord]) -> None:
        """All or none; NameTaken when the unique name constraint refuses one."""

    async def delete(self, name: str, before_commit: BeforeCommit | None = None
                     ) -> AudioRecord: ...

    async def set_visibility(self, name: str, visibility: str,
                             before_commit: BeforeCommit | None = None) -> AudioRecord: ...

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
