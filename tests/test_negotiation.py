"""negotiation.wants_html: a page for browsers, JSON for everything else."""

import pytest
from aiohttp.test_utils import make_mocked_request

from audioserver.web.negotiation import wants_html

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def request(accept: str | None = None, query: str = "") -> bool:
    headers = {} if accept is None else {"Accept": accept}
    return wants_html(make_mocked_request("GET", "/list" + query, headers=headers))


@pytest.mark.parametrize("accept", [
    None,  # no Accept at all: a script
    "*/*",  # curl, wget, fetch()
    "application/json",
    "application/problem+json",
    "application/json, text/html;q=0.9",
    "text/html;q=0.5, application/*",
    "text/html;q=0, */*",  # refuses HTML outright
    "text/*;q=0.9, text/html;q=0",  # the specific type wins over its range
    "text/html;q=bogus, */*;q=0.1",  # an unreadable q counts as 0
    "image/png, audio/*",  # names neither
    "",
])
def test_json_for_scripts(accept):
    assert request(accept) is False


@pytest.mark.parametrize("accept", [
    BROWSER,
    "text/html",
    "TEXT/HTML",  # media types are case-insensitive
    "text/html;level=1",  # parameters other than q do not change the type
    "text/*",
    "text/html, application/json",  # a tie goes to the page
    "application/json;q=0.5, text/html",
    "text/html;q=0.9, */*;q=0.8",
])
def test_html_for_browsers(accept):
    assert request(accept) is True


@pytest.mark.parametrize("query, accept, expected", [
    ("?format=html", "*/*", True),
    ("?format=HTML", None, True),
    ("?format=json", BROWSER, False),
    ("?format=Json", "text/html", False),
    # /list also takes audio formats in ?format=: they do not choose a representation.
    ("?format=wav", BROWSER, True),
    ("?format=wav", "*/*", False),
    ("?format=wav&format=html", "*/*", True),
    ("?format=flac&format=json", BROWSER, False),
])
def test_format_parameter_overrides_accept(query, accept, expected):
    assert request(accept, query) is expected
