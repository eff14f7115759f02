"""Signing in: passwords, browser sessions and API tokens, and who may do what.

Passwords are hashed with Argon2id. Sessions and API tokens are random
secrets of which the database keeps only a SHA-256: they carry 256 bits of
entropy, so a fast hash is enough and a stolen database signs nobody in.
"""

import asyncio
import hashlib
import math
import re
import secrets

import argon2

from .accounts import EVERYTHING, ROLES, ApiToken, Session, User, Viewer
from .clock import now_rfc3339, seconds_since
from .config import VISIBILITIES, Config
from .errors import BadRequest, Forbidden, TooManyRequests, Unauthorized
from .metadata import AccountStore
from .models import AudioRecord

SESSION_COOKIE = "audioserver_session"
TOKEN_PREFIX = "as_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 takes any length; a megabyte of it is an attack
# last_seen and last_used_at are written at most this often: a write per
# request would cost every request an fsync.
TOUCH_EVERY = 300.0
# After this many failed sign-ins in a row for an account or an address,
# each further try must wait twice as long as the last, up to a quarter hour.
FREE_FAILURES = 5
MAX_LOCKOUT = 900.0
# A day without a failure wipes an account's or an address's slate.
FORGET_FAILURES = 24 * 3600.0
# An API token's optional lifetime: "30d", "12h"; ten years at most.
_LIFETIME_RE = re.compile(r"^\s*(\d{1,6})\s*([dh])\s*$", re.IGNORECASE)
_LIFETIME_UNITS = {"d": 24 * 3600, "h": 3600}
MAX_TOKEN_LIFETIME = 3650 * 24 * 3600


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token_lifetime(text: str | None) -> float | None:
    """Seconds until a new token expires: '30d', '12h'; empty or 'never': None."""
    if text is None or text.strip().lower() in ("", "never"):
        return None
    match = _LIFETIME_RE.match(text)
    seconds = int(match.group(1)) * _LIFETIME_UNITS[match.group(2).lower()] if match else 0
    if not 0 < seconds <= MAX_TOKEN_LIFETIME:
        raise BadRequest(f"expires={text[:40]!r} is not a token lifetime: use days or hours "
                         "such as 30d or 12h (at most 3650d), or never", expires=text[:40])
    return float(seconds)


class Auth:
    """The accounts of one server, and the rules of its --auth mode."""

    def __init__(self, accounts: AccountStore, config: Config):
        self.accounts = accounts
        self.config = config
        self.mode = config.auth_mode
        self._hasher = argon2.PasswordHasher()
        # Verified against when the account does not exist, so that a wrong
        # name costs the same time as a wrong password. Made on first use:
        # hashing takes a tenth of a second, which every start need not pay.
        self._decoy: str | None = None

    @property
    def open(self) -> bool:
        return self.mode == "open"

    async def setup_pending(self) -> bool:
        """Users mode without a single account yet: /setup makes the first admin."""
        return (not self.open and self.config.setup_code is not None
                and await self.accounts.count_users() == 0)

    # Passwords

    async def hash_password(self, password: str) -> str:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise BadRequest(f"a password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        return await asyncio.to_thread(self._hasher.hash, password)

    async def add_user(self, user: User, password: str) -> None:
        await self.accounts.add_user(user, await self.hash_password(password), now_rfc3339())

    async def check_password(self, name: str, password: str, address: str) -> User:
        """The account `name` signs in, or Unauthorized; TooManyRequests while
        the account or the address must wait after repeated failures."""
        keys = [f"user:{name}", f"address:{address}"]
        failures, last = await self.accounts.failures(keys)
        wait = _lockout(failures) - (seconds_since(last) if last else 0.0)
        if wait > 0:
            raise TooManyRequests(
                "too many failed sign-ins for this account or from this address; "
                f"try again in {math.ceil(wait)} s", retry_after=math.ceil(wait))
        found = await self.accounts.password_hash(name)
        if self._decoy is None:
            self._decoy = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        stored = found[1] if found else self._decoy
        if not await asyncio.to_thread(self._verify, stored, password) or found is None:
            await self.accounts.add_failure(keys, now_rfc3339(), now_rfc3339(-FORGET_FAILURES))
            raise Unauthorized("wrong account name or password")
        await self.accounts.clear_failures(keys)
        return found[0]

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password[:MAX_PASSWORD])
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    # Browser sessions

    async def start_session(self, user: User) -> tuple[str, Session]:
        """A new session for `user`: the cookie's value, and the session."""
        secret, now = secrets.token_urlsafe(32), now_rfc3339()
        session = Session(user, digest(secret), secrets.token_urlsafe(32), now, now)
        # Each sign-in sweeps out the sessions that have ended, so a server
        # that runs for months does not keep every one it ever made.
        await self.accounts.add_session(session, *self._session_cutoffs())
        return secret, session

    async def session(self, secret: str) -> Session | None:
        """The live session the cookie `secret` names, if any."""
        session = await self.accounts.session(digest(secret))
        if session is None:
            return None
        idle_since, created_since = self._session_cutoffs()
        if session.last_seen < idle_since or session.created < created_since:
            await self.accounts.remove_session(session.token_hash)
            return None
        if seconds_since(session.last_seen) > TOUCH_EVERY:
            await self.accounts.touch_session(session.token_hash, now_rfc3339())
        return session

    async def end_session(self, session: Session) -> None:
        await self.accounts.remove_session(session.token_hash)

    async def remove_expired_sessions(self) -> None:
        await self.accounts.remove_expired_sessions(*self._session_cutoffs())

    def _session_cutoffs(self) -> tuple[str, str]:
        """Sessions unused since the first, or begun before the second, have ended
        (RFC 3339 text compares as time)."""
        return now_rfc3339(-self.config.session_idle), now_rfc3339(-self.config.session_lifetime)

    # API tokens

    async def create_token(self, user: User, label: str,
                           lifetime: float | None = None) -> tuple[str, ApiToken]:
        """A new token for `user`, valid for `lifetime` seconds (None: until
        revoked): the secret (shown once, never stored) and its record.
        Only a browser session that gave the password again, or the
        command line, may ask: never a token (see web/accountviews.py)."""
        label = token_label(label)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = now_rfc3339(lifetime) if lifetime is not None else None
        token = await self.accounts.add_token(user.name, label, digest(secret), now_rfc3339(),
                                              expires_at)
        return secret, token

    async def bearer_user(self, header: str) -> tuple[User, ApiToken]:
        """The account an `Authorization: Bearer …` header signs in, and its
        token; Unauthorized for a wrong, revoked or expired one."""
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("send an API token as 'Authorization: Bearer TOKEN'; "
                               "create one on /account or with `python -m audioserver token create`")
        found = await self.accounts.token_user(digest(secret.strip()))
        if found is None:
            raise Unauthorized("this API token is not valid (revoked, or mistyped); "
                               "create a new one on /account")
        user, token = found
        if token.expires_at is not None and seconds_since(token.expires_at) >= 0:
            raise Unauthorized(f"this API token expired at {token.expires_at}; "
                               "create a new one on /account")
        if token.last_used_at is None or seconds_since(token.last_used_at) > TOUCH_EVERY:
            await self.accounts.touch_token(token.id, now_rfc3339())
        return user, token


def token_label(label: str) -> str:
    label = label.strip()
    if not 1 <= len(label) <= 100:
        raise BadRequest("give the token a label of 1 to 100 characters, to tell it apart")
    return label


def _lockout(failures: int) -> float:
    if failures < FREE_FAILURES:
        return 0.0
    return min(2.0 ** (failures - FREE_FAILURES), MAX_LOCKOUT)



# Who may do what. Every handler asks these; none decides on its own.

def viewer(auth: Auth, user: User | None) -> Viewer:
    """What `user` may see: everything in open mode and for admins; public
    files and their own otherwise."""
    if auth.open or (user is not None and user.is_admin):
        return EVERYTHING
    return Viewer(sees_all=False, name=user.name if user else None)


def require_uploader(auth: Auth, user: User | None) -> str | None:
    """The owner of what `user` uploads (None in open mode), or Unauthorized."""
    if auth.open:
        return None
    if user is None:
        raise Unauthorized("sign in to upload: /login in a browser, or send an API token "
                           "as 'Authorization: Bearer TOKEN'")
    return user.name


def require_signed_in(auth: Auth, user: User | None) -> User:
    if auth.open:
        raise BadRequest("this server has no accounts (it runs with --auth open)")
    if user is None:
        raise Unauthorized("sign in first: /login in a browser, or an API token with curl")
    return user


def require_admin(auth: Auth, user: User | None) -> User:
    """Managing accounts: admins only."""
    user = require_signed_in(auth, user)
    if not user.is_admin:
        raise Forbidden("only admins manage accounts; ask one, or change your own password "
                        "on /account")
    return user


def parse_role(raw: str | None) -> str:
    """A new account's role: 'user' unless it says 'admin'."""
    if raw is None or raw == "":
        return "user"
    if raw not in ROLES:
        raise BadRequest(f"{raw[:40]!r} is not a role: use one of {', '.join(ROLES)}",
                         role=raw[:40])
    return raw


def may_change(auth: Auth, user: User | None, record: AudioRecord) -> bool:
    """Deleting a file or changing its visibility: its owner or an admin."""
    return auth.open or (user is not None and (user.is_admin or record.owner == user.name))


def check_may_change(auth: Auth, user: User | None, record: AudioRecord) -> None:
    if may_change(auth, user, record):
        return
    if user is None:
        raise Unauthorized(f"sign in to change {record.name!r}", name=record.name)
    raise Forbidden(f"only the owner of {record.name!r} or an admin may change it",
                    name=record.name)


def parse_visibility(auth: Auth, raw: str | None) -> str:
    """An upload's or a change's visibility; the server's default when not given."""
    if raw is None or raw == "":
        return "public" if auth.open else auth.config.default_visibility
    if raw not in VISIBILITIES:
        raise BadRequest(f"visibility={raw!r} is not one of {', '.join(VISIBILITIES)}")
    if auth.open and raw != "public":
        raise BadRequest("this server has no accounts (--auth open), so every file is "
                         "public; start it with --auth users for private files")
    return raw
