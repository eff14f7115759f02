"""The metadata record shared by the database, the library and the views,
and the query that lists records."""

from dataclasses import dataclass, field, replace
from typing import NamedTuple

DEFAULT_LIMIT = 100
# Sort name in the URL -> column. `name` is unique, so it breaks every tie.
# Each has an index led by `available`, ending in name, in both backends.
SORT_COLUMNS = {"name": "name", "duration": "duration", "size": "size", "created": "created_at",
                "format": "format", "samplerate": "samplerate", "channels": "channels"}
PUBLIC_FIELDS = (
    "name", "duration", "frames", "samplerate", "channels", "format",
    "subtype", "content_type", "size", "sha256", "created_at", "owner", "visibility",
)
# Tags read from the file (media/tags.py), which the owner may edit, and
# `description`, which only an edit sets.
TAG_FIELDS = ("title", "artist", "album", "track", "date", "genre", "comment")
TEXT_FIELDS = (*TAG_FIELDS, "description")
# What an edit (PATCH /info) may change besides the name.
EDITABLE_FIELDS = ("title", "artist", "album", "description")
# The longest text a tag or an edit keeps, in characters.
MAX_TEXT = 1000


@dataclass(frozen=True)
class AudioInfo:
    """What probing a file tells us about its audio."""

    frames: int
    samplerate: int
    channels: int
    format: str
    subtype: str
    content_type: str
    # Its tags (TAG_FIELDS present), and its cover art as (media type, bytes).
    tags: dict = field(default_factory=dict)
    cover: tuple[str, bytes] | None = None

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
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: str | None = None
    date: str | None = None
    genre: str | None = None
    comment: str | None = None
    description: str | None = None
    cover: str | None = None  # the cover art's media type, if it has one

    def public(self) -> dict:
        """The metadata object clients see."""
        # The public fields are the first ones, in order.
        return {**dict(zip(PUBLIC_FIELDS, self)), **self.texts(), "cover": self.cover}

    def texts(self) -> dict:
        return {field: getattr(self, field) for field in TEXT_FIELDS}

    def tags_folded(self) -> str:
        """What `q` searches besides the name, casefolded as names are."""
        return "\n".join(getattr(self, field) or "" for field in TEXT_FIELDS).casefold()


@dataclass(frozen=True)
class ListQuery:
    min_duration: float | None = None
    max_duration: float | None = None
    formats: tuple[str, ...] = ()
    samplerate: int | None = None
    channels: int | None = None
    q: str | None = None
    artist: str | None = None
    album: str | None = None
    owner: str | None = None
    visibility: str | None = None
    sort: str = "name"
    descending: bool = False
    limit: int = DEFAULT_LIMIT
    # The (sort value, name) of the last row of the previous page; with
    # `backward`, of the first row of the next page: the page is the rows
    # before it (a Previous link).
    after: tuple | None = None
    backward: bool = False

    @property
    def sort_param(self) -> str:
        return ("-" if self.descending else "") + self.sort

    def next_page(self, last_value, last_name) -> "ListQuery":
        return replace(self, after=(last_value, last_name), backward=False)

    def previous_page(self, first_value, first_name) -> "ListQuery":
        return replace(self, after=(first_value, first_name), backward=True)
