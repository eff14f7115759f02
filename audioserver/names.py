"""Audio names: the client's label, validated and kept as given (after NFC)."""

import unicodedata

from .errors import BadRequest

MAX_NAME_BYTES = 255


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
    for char in name:
        if char in "/\\":
            raise InvalidName(raw, f"the name contains {char!r}, which is not allowed")
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidName(
                raw, f"the name contains the control character U+{ord(char):04X}"
            )
    return name
