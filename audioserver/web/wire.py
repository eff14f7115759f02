"""HTTP/1.1 on the wire: how much of a request aiohttp reads before any
handler runs, and what it answers when it cannot parse one.

A malformed request line, a line over the limit or too many headers is
answered by aiohttp's RequestHandler.handle_error, before the application
sees the request: no middleware and no on_response_prepare signal runs. Its
answer was text/plain without our security headers, and echoed the start
of the request. aiohttp has no hook for it (aio-libs/aiohttp#3287), so that
one method is wrapped, here only; tests/test_wire.py checks the answer over
a raw socket, so an aiohttp that changes this path fails the tests loudly.
"""

from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from .middlewares import UNEXPECTED, problem_json
from .securityheaders import SECURITY_HEADERS

# A request line or header line past 8 KiB (aiohttp's default), or more
# than 100 headers, is refused.
MAX_LINE = 8190
MAX_HEADERS = 100
# aiohttp's message for the latter; its only way to tell it from other 400s.
TOO_MANY_HEADERS = "Too many headers"
# Logs the error, and refuses to answer (ConnectionError) once an answer has begun.
AIOHTTP_HANDLE_ERROR = RequestHandler.handle_error


def answer_unparsable_requests() -> None:
    """Make aiohttp's own error answers problems with our headers; idempotent."""
    RequestHandler.handle_error = _handle_error


def _handle_error(self: RequestHandler, request: web.BaseRequest, status: int = 500,
                  exc: BaseException | None = None, message: str | None = None
                  ) -> web.StreamResponse:
    AIOHTTP_HANDLE_ERROR(self, request, status, exc, message)
    status, detail = _explain(HTTPStatus(status), exc)
    response = problem_json(status, detail)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    response.force_close()
    return response


def _explain(status: HTTPStatus, exc: BaseException | None) -> tuple[HTTPStatus, str]:
    """Status and detail, from what went wrong only: aiohttp's messages quote
    the request, and nothing the client sent goes back to it."""
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return status, UNEXPECTED
    if not isinstance(exc, HttpProcessingError):
        return status, status.description
    if isinstance(exc, LineTooLong):
        return status, (f"a line of the request, its request line or a header, is longer "
                        f"than {MAX_LINE} bytes")
    if str(exc.message).startswith(TOO_MANY_HEADERS):
        return (HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request has more than {MAX_HEADERS} headers")
    if isinstance(exc, BadStatusLine):
        return status, ("the request line is not HTTP/1.1 this server reads, such as "
                        "'GET / HTTP/1.1' (is this HTTPS sent to a plain HTTP port?)")
    return status, "the request is not valid HTTP/1.1: a header is malformed"
