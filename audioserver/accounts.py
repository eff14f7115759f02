"""Accounts: who is asking, their sessions and tokens, and what they may do.

A request is made by a signed-in `User` or by nobody (None). In open mode
(no accounts) nobody may do everything; in users mode, see `may_*` below.
"""

import re
import unicodedata
from dataclasses import dataclass

from .errors import BadRequest

ROLES = ("admin", "user")
_USER_NAME_RE = re.compile(r"[\w.@+-]{1,64}")


@dataclass(frozen=True)
class User:
    name: str
    role: str  # one of ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    """A browser session, as stored: only a hash of its cookie's value."""

    user: User
    token_hash: str
    csrf_token: str
    created: str  # RFC 3339, as clock.py writes it
    last_seen: str


@dataclass(frozen=True)
class ApiToken:
    """An API token, as stored (its secret is only ever hashed)."""

    id: int
    label: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None  # None: until revoked

    def public(self) -> dict:
        return {"id": self.id, "label": self.label, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "expires_at": self.expires_at}


@dataclass(frozen=True)
class Viewer:
    """Whose eyes a read is for: which private files it may see."""

    sees_all: bool = True  # open mode, or an admin
    name: str | None = None  # besides public files, this account's own

    def may_see(self, owner: str | None, visibility: str) -> bool:
        return self.sees_all or visibility == "public" or (
            self.name is not None and owner == self.name)


# Reads done by the server itself (reconcile, the importer), and open mode.
EVERYTHING = Viewer()


def validate_user_name(raw: str | None) -> str:
    """An account name: 1 to 64 letters, digits and . _ @ + -, after NFC.
    Stricter than audio names: it is typed at sign-in and shown everywhere."""
    name = unicodedata.normalize("NFC", raw or "")
    if not _USER_NAME_RE.fullmatch(name):
        raise BadRequest(
            f"{(raw or '')[:80]!r} is not an account name: use 1 to 64 letters, "
            "digits and . _ @ + -", user=raw)
    return name
