"""Time as AudioServer keeps it: RFC 3339 in UTC, to the microsecond, with a Z.

One form everywhere (audio rows, accounts, sessions, sign-in failures; in
SQLite and in PostgreSQL), always the same width, so comparing the text in
SQL compares the times. Arithmetic happens here, on datetimes.
"""

from datetime import datetime, timedelta, timezone


def to_rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339(later: float = 0.0) -> str:
    """Now, or `later` seconds from now (before now when negative)."""
    return to_rfc3339(datetime.now(timezone.utc) + timedelta(seconds=later))


def seconds_since(rfc3339: str) -> float:
    """How long ago `rfc3339` was (negative: still to come)."""
    then = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - then).total_seconds()
