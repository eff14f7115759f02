"""Audio names: the client's label, validated and kept as given (after NFC)."""

import re
import unicodedata

from .errors import BadRequest

MAX_NAME_BYTES = 255
# The path separators, and Unicode's Cc (C0, DEL, C1) and Cs (surrogates):
# one regular expression, not a category lookup per character.
REFUSED_CHARACTER = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class InvalidName(BadRequest):
    """The name cannot be used; the detail says why, for the client."""

    def __init__(self, raw: str | None, reason: str):
        # A 10,000-character name need not come back whole in the error.
        shown = "" if raw is None else f" {raw[:80]!r}" + ("…" if len(raw) > 80 else "")
        super().__init__(f"bad name{shown}: {reason}", name=raw)


def validate_name(raw: str | None) -> str:
    """Return the NFC form of `raw`, or raise InvalidName saying what is wrong.

    Names are never rewritten beyond NFC: a name the server would have to
    change is refused, so the client always knows what it is called.
    """
    if raw is None or raw == "":
        raise InvalidName(raw, "a name is required")
    name = unicodedata.normalize("NFC", raw)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(raw, f"the name is longer than {MAX_NAME_BYTES} bytes in UTF-8")
    if name in (".", ".."):
        raise InvalidName(raw, "'.' and '..' are not names")
    refused = REFUSED_CHARACTER.search(name)  # the first, as a loop over the name would find
    if refused is not None:
        char = refused.group()
        if char in "/\\":
            raise InvalidName(raw, f"the name contains {char!r}, which is not allowed")
        raise InvalidName(raw, f"the name contains the control character U+{ord(char):04X}")
    return name
