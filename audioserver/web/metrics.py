"""GET /metrics in Prometheus's text format, and what the wire counts.

The library's size is nobody else's business: /metrics answers a loopback
client (behind --trusted-proxy, the real client, not the proxy), or anyone
sending --metrics-token as a Bearer token.
"""

import asyncio
import ipaddress
import secrets
import time

from aiohttp import web

from ..errors import Forbidden, Unauthorized
from .clients import client_address
from .keys import config_key, library_key, metrics_key

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # one label for every path that is no route
CLIENT_GONE = 499  # as nginx logs a request whose client went away first


def route_of(request: web.Request) -> str:
    return getattr(request.match_info.route, "name", None) or UNMATCHED


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    metrics = request.app[metrics_key]
    route = route_of(request)
    upload = route == "upload" and request.method in ("POST", "PUT")
    started = time.perf_counter()
    status = 500  # unless an answer says otherwise
    if upload:
        metrics.uploads_in_flight.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects, raised
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        if upload:
            metrics.uploads_in_flight.dec()
            if status == 201:  # what was stored, not what was refused unread
                metrics.uploaded.inc(request.content.total_bytes)
        metrics.answered(route, request.method, status, time.perf_counter() - started)


def count_download(request: web.Request, response: web.StreamResponse) -> None:
    """As an answer is sent (web/app.py): a file's length is known only then."""
    if response.status in (200, 206) and route_of(request) == "download" and \
            request.method == "GET" and response.content_length:
        request.app[metrics_key].downloaded.inc(response.content_length)


async def metrics(request: web.Request) -> web.Response:
    _check_access(request)
    body = await request.app[metrics_key].exposition(request.app[library_key])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _check_access(request: web.Request) -> None:
    token = request.app[config_key].metrics_token
    sent = request.headers.get("Authorization", "")
    if token is not None and sent.startswith("Bearer "):
        if secrets.compare_digest(sent.removeprefix("Bearer ").strip().encode(), token.encode()):
            return
        raise Unauthorized("that is not the metrics token (--metrics-token)")
    if _is_loopback(client_address(request)):
        return
    if token is None:
        raise Forbidden("/metrics answers only this machine; to scrape it from elsewhere, "
                        "start the server with --metrics-token and send it as a Bearer token")
    raise Unauthorized("/metrics needs the metrics token (--metrics-token) as a Bearer token")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a Unix socket, say: not provably this machine's client
