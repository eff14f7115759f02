"""What an edit may change: a file's name and its text fields.

An edit comes as a JSON merge patch (RFC 7396, PATCH /info) or as the info
page's form; both end as the same changes, checked here, so the rules are
one: the name follows names.py's, a text is at most MAX_TEXT characters
(none of them control characters but a description's line breaks), and an
empty text removes the field.
"""

import unicodedata

from .errors import BadRequest
from .models import EDITABLE_FIELDS, MAX_TEXT
from .names import validate_name

FIELDS = ("name", *EDITABLE_FIELDS)
# Only the description is several lines long.
MULTILINE = ("description",)


def from_merge_patch(patch) -> dict:
    """The changes a merge patch asks for; BadRequest saying what is wrong."""
    if not isinstance(patch, dict):
        raise BadRequest("send a JSON object: a merge patch of the fields to change, e.g. "
                         '{"title": "New title", "album": null}')
    unknown = sorted(set(patch) - set(FIELDS))
    if unknown:
        raise BadRequest(f"{', '.join(map(repr, unknown))} cannot be changed; an edit "
                         f"changes {', '.join(FIELDS)}")
    return _checked(patch)


def from_form(fields) -> dict:
    """The changes the info page's form asks for: every field it has."""
    return _checked({field: fields[field] for field in FIELDS if field in fields})


def _checked(changes: dict) -> dict:
    checked = {}
    for field, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{field!r} must be text or null")
        if field == "name":
            if value is None:
                raise BadRequest("a file keeps a name: 'name' cannot be null")
            checked["name"] = validate_name(value)
        else:
            checked[field] = _text(field, value)
    return checked


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value).replace("\r\n", "\n").strip()
    for char in text:
        if not char.isprintable() and not (char == "\n" and field in MULTILINE):
            raise BadRequest(f"{field!r} contains the control character U+{ord(char):04X}")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"{field!r} is longer than {MAX_TEXT} characters")
    return text or None
