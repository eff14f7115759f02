"""What caches may keep: Cache-Control and Vary, decided here for every answer.

With accounts, an answer depends on who asks: a private file is there for
its owner and a 404 for everyone else, a list holds what its reader may
see, every page names who is signed in. So it is `private` (a browser may
keep it, a shared cache may not) and varies on the cookie and the token,
so no cache hands one person's answer to another. One URL serves a page or
JSON, so answers vary on Accept as well. A private file's bytes are not
stored anywhere. Static files, and the bytes of public files to whoever is
not signed in, stay as they are: the same for everyone, and revalidated by
their ETag (no-cache).
"""

from aiohttp import web

from ..models import AudioRecord
from .keys import auth_key, user_key

PRIVATE = "private"
# Revalidate every time: cheap 304s while the bytes are the same.
PUBLIC_FILE = "no-cache"
PRIVATE_FILE = "private, no-store"
VIEWER_HEADERS = ("Cookie", "Authorization")
NEGOTIATED_BY = "Accept"
STATIC_ROUTE = "static"
DOWNLOAD_ROUTE = "download"
# Routes that answer in one format whatever Accept says (their errors do not).
ONE_FORMAT_ROUTES = (DOWNLOAD_ROUTE, "waveform", "openapi")


def file_cache_control(record: AudioRecord) -> str:
    """Cache-Control of a file's bytes (and of its 304s)."""
    return PRIVATE_FILE if record.visibility == "private" else PUBLIC_FILE


def add_cache_headers(request: web.Request, response: web.StreamResponse) -> None:
    """As an answer is sent (web/app.py): every answer but the static files'."""
    route = getattr(request.match_info.route, "name", None)
    if route == STATIC_ROUTE:
        return
    accounts = not request.app[auth_key].open
    one_format = route in ONE_FORMAT_ROUTES and response.status < 400
    _add_vary(response, [*(VIEWER_HEADERS if accounts else ()),
                         *(() if one_format else (NEGOTIATED_BY,))])
    if accounts and not _same_for_everyone(request, route, response):
        _make_private(response)


def _same_for_everyone(request: web.Request, route: str | None,
                       response: web.StreamResponse) -> bool:
    """A public file's bytes, asked for by nobody in particular."""
    return (route == DOWNLOAD_ROUTE and response.status < 400
            and request.get(user_key) is None
            and response.headers.get("Cache-Control") == PUBLIC_FILE)


def _make_private(response: web.StreamResponse) -> None:
    directives = _items(response.headers.get("Cache-Control", ""))
    if PRIVATE not in directives:
        response.headers["Cache-Control"] = ", ".join([PRIVATE, *directives])


def _add_vary(response: web.StreamResponse, headers: list[str]) -> None:
    present = response.headers.get("Vary")
    if present is None:  # nearly always: one join, not a merge
        if headers:
            response.headers["Vary"] = ", ".join(headers)
        return
    present = _items(present)
    added = [h for h in headers if h.lower() not in {p.lower() for p in present}]
    if added:
        response.headers["Vary"] = ", ".join([*present, *added])


def _items(header: str) -> list[str]:
    return [item.strip() for item in header.split(",") if item.strip()]
