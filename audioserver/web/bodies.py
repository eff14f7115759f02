"""Request bodies: which requests are uploads, how forms are read, and the
slowest client we wait for.

Headers: aiohttp closes a connection whose request headers are not complete
within its keep-alive timeout, counted from the connection's start or the
end of its previous answer (Config.header_timeout). Bodies: a request body
must arrive within Config.body_timeout seconds, plus one second for every
Config.body_min_rate bytes received so far (the rule of Apache's
mod_reqtimeout). A client that stalls or trickles below that is answered
408 and disconnected, so a handful of slow connections cannot hold the
server, while a slow but honest uplink has all the time its bytes earn it.
"""

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import BadRequest, RequestTimeout
from .keys import config_key

# What aiohttp raises on a form or multipart body it cannot parse.
MALFORMED_BODY = (ValueError, AssertionError, HttpProcessingError)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UPLOAD_ROUTE = "upload"
# RFC 9110's safe methods: they change nothing, so they need no CSRF token
# and spend the reads budget.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Every form field but an upload's files, in either encoding: a password,
# a name, a CSRF token, a path to return to.
MAX_FIELD_SIZE = 4096
# How much of a field's name a message repeats.
SHOWN_NAME_LENGTH = 40


def is_upload(request: web.Request) -> bool:
    """POST or PUT /upload: a body that streams to disk and paces itself, is
    never read whole, and spends the upload budget."""
    return getattr(request.match_info.route, "name", None) == UPLOAD_ROUTE


class Pace:
    """The body deadline of one request, moved on by each chunk received."""

    def __init__(self, request: web.Request):
        config = request.app[config_key]
        self._seconds_per_byte = 1.0 / config.body_min_rate
        self._deadline = asyncio.get_running_loop().time() + config.body_timeout
        self._min_rate = config.body_min_rate

    async def read(self, read):
        """`await read()` before the deadline; bytes received extend it."""
        try:
            async with asyncio.timeout_at(self._deadline):
                result = await read()
        except TimeoutError:
            raise RequestTimeout(
                "the request body arrived too slowly; this server waits for "
                f"{self._min_rate} bytes a second at least") from None
        if isinstance(result, (bytes, bytearray)):
            self._deadline += len(result) * self._seconds_per_byte
        return result


async def read_small_body(request: web.Request) -> None:
    """Bodies other than uploads (sign-in, delete, tokens: small forms) are
    read whole within the grace period, and a form is parsed here once: a
    malformed one, or one with a long field, is a 400 before anyone reads it.
    Uploads pace themselves chunk by chunk (uploads.py)."""
    if request.body_exists and not is_upload(request):
        pace = Pace(request)
        if request.content_type in FORM_TYPES:
            # post() reads the body itself: a multipart body from the stream,
            # which a read() first would leave empty. Later calls get the same fields.
            try:
                fields = await pace.read(request.post)
            except MALFORMED_BODY as exc:
                raise BadRequest(f"the form is malformed: {exc}") from None
            check_small_form(fields)
        else:
            await pace.read(request.read)


def check_small_form(fields) -> None:
    """Every field text, none longer than MAX_FIELD_SIZE bytes."""
    for name, value in fields.items():
        if not isinstance(value, str):
            raise BadRequest(f"the form field {_shown(name)!r} is not text; "
                             "only /upload takes files")
        check_field_size(name, len(value.encode("utf-8", "surrogatepass")))


def check_field_size(name: str | None, size: int) -> None:
    """The one rule for form fields, in every form and either encoding."""
    if size > MAX_FIELD_SIZE:
        raise BadRequest(f"the form field {_shown(name)!r} is longer than {MAX_FIELD_SIZE} "
                         "bytes; only files may be large")


def _shown(name: str | None) -> str:
    name = name or ""
    return name if len(name) <= SHOWN_NAME_LENGTH else name[:SHOWN_NAME_LENGTH] + "…"
