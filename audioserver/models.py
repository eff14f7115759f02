"""The metadata record shared by the database, the library and the views."""

from dataclasses import asdict, dataclass

PUBLIC_FIELDS = (
    "name", "duration", "frames", "samplerate", "channels", "format",
    "subtype", "content_type", "size", "sha256", "created_at",
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


@dataclass(frozen=True)
class AudioRecord:
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
    storage_key: str
    available: bool = True

    def public(self) -> dict:
        """The metadata object clients see."""
        full = asdict(self)
        return {field: full[field] for field in PUBLIC_FIELDS}
