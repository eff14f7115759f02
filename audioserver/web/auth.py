"""Sign-in on the wire: who sent each request, the session cookie, and CSRF.

A request is signed in by an `Authorization: Bearer` API token (curl,
scripts) or by the session cookie (browsers). Only the cookie rides along
on its own, so only cookie-signed requests need a CSRF token: the session's
token, sent as the X-CSRF-Token header (scripts on our pages) or as the
`csrf_token` form field (forms; an upload form sends it before its files).
"""

import secrets

from aiohttp import web
from yarl import URL

from ..auth import SESSION_COOKIE
from ..errors import Forbidden, Unauthorized
from .bodies import FORM_TYPES, SAFE_METHODS, is_upload
from .clients import is_https, requested_host
from .keys import auth_key, csrf_pending_key, session_key, token_key, user_key
from .ratelimit import charge

CSRF_HEADER = "X-CSRF-Token"
METRICS_PATH = "/metrics"
CSRF_FIELD = "csrf_token"


async def identify(request: web.Request) -> None:
    """Who sent the request: request[user_key], None for nobody signed in."""
    request[user_key] = None
    auth = request.app[auth_key]
    # /metrics takes a Bearer token of its own (--metrics-token), not an API token.
    if not auth.open and request.path != METRICS_PATH:
        header = request.headers.get("Authorization")
        if header is not None:
            try:
                request[user_key], request[token_key] = await auth.bearer_user(header)
            except Unauthorized:
                # Guessing tokens spends the address's budget like any flood.
                await charge(request)
                raise
        elif secret := request.cookies.get(SESSION_COOKIE):
            session = await auth.session(secret)
            if session is not None:
                request[session_key] = session
                request[user_key] = session.user


async def check_csrf_of(request: web.Request) -> None:
    """Forbidden for a change asked by another site, or by a browser's
    session without its CSRF token."""
    if request.method in SAFE_METHODS:
        return
    # First, whoever is signed in: a page on another site has no business
    # changing anything here (an open server on this machine, say), and a
    # token that leaked to it must not be enough either.
    _check_same_origin(request)
    session = request.get(session_key)
    if session is None:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in FORM_TYPES:
        if request.content_type == "multipart/form-data" and is_upload(request):
            # Reading the form would read the files: the upload reader checks
            # the token in the form's first field instead.
            request[csrf_pending_key] = session.csrf_token
            return
        sent = (await request.post()).get(CSRF_FIELD)
    check_csrf(session.csrf_token, sent)


def check_csrf(expected: str, sent) -> None:
    if not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise Forbidden(
            "this request lacks the CSRF token of your session; reload the page and "
            f"try again (scripts send the {CSRF_HEADER} header, or use an API token)")


def _check_same_origin(request: web.Request) -> None:
    """Browsers say where a request comes from: Sec-Fetch-Site, or at least Origin."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        cross = site not in ("same-origin", "none")
    else:
        origin = request.headers.get("Origin")
        # Behind a trusted proxy, the host the browser asked for is the
        # forwarded one; Host names the proxy's way to us.
        cross = origin is not None and (origin == "null"
                                        or URL(origin).raw_authority != requested_host(request))
    if cross:
        raise Forbidden("a page on another site may not change this server's files")


def set_session_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    config = request.app[auth_key].config
    response.set_cookie(SESSION_COOKIE, secret, max_age=int(config.session_lifetime),
                        path="/", httponly=True, samesite="Lax", secure=is_https(request))


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=is_https(request), httponly=True,
                        samesite="Lax")

