"""The metadata record shared by the database, the library and the views."""

from dataclasses import dataclass
from typing import NamedTuple

PUBLIC_FIELDS = (
    "name", "duration", "frames", "samplerate", "channels", "format",
    "subtype", "content_type", "size", "sha256", "created_at", "owner", "visibility",
)


@dataclass(frozen=True)
class AudioInfo:
    """What probing a file tells us about its audio."""

    frames: int
    samplerate: int
    channels: int
    format: str
    subtype: str
    content_type: str

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


class AudioRecord(NamedTuple):
    """A file in the library. A named tuple, not a dataclass: /list builds a
    hundred per request, and a tuple is several times cheaper to make."""

    name: str
    duration: float
    frames: int
    samplerate: int
    channels: int
    format: str
    subtype: str
    content_type: str
    size: int
    sha256: str
    created_at: str
    owner: str | None  # the account that uploaded it; None in open mode
    visibility: str  # "public", or "private": its owner and admins only
    storage_key: str
    available: bool = True

    def public(self) -> dict:
        """The metadata object clients see."""
        # The public fields are the first ones, in order.
        return dict(zip(PUBLIC_FIELDS, self))
