"""The `.meta` sidecar kept beside every stored file: enough to rebuild its row.

The database is the truth while it exists; the sidecar is its copy, so that
`python -m audioserver recover` can rebuild the library from the storage
alone after the database is lost. What probing tells (duration, format...)
is not kept: recover probes the file again, exactly as its upload did. The
text fields (tags and edits, models.TEXT_FIELDS) are kept when a file has
any, as edits cannot be read from the file again.
"""

import json

from ..config import VISIBILITIES
from ..models import MAX_TEXT, TEXT_FIELDS, AudioRecord

META_SUFFIX = "meta"
META_VERSION = 1
META_FIELDS = {"name": str, "owner": (str, type(None)), "visibility": str,
               "created_at": str, "sha256": str, "size": int}


def encode(record: AudioRecord) -> bytes:
    """The sidecar of `record`; the same record always gives the same bytes,
    so a sidecar that agrees with its row is recognised by comparing bytes.
    A file without text fields has none, as sidecars had before them."""
    fields = {name: getattr(record, name) for name in META_FIELDS}
    texts = {name: value for name, value in record.texts().items() if value is not None}
    return _dump({**fields, **({"texts": texts} if texts else {})})


def disowned(data: bytes) -> bytes:
    """The sidecar `data` with no owner, as its row is once the account goes."""
    fields = decode(data)
    texts = fields.pop("texts")
    return _dump({**fields, "owner": None, **({"texts": texts} if texts else {})})


def _dump(fields: dict) -> bytes:
    return json.dumps({"version": META_VERSION, **fields}, sort_keys=True).encode() + b"\n"


def decode(data: bytes) -> dict:
    """The fields of a sidecar; ValueError saying what is wrong with it."""
    try:
        fields = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"it is not JSON ({exc})") from None
    if not isinstance(fields, dict) or fields.get("version") != META_VERSION:
        raise ValueError(f"it is not a version {META_VERSION} sidecar")
    for name, kind in META_FIELDS.items():
        value = fields.get(name, ...)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"its {name!r} is missing or of the wrong type")
    if fields["visibility"] not in VISIBILITIES:
        raise ValueError(f"its visibility {fields['visibility']!r} is unknown")
    return {**{name: fields[name] for name in META_FIELDS}, "texts": _texts(fields)}


def _texts(fields: dict) -> dict:
    """The text fields a sidecar keeps ({} when it has none)."""
    texts = fields.get("texts", {})
    if not isinstance(texts, dict) or any(
            name not in TEXT_FIELDS or not isinstance(value, str) or len(value) > MAX_TEXT
            for name, value in texts.items()):
        raise ValueError("its 'texts' are not text fields")
    return texts
