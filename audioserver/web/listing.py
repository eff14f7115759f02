"""The /list query: parsing its parameters and its keyset cursor."""

import base64
import binascii
import json
import math
import unicodedata
from typing import Mapping

from ..accounts import validate_user_name
from ..config import VISIBILITIES
from ..errors import BadRequest
from ..models import DEFAULT_LIMIT, SORT_COLUMNS, ListQuery

MAX_LIMIT = 1000
# libsndfile's WAVEX and RF64 are the same .wav family as WAV to a user.
FORMAT_FAMILIES = {"WAV": ("WAV", "WAVEX", "RF64")}
# ?format=json and ?format=html choose the representation, not an audio format.
REPRESENTATIONS = {"JSON", "HTML"}
# SQLite's integers are 64-bit: a larger number cannot even be compared.
MAX_INT = 2**63 - 1
# What a cursor's sort value may be, by sort: anything else would reach SQL
# as a parameter it cannot bind (a list) or compare sensibly (a string size).
CURSOR_VALUE_TYPES = {"name": (str,), "duration": (int, float), "size": (int,),
                      "created": (str,), "format": (str,), "samplerate": (int,),
                      "channels": (int,)}



def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """Build a ListQuery from request parameters, or raise BadRequest."""
    sort_param = _one(params, "sort") or "name"
    sort = sort_param.removeprefix("-")
    if sort not in SORT_COLUMNS:
        raise BadRequest(
            f"sort={sort_param!r} is not a sort order; use one of "
            + ", ".join(SORT_COLUMNS) + " (with a leading '-' for descending)"
        )
    query = ListQuery(
        min_duration=_seconds(params, "minduration"),
        max_duration=_seconds(params, "maxduration"),
        formats=_formats(params),
        samplerate=_positive_int(params, "samplerate"),
        channels=_positive_int(params, "channels"),
        q=_search_text(params),
        artist=_search_text(params, "artist"),
        album=_search_text(params, "album"),
        owner=_owner(params),
        visibility=_visibility(params),
        sort=sort,
        descending=sort_param.startswith("-"),
        limit=_limit(params),
    )
    cursor, before = _one(params, "cursor"), _one(params, "before")
    if cursor and before:
        raise BadRequest("give a cursor or before, not both: follow a Next or Previous link "
                         "as it is")
    if cursor:
        query = query.next_page(*decode_cursor(cursor, query.sort_param))
    elif before:
        # A Previous link: the page that ends where `before` starts.
        query = query.previous_page(*decode_cursor(before, query.sort_param))
    return query


def _one(params: Mapping[str, str], key: str) -> str | None:
    values = params.getall(key, []) if hasattr(params, "getall") else [params.get(key)]
    values = [value for value in values if value is not None]
    if len(values) > 1:
        raise BadRequest(f"{key} was given {len(values)} times; give it once")
    return values[0] if values else None


def _all(params: Mapping[str, str], key: str) -> list[str]:
    """Every value of a repeatable parameter, from a MultiDict or a plain dict."""
    if hasattr(params, "getall"):
        return params.getall(key, [])
    return [params[key]] if params.get(key) is not None else []


def _search_text(params, key: str = "q") -> str | None:
    """?q= (or ?artist=, ?album=), in NFC as names and tags are stored:
    "É" typed decomposed must find "Éclair"."""
    text = _one(params, key)
    return unicodedata.normalize("NFC", text) if text else None


def _owner(params) -> str | None:
    text = _one(params, "owner")
    return validate_user_name(text) if text else None


def _visibility(params) -> str | None:
    text = _one(params, "visibility")
    if not text:
        return None
    if text not in VISIBILITIES:
        raise BadRequest(f"visibility={text!r} is not one of {', '.join(VISIBILITIES)}")
    return text


def _seconds(params, key: str) -> float | None:
    text = _one(params, key)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{key}={text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"{key}={text!r}: give a finite number of seconds, 0 or more")
    return value


def _positive_int(params, key: str) -> int | None:
    text = _one(params, key)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_INT:
        raise BadRequest(f"{key}={text!r} is not a positive whole number")
    return int(text)


def _limit(params) -> int:
    text = _one(params, "limit")
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit={text!r}: give a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _formats(params) -> tuple[str, ...]:
    formats = []
    for value in _all(params, "format"):
        name = value.strip().upper()
        if not name or name in REPRESENTATIONS:
            continue
        for member in FORMAT_FAMILIES.get(name, (name,)):
            if member not in formats:
                formats.append(member)
    return tuple(formats)


def encode_cursor(sort_param: str, after: tuple) -> str:
    raw = json.dumps([sort_param, *after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort_param: str) -> tuple:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, name = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise _not_our_cursor() from None
    if cursor_sort != sort_param:
        raise BadRequest("the cursor belongs to another sort order; start again without it")
    sort = sort_param.removeprefix("-")
    if not _cursor_value_ok(value, sort) or not _cursor_value_ok(name, "name"):
        raise _not_our_cursor()
    return (value, name)


def _not_our_cursor() -> BadRequest:
    return BadRequest(
        "the cursor is not one this server made; follow the Link: rel=\"next\" URL as it is"
    )


def _cursor_value_ok(value, sort: str) -> bool:
    """Whether `value` is what this server puts in a cursor for `sort`."""
    if isinstance(value, bool) or not isinstance(value, CURSOR_VALUE_TYPES[sort]):
        return False
    if isinstance(value, int):
        return -MAX_INT - 1 <= value <= MAX_INT
    if isinstance(value, float):
        return math.isfinite(value)  # JSON's NaN would bind as NULL and end the listing
    if isinstance(value, str):
        # JSON allows a lone surrogate ("\ud800"), which is no text SQLite can bind.
        return not any("\ud800" <= char <= "\udfff" for char in value)
    return True


def query_params(query: ListQuery) -> list[tuple[str, str]]:
    """The query string that asks for exactly this page."""
    params = []
    for key, value in (
        ("minduration", query.min_duration), ("maxduration", query.max_duration),
        ("samplerate", query.samplerate), ("channels", query.channels), ("q", query.q),
        ("artist", query.artist), ("album", query.album),
        ("owner", query.owner), ("visibility", query.visibility),
    ):
        if value is not None:
            params.append((key, str(value)))
    params += [("format", fmt) for fmt in query.formats]
    params += [("sort", query.sort_param), ("limit", str(query.limit))]
    if query.after is not None:
        params.append(("before" if query.backward else "cursor",
                       encode_cursor(query.sort_param, query.after)))
    return params
