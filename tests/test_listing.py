"""listing.py on its own: the /list parameters and the keyset cursor."""

import base64
import json

import pytest
from multidict import MultiDict

from audioserver.errors import BadRequest
from audioserver.models import DEFAULT_LIMIT, ListQuery
from audioserver.web.listing import (
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    parse_list_query,
    query_params,
)


def parse(*pairs: tuple[str, str]) -> ListQuery:
    return parse_list_query(MultiDict(pairs))


def refused(*pairs: tuple[str, str]) -> str:
    """The detail of the BadRequest that parsing `pairs` raises."""
    with pytest.raises(BadRequest) as caught:
        parse(*pairs)
    return caught.value.detail


def raw_cursor(*items) -> str:
    """A cursor made by hand, as a client tampering with one would."""
    return base64.urlsafe_b64encode(json.dumps(list(items)).encode()).decode().rstrip("=")


def test_no_parameters_is_everything_by_name():
    assert parse() == ListQuery()
    query = parse()
    assert (query.sort, query.descending, query.limit, query.after) == ("name", False,
                                                                       DEFAULT_LIMIT, None)


def test_every_parameter():
    query = parse(("minduration", "1.5"), ("maxduration", "30"), ("format", "flac"),
                  ("format", " Ogg "), ("samplerate", "48000"), ("channels", "2"),
                  ("q", "Take"), ("sort", "-duration"), ("limit", "25"))
    assert query == ListQuery(min_duration=1.5, max_duration=30.0, formats=("FLAC", "OGG"),
                              samplerate=48000, channels=2, q="Take", sort="duration",
                              descending=True, limit=25)


@pytest.mark.parametrize("formats, expected", [
    (["wav"], ("WAV", "WAVEX", "RF64")),
    (["WAV", "wavex"], ("WAV", "WAVEX", "RF64")),  # no member twice
    (["rf64"], ("RF64",)),
    (["mp3", "wav"], ("MP3", "WAV", "WAVEX", "RF64")),
    (["html"], ()),  # chooses the page, not an audio format
    (["json", "flac"], ("FLAC",)),
    ([""], ()),
])
def test_formats_are_upper_case_and_wav_is_a_family(formats, expected):
    assert parse(*[("format", value) for value in formats]).formats == expected


def test_a_plain_dict_works_like_the_query_string():
    assert parse_list_query({"format": "wav", "maxduration": "3", "sort": "-size"}) == parse(
        ("format", "wav"), ("maxduration", "3"), ("sort", "-size"))


@pytest.mark.parametrize("pairs", [
    (("maxduration", ""),), (("minduration", ""),), (("samplerate", ""),),
    (("channels", ""),), (("q", ""),), (("limit", ""),), (("sort", ""),), (("cursor", ""),),
])
def test_empty_values_mean_unset(pairs):
    # An HTML form sends every field, filled or not.
    assert parse(*pairs) == ListQuery()


@pytest.mark.parametrize("text, seconds", [("0", 0.0), ("2", 2.0), ("0.25", 0.25),
                                           ("1e1", 10.0), (" 3 ", 3.0)])
def test_durations(text, seconds):
    query = parse(("minduration", text), ("maxduration", text))
    assert query.min_duration == query.max_duration == seconds


def test_limit_edges():
    assert parse(("limit", "1")).limit == 1
    assert parse(("limit", str(MAX_LIMIT))).limit == MAX_LIMIT


@pytest.mark.parametrize("pairs, named", [
    ((("maxduration", "abc"),), "maxduration"),
    ((("maxduration", "nan"),), "maxduration"),
    ((("maxduration", "1e999"),), "maxduration"),
    ((("minduration", "inf"),), "minduration"),
    ((("minduration", "-1"),), "minduration"),
    ((("minduration", "-0.001"),), "minduration"),
    ((("samplerate", "0"),), "samplerate"),
    ((("samplerate", "44.1"),), "samplerate"),
    ((("samplerate", "-44100"),), "samplerate"),
    ((("samplerate", "9" * 30),), "samplerate"),  # would overflow SQLite's integers
    ((("channels", "x"),), "channels"),
    ((("channels", "²"),), "channels"),  # isdigit() says yes; it is no number
    ((("channels", "٢"),), "channels"),
    ((("limit", "0"),), "limit"),
    ((("limit", "-1"),), "limit"),
    ((("limit", str(MAX_LIMIT + 1)),), "limit"),
    ((("limit", "abc"),), "limit"),
    ((("sort", "bogus"),), "sort"),
    ((("sort", "-"),), "sort"),
    ((("sort", "--name"),), "sort"),
    ((("sort", "Name"),), "sort"),
    ((("maxduration", "1"), ("maxduration", "2")), "maxduration"),
    ((("sort", "name"), ("sort", "size")), "sort"),
    ((("q", "a"), ("q", "b")), "q"),
])
def test_bad_values_name_the_parameter(pairs, named):
    assert named in refused(*pairs)


def test_q_is_kept_as_typed_but_in_nfc():
    assert parse(("q", "Take 2")).q == "Take 2"
    # Names are stored in NFC; a decomposed É (E + U+0301) must find them too.
    assert parse(("q", "E\u0301cl")).q == "\u00c9cl"


@pytest.mark.parametrize("query", [
    ListQuery(),
    ListQuery(min_duration=0.5, max_duration=30.0, formats=("FLAC", "WAV", "WAVEX", "RF64"),
              samplerate=44100, channels=2, q="ü & ?=#", sort="duration", descending=True,
              limit=7, after=(12.75, "Zürich.wav")),
    ListQuery(sort="size", after=(88244, "a.wav")),
    ListQuery(sort="created", descending=True, after=("2026-11-24T09:09:02.117366Z", "b")),
    ListQuery(sort="name", after=("\u00c9clair.aiff", "\u00c9clair.aiff")),
    ListQuery(min_duration=1e-05),  # str() writes it as 1e-05: still a number
])
def test_to_params_round_trips(query):
    assert parse(*query_params(query)) == query


def test_next_page_keeps_everything_but_the_position():
    query = parse(("format", "flac"), ("sort", "-size"), ("limit", "2"))
    page = query.next_page(1000, "b.flac")
    assert page == ListQuery(formats=("FLAC",), sort="size", descending=True, limit=2,
                             after=(1000, "b.flac"))
    assert parse(*query_params(page)) == page


@pytest.mark.parametrize("sort_param, after", [
    ("name", ("a.wav", "a.wav")),
    ("-duration", (3.141592653589793, "pi.wav")),  # floats come back exactly
    ("size", (2**62, "big.wav")),
    ("-created", ("2026-11-24T09:09:02.117366Z", "日本.wav")),
])
def test_cursor_round_trip(sort_param, after):
    cursor = encode_cursor(sort_param, after)
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, sort_param) == after


def test_a_cursor_from_another_sort_is_refused():
    cursor = encode_cursor("duration", (1.0, "a.wav"))
    for other in ("-duration", "name", "size"):
        with pytest.raises(BadRequest, match="another sort order"):
            decode_cursor(cursor, other)
    with pytest.raises(BadRequest, match="another sort order"):
        parse(("sort", "-duration"), ("cursor", cursor))


@pytest.mark.parametrize("sort, cursor", [
    pytest.param("name", "not-a-cursor!", id="not-base64"),
    pytest.param("name", "é", id="not-ascii"),
    pytest.param("name", base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    pytest.param("name", base64.urlsafe_b64encode(b"5").decode(), id="not-a-list"),
    pytest.param("name", raw_cursor("name", "a"), id="two-items"),
    pytest.param("name", raw_cursor("name", "a", 5), id="name-not-text"),
    pytest.param("name", raw_cursor("name", "a", None), id="name-null"),
    pytest.param("name", raw_cursor("name", 1, "a"), id="name-sort-value-not-text"),
    pytest.param("duration", raw_cursor("duration", [1], "a"), id="list"),  # SQLite can't bind
    pytest.param("duration", raw_cursor("duration", {"a": 1}, "a"), id="object"),
    pytest.param("duration", raw_cursor("duration", "abc", "a"), id="duration-text"),
    pytest.param("duration", raw_cursor("duration", True, "a"), id="duration-bool"),
    pytest.param("duration", raw_cursor("duration", None, "a"), id="duration-null"),
    pytest.param("duration", "WyJkdXJhdGlvbiIsTmFOLCJhIl0", id="duration-nan"),
    pytest.param("size", raw_cursor("size", 10**30, "a"), id="size-past-64-bits"),
    pytest.param("size", raw_cursor("size", 1.5, "a"), id="size-fraction"),
    pytest.param("created", raw_cursor("created", 17, "a"), id="created-number"),
    pytest.param("name", raw_cursor("name", "a", "\ud800"), id="lone-surrogate"),
])
def test_a_tampered_cursor_is_refused(sort, cursor):
    with pytest.raises(BadRequest, match="cursor"):
        parse(("sort", sort), ("cursor", cursor))


@pytest.mark.parametrize("sort, value", [("format", "WAVEX"), ("-samplerate", 48000),
                                         ("channels", 2)])
def test_the_new_sorts_page_with_cursors_of_their_type(sort, value):
    page = parse(("sort", sort)).next_page(value, "a.wav")
    assert parse(*query_params(page)) == page
    for wrong in ("text" if isinstance(value, int) else 5, 1.5, None):
        with pytest.raises(BadRequest, match="cursor"):
            parse(("sort", sort), ("cursor", raw_cursor(sort.lstrip("-"), wrong, "a")))


def test_a_previous_page_goes_in_before_and_round_trips():
    page = parse(("sort", "-size"), ("limit", "5")).previous_page(1000, "b.flac")
    assert page.backward and page.after == (1000, "b.flac")
    params = query_params(page)
    assert "before" in dict(params) and "cursor" not in dict(params)
    assert parse(*params) == page
    assert parse(*query_params(page.next_page(1, "a.wav"))).backward is False


def test_a_cursor_and_a_before_together_are_refused():
    cursor = encode_cursor("name", ("a", "a"))
    with pytest.raises(BadRequest, match="cursor or before"):
        parse(("cursor", cursor), ("before", cursor))
