"""Configuration: one frozen object built from flags and environment variables."""

import ipaddress
import math
import os
import re
import urllib.parse
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

# Shipped inside the package, so a wheel serves them as a checkout does;
# pip installs packages as directories, so this is a real one.
STATIC_DIR = Path(str(resources.files("audioserver.web").joinpath("static")))

DEFAULT_HOST = "127.0.0.1"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Per process: with 2 workers on each of 4 instances, 80 of PostgreSQL's
# default 100 connections.
DEFAULT_DATABASE_POOL = 10
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = "data"
S3_SCHEME = "s3://"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# The local copies of stored objects kept with --storage s3://: recently
# uploaded and played files, least recently used first out.
DEFAULT_CACHE_SIZE = 1024**3
DEFAULT_MAX_UPLOAD_SIZE = 2 * 1024**3
# A parser that needs longer than this on one file is treated as hung.
DEFAULT_PROBE_TIMEOUT = 60.0
# One serving process per core: Python runs one thread of code at a time.
DEFAULT_WORKERS = os.cpu_count() or 1

# open: no accounts, everyone may do everything; users: sign-in and owners.
AUTH_MODES = ("open", "users")
VISIBILITIES = ("public", "private")
# A browser session ends after a week unused, and a month after sign-in.
DEFAULT_SESSION_IDLE = 7 * 24 * 3600.0
DEFAULT_SESSION_LIFETIME = 30 * 24 * 3600.0

# Rate limits (see ratelimit/), per account or per address. A person's
# browsing costs a few reads a page (the page, its waveform, the player's
# range requests), far below 1200 a minute; a script in a loop uses that up
# in well under a second. Uploads: the upload page waits and retries when
# told to, and bulk imports have `python -m audioserver import`.
DEFAULT_READ_RATE = "1200/min"
DEFAULT_WRITE_RATE = "120/min"
DEFAULT_UPLOAD_RATE = "120/min"

# Slow clients (see web/bodies.py): headers complete within this many seconds
# of connecting (or of the previous answer); a body gets a grace period plus
# a second per DEFAULT_BODY_MIN_RATE bytes. A 2 GB upload at 1 KiB/s would
# take 24 days: anything slower is a client holding a connection, not using it.
DEFAULT_HEADER_TIMEOUT = 15.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_BODY_MIN_RATE = 1024
# On SIGTERM, requests in flight (an upload's body still arriving, say) get
# this long to finish before they are cut off.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

# DNS rebinding (see web/hosts.py): the names a Host header may carry. Only this
# machine reaches a loopback server, by these; a server listening on every
# address answers to any address, since a rebound page always comes by name.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
# --allowed-host '*': answer to any name (the check is off).
ANY_HOST = "*"

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|min|minute|h|hour)\s*$", re.IGNORECASE)
_PERIODS = {"s": (1, "second"), "sec": (1, "second"), "second": (1, "second"),
            "min": (60, "minute"), "minute": (60, "minute"),
            "h": (3600, "hour"), "hour": (3600, "hour")}

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    """Parse '2G', '500M', '1024': K, M and G are powers of 1024."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use bytes, or a number with K, M or G)")
    number, unit = match.groups()
    size = int(number) * _SIZE_UNITS[unit.upper()]
    if size <= 0:
        raise ValueError("the size must be positive")
    return size


@dataclass(frozen=True)
class Rate:
    """`count` requests per `seconds`: a bucket of `count` refilled in `seconds`."""

    count: int
    seconds: int
    period_name: str

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count}/{self.period_name}"


def parse_cache_size(text: str) -> int:
    """--cache-size: a size as parse_size takes it, or 0 for no cache."""
    return 0 if text.strip() == "0" else parse_size(text)


def parse_rate(text: str) -> Rate | None:
    """'1200/min', '20/s', '500/hour'; 'off' for no limit."""
    if text.strip().lower() == "off":
        return None
    match = _RATE_RE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"not a rate: {text!r} (use N/s, N/min or N/hour with N >= 1, or off)")
    seconds, name = _PERIODS[match.group(2).lower()]
    return Rate(int(match.group(1)), seconds, name)


def parse_count(text: str) -> int:
    """A whole number of 1 or more (workers, connections)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def parse_database(text: str) -> str:
    """--database: a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB),
    kept as it is, or a SQLite file, as a path or sqlite:PATH (sqlite:///var/a.db
    for an absolute one), given as its path."""
    path = text.strip()
    if path.startswith(POSTGRES_SCHEMES):
        parts = urllib.parse.urlsplit(path)
        if not parts.path.strip("/"):
            raise ValueError(f"{parts.scheme}://{parts.hostname or ''}/ is not a database: "
                             "name one, as in postgresql://USER:PASSWORD@HOST:5432/DB")
        return path
    if path.startswith("sqlite:"):
        path = path.removeprefix("sqlite:")
        path = path[2:] if path.startswith("///") else path
    if not path or "://" in path:
        raise ValueError(f"{text!r} is not a database: give a SQLite file's path, "
                         "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB")
    return path


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def parse_redis(text: str) -> str:
    """--redis: redis://[:PASSWORD@]HOST:PORT/DB (rediss:// over TLS, unix://
    for a socket), kept as it is. The message never repeats the text: it
    may hold a password."""
    url = text.strip()
    if not url.startswith(REDIS_SCHEMES):
        raise ValueError("not a Redis URL: give redis://HOST:PORT/DB "
                         "(redis://:PASSWORD@HOST:PORT/DB with a password)")
    return url


def parse_token(text: str) -> str:
    """--metrics-token: a secret long enough not to be guessed."""
    token = text.strip()
    if len(token) < 16:
        raise ValueError("the metrics token must be at least 16 characters long")
    return token
def parse_storage(text: str) -> str:
    """--storage: s3://BUCKET or s3://BUCKET/PREFIX, kept as it is, or a
    directory, given as its path."""
    text = text.strip()
    if text.startswith(S3_SCHEME):
        bucket = urllib.parse.urlsplit(text).netloc
        if not _BUCKET_RE.match(bucket):
            raise ValueError(f"{text!r} names no bucket: use s3://BUCKET or s3://BUCKET/PREFIX")
        return text
    if not text or "://" in text:
        raise ValueError(f"{text!r} is not a storage: give a directory or s3://BUCKET/PREFIX")
    return text


def parse_flag(text: str) -> bool:
    """A yes/no environment variable: 1, true, yes, on or 0, false, no, off."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is neither yes (1, true, on) nor no (0, false, off)")


def parse_seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(f"{text!r} is not a number of seconds above 0")
    return seconds


def parse_address(text: str) -> str:
    """An IP address, written as Python writes it (so it compares equal to a peer's)."""
    return str(ipaddress.ip_address(text.strip()))  # ValueError names it


def parse_addresses(text: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses (--trusted-proxy's variable)."""
    return tuple(parse_address(part) for part in text.split(",") if part.strip())


_HOST_NAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")


def parse_host_name(text: str) -> str:
    """A host name or address, as a Host header's would be compared with it:
    lower case, IDNA (bücher.example is xn--bcher-kva.example), no trailing
    dot; an address as Python writes it, an IPv6 one without brackets."""
    name = text.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        address = ipaddress.ip_address(name[1:-1])  # ValueError names it
        if address.version != 6:
            raise ValueError(f"{text!r}: only IPv6 addresses go in brackets")
        return str(address)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        name = name.removesuffix(".").encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    if not _HOST_NAME_RE.match(name) or ".." in name:
        raise ValueError(f"{text!r} is not a host name (give the name alone, "
                         "without a scheme, a port or a path)")
    return name


def parse_allowed_host(text: str) -> str:
    """A host name for --allowed-host, or '*' for any."""
    return ANY_HOST if text.strip() == ANY_HOST else parse_host_name(text)


def parse_allowed_hosts(text: str) -> tuple[str, ...]:
    """A comma-separated list of them (--allowed-host's variable)."""
    return tuple(parse_allowed_host(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Config:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    probe_workers: int = 2
    workers: int = DEFAULT_WORKERS
    # Whether this process checks disk against database at start; with
    # several workers the supervisor does it once, before they start.
    reconcile: bool = True
    static_dir: Path = STATIC_DIR
    # None: open while listening on a loopback address only, users otherwise.
    auth: str | None = None
    default_visibility: str = "public"
    session_idle: float = DEFAULT_SESSION_IDLE
    session_lifetime: float = DEFAULT_SESSION_LIFETIME
    # While users mode has no account yet: what /setup asks for, so that
    # only someone who can read the server's console creates the admin.
    setup_code: str | None = None
    # Proxies whose X-Forwarded-For names the client (--trusted-proxy).
    trusted_proxies: tuple[str, ...] = ()
    # Names the server answers to beside its own address (--allowed-host),
    # as parse_allowed_host gives them; "*" for any.
    allowed_hosts: tuple[str, ...] = ()
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    body_min_rate: int = DEFAULT_BODY_MIN_RATE
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    # The metadata store, as parse_database gives it; None: the data
    # directory's SQLite file.
    database: str | None = None
    # PostgreSQL connections each process keeps at most (--database-pool).
    database_pool: int = DEFAULT_DATABASE_POOL
    # Rate-limit buckets in Redis (--redis), shared by several instances;
    # None: the data directory's memory-mapped file.
    redis: str | None = None
    # What a scraper of /metrics from beyond this machine sends as a Bearer
    # token; None: loopback only.
    metrics_token: str | None = None
    # Where the audio files live (--storage): None for the data directory,
    # another directory, or s3://BUCKET/PREFIX.
    storage: str | None = None
    # Object storage only: the local cache (None: `cache` in the data
    # directory) and its size in bytes; path-style addressing; downloads
    # answered with a redirect to a presigned URL instead of streamed.
    cache_dir: Path | None = None
    cache_size: int = DEFAULT_CACHE_SIZE
    s3_path_style: bool = False
    s3_redirect: bool = False
    # None: no limit on that budget.
    read_rate: Rate | None = parse_rate(DEFAULT_READ_RATE)
    write_rate: Rate | None = parse_rate(DEFAULT_WRITE_RATE)
    upload_rate: Rate | None = parse_rate(DEFAULT_UPLOAD_RATE)

    @property
    def on_postgres(self) -> bool:
        return self.database is not None and self.database.startswith(POSTGRES_SCHEMES)

    @property
    def on_s3(self) -> bool:
        return self.storage is not None and self.storage.startswith(S3_SCHEME)

    @property
    def cache_path(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"

    @property
    def db_path(self) -> Path:
        """The SQLite file: --database's, or the data directory's."""
        if self.database is None:
            return self.data_dir / "audioserver.sqlite3"
        return Path(self.database)

    @property
    def ratelimit_path(self) -> Path:
        return self.data_dir / "ratelimit.buckets"

    @property
    def auth_mode(self) -> str:
        if self.auth is not None:
            return self.auth
        return "open" if is_loopback(self.host) else "users"

    @cached_property
    def host_names(self) -> tuple[str, ...]:
        """Every name a request's Host may carry; with listens_everywhere,
        any address too. Worked out once, as the Host check compares them."""
        names = list(self.allowed_hosts)
        try:
            names.append(parse_host_name(self.host))
        except ValueError:
            pass  # the wildcard "", which listens_everywhere covers
        if self.listens_everywhere or is_loopback(self.host):
            names.extend(LOOPBACK_NAMES)
        return tuple(dict.fromkeys(names))

    @property
    def listens_everywhere(self) -> bool:
        return self.host in WILDCARD_ADDRESSES


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`; a name other than
    localhost might resolve to anything, so it counts as not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_mode(text: str) -> str:
    if text not in AUTH_MODES:
        raise ValueError(f"{text!r} is not one of {', '.join(AUTH_MODES)}")
    return text


def visibility(text: str) -> str:
    if text not in VISIBILITIES:
        raise ValueError(f"{text!r} is not one of {', '.join(VISIBILITIES)}")
    return text


ENVIRONMENT = {
    "host": ("AUDIOSERVER_HOST", str),
    "port": ("AUDIOSERVER_PORT", int),
    "data_dir": ("AUDIOSERVER_DATA_DIR", Path),
    "database": ("AUDIOSERVER_DATABASE", parse_database),
    "database_pool": ("AUDIOSERVER_DATABASE_POOL", parse_count),
    "storage": ("AUDIOSERVER_STORAGE", parse_storage),
    "cache_dir": ("AUDIOSERVER_CACHE_DIR", Path),
    "cache_size": ("AUDIOSERVER_CACHE_SIZE", parse_cache_size),
    "s3_path_style": ("AUDIOSERVER_S3_PATH_STYLE", parse_flag),
    "s3_redirect": ("AUDIOSERVER_S3_REDIRECT", parse_flag),
    "max_upload_size": ("AUDIOSERVER_MAX_UPLOAD_SIZE", parse_size),
    "workers": ("AUDIOSERVER_WORKERS", parse_count),
    "auth": ("AUDIOSERVER_AUTH", auth_mode),
    "default_visibility": ("AUDIOSERVER_DEFAULT_VISIBILITY", visibility),
    "read_rate": ("AUDIOSERVER_READ_RATE", parse_rate),
    "write_rate": ("AUDIOSERVER_WRITE_RATE", parse_rate),
    "upload_rate": ("AUDIOSERVER_UPLOAD_RATE", parse_rate),
    "trusted_proxies": ("AUDIOSERVER_TRUSTED_PROXIES", parse_addresses),
    "allowed_hosts": ("AUDIOSERVER_ALLOWED_HOSTS", parse_allowed_hosts),
    "header_timeout": ("AUDIOSERVER_HEADER_TIMEOUT", parse_seconds),
    "body_timeout": ("AUDIOSERVER_BODY_TIMEOUT", parse_seconds),
    "body_min_rate": ("AUDIOSERVER_BODY_MIN_RATE", parse_size),
    "shutdown_timeout": ("AUDIOSERVER_SHUTDOWN_TIMEOUT", parse_seconds),
    "redis": ("AUDIOSERVER_REDIS", parse_redis),
    "metrics_token": ("AUDIOSERVER_METRICS_TOKEN", parse_token),
}


# Variables whose values may hold a password or a token.
SECRET_VARIABLES = ("AUDIOSERVER_REDIS", "AUDIOSERVER_METRICS_TOKEN")


def defaults_from_environment(environ=os.environ) -> dict:
    """Flag defaults: the environment variable when set, else the built-in value."""
    values = {}
    for key, (variable, convert) in ENVIRONMENT.items():
        if variable in environ:
            try:
                values[key] = convert(environ[variable])
            except ValueError as exc:
                # A secret's value is not repeated: it would land in a log.
                shown = "..." if variable in SECRET_VARIABLES else repr(environ[variable])
                raise ValueError(f"{variable}={shown}: {exc}") from None
    return values
