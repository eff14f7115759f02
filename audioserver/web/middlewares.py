"""One error middleware: problem+json for machines, a page for people."""

import asyncio
import json
import logging
from http import HTTPStatus

from aiohttp import web

from ..errors import AudioServerError
from .negotiation import wants_html
from .templating import render

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
UNEXPECTED = "the server hit an unexpected error; it has been logged"
# What aiohttp's own errors mean to someone using this API.
HTTP_DETAILS = {
    404: "there is nothing at this path; the API has /upload, /download, /list, /info and /delete",
    405: "this path does not take {method}; it takes {allowed}",
}


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AudioServerError as exc:
        return problem(request, exc.status, exc.detail, exc.extra, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(request, HTTPStatus(exc.status), _http_detail(request, exc),
                       headers=_kept_headers(exc))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path_qs)
        return problem(request, HTTPStatus.INTERNAL_SERVER_ERROR, UNEXPECTED)


def problem(request: web.Request, status: HTTPStatus, detail: str, extra=None,
            headers=None) -> web.Response:
    """An RFC 9457 problem, or the same facts as a page for a browser."""
    if wants_html(request):
        response = render(request, "error.html", {"problem": problem_body(status, detail, extra)},
                          status=int(status))
    else:
        response = problem_json(status, detail, extra)
    response.headers.update(headers or {})
    return response


def problem_json(status: HTTPStatus, detail: str, extra=None) -> web.Response:
    return web.Response(status=int(status), text=json.dumps(problem_body(status, detail, extra)),
                        content_type=PROBLEM_TYPE)


def problem_body(status: HTTPStatus, detail: str, extra=None) -> dict:
    return {"type": "about:blank", "title": status.phrase, "status": int(status),
            "detail": detail, **(extra or {})}


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    template = HTTP_DETAILS.get(exc.status)
    if template is None:
        return exc.text.removeprefix(f"{exc.status}: ") if exc.text else exc.reason
    allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
    return template.format(method=request.method, allowed=allowed)


def _kept_headers(exc: web.HTTPException) -> dict:
    return {key: value for key, value in exc.headers.items() if key in ("Allow", "Retry-After")}
