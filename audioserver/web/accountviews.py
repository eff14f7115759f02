"""Handlers for signing in and out, the first admin, and API tokens."""

import secrets
import string
import unicodedata
import urllib.parse

from aiohttp import web

from .. import auth
from ..accounts import User, validate_user_name
from ..clock import now_rfc3339
from ..errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized
from .auth import clear_session_cookie, set_session_cookie
from .clients import client_address
from .keys import auth_key, session_key, token_key, user_key
from .negotiation import wants_html
from .templating import render

# What a page can show again with a message, rather than an error page.
FORM_ERRORS = (BadRequest, Unauthorized, TooManyRequests)

TRUE_WORDS = ("1", "true", "yes", "on")

# What a path in a Location header may hold as it is; the rest is escaped.
PRINTABLE_ASCII = "".join(sorted(set(string.printable) - set(string.whitespace)))


async def login_form(request: web.Request) -> web.StreamResponse:
    rules = require_accounts(request)
    if await rules.setup_pending():
        # Nobody could sign in yet: the first visitor is offered the admin.
        raise web.HTTPSeeOther(request.app.router["setup"].url_for())
    return _login_page(request, _next_path(request.query.get("next")))


async def login(request: web.Request) -> web.StreamResponse:
    rules = require_accounts(request)
    form = await request.post()
    next_path = _next_path(form.get("next"))
    try:
        name = validate_user_name(form.get("name"))
        user = await rules.check_password(name, str(form.get("password", "")),
                                          client_address(request))
    except FORM_ERRORS as exc:
        if not wants_html(request):
            raise
        # The form again, saying what went wrong, with what was typed.
        return _login_page(request, next_path, error=exc, name=form.get("name", ""))
    return await _signed_in(request, user, next_path)


async def logout(request: web.Request) -> web.StreamResponse:
    session = request.get(session_key)
    if session is not None:
        await request.app[auth_key].end_session(session)
    response = _see_other(request, request.app.router["index"].url_for())
    clear_session_cookie(request, response)
    return response


async def setup_form(request: web.Request) -> web.StreamResponse:
    await _require_setup(request)
    return render(request, "setup.html", {})


async def setup(request: web.Request) -> web.StreamResponse:
    """The first admin, by someone who can read the server's console."""
    rules = request.app[auth_key]
    expected = await _require_setup(request)
    form = await request.post()
    if not secrets.compare_digest(str(form.get("code", "")).strip(), expected):
        raise Unauthorized("that is not the setup code; the server printed it when it started")
    user = User(validate_user_name(form.get("name")), "admin")
    await rules.add_user(user, str(form.get("password", "")))
    return await _signed_in(request, user, "/")


async def account(request: web.Request) -> web.StreamResponse:
    rules = request.app[auth_key]
    sign_in_first(request)
    user = auth.require_signed_in(rules, request[user_key])
    if wants_html(request):
        return await _account_page(request, user)
    tokens = await rules.accounts.tokens(user.name)
    return web.json_response({"name": user.name, "role": user.role,
                              "tokens": [token.public() for token in tokens]})


async def create_token(request: web.Request) -> web.StreamResponse:
    """Only a browser session that gives the password again: a stolen token
    must not mint others to outlive its revocation or a new password."""
    rules = request.app[auth_key]
    user = auth.require_signed_in(rules, request[user_key])
    if request.get(token_key) is not None:
        raise Forbidden("an API token cannot create tokens: create them on /account, signed "
                        "in with your password, or on the server with "
                        "`python -m audioserver token create NAME`")
    form = await request.post()
    fields = {**form, **request.query}  # the label and expiry may come in the URL
    try:
        label = auth.token_label(str(fields.get("label", "")))
        lifetime = auth.parse_token_lifetime(str(fields.get("expires", "")))
        await _confirm_password(request, user, form.get("password"))
        secret, token = await rules.create_token(user, label, lifetime)
    except FORM_ERRORS as exc:
        if not wants_html(request):
            raise
        # The form again, with what was chosen (never the password).
        return await _account_page(request, user, error=exc, form=fields)
    if wants_html(request):
        # Shown on this page and never again; it must not go into a URL.
        return await _account_page(request, user, new_token=secret, status=201)
    return web.json_response({**token.public(), "token": secret}, status=201)


async def revoke_token(request: web.Request) -> web.StreamResponse:
    """DELETE /tokens?id=N, or POST /tokens/revoke with the form field id.
    A session revokes any of the account's tokens; a token only itself."""
    rules = request.app[auth_key]
    user = auth.require_signed_in(rules, request[user_key])
    raw = request.query.get("id") or (await request.post()).get("id")
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        raise BadRequest("say which token to revoke by its id: /tokens?id=N (GET /account lists them)")
    signed_by = request.get(token_key)
    if signed_by is not None and signed_by.id != int(raw):
        raise Forbidden("an API token may revoke only itself; revoke other tokens on "
                        "/account, signed in", id=int(raw))
    await rules.accounts.remove_token(user.name, int(raw))
    if wants_html(request):
        return _see_other(request, request.app.router["account"].url_for())
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.StreamResponse:
    """One's own new password, given the current one: every other session
    ends (this one gets a fresh id), and with revoke_tokens every API token,
    as `user passwd --revoke-tokens` does."""
    rules = request.app[auth_key]
    user = auth.require_signed_in(rules, request[user_key])
    form = await request.post()
    revoke = str(form.get("revoke_tokens", "")).lower() in TRUE_WORDS
    try:
        new = str(form.get("password", ""))
        if new != str(form.get("again", new)):
            raise BadRequest("the two new passwords differ; type the same one twice")
        password_hash = await rules.hash_password(new)
        await _confirm_password(request, user, form.get("current_password"),
                                "changing your password", "current_password")
    except FORM_ERRORS as exc:
        if not wants_html(request):
            raise
        return await _account_page(request, user, password_error=exc)
    await rules.accounts.set_password(user.name, password_hash, revoke_tokens=revoke)
    if wants_html(request):
        response = await _account_page(request, user,
                                       password_changed="revoked" if revoke else "kept")
    else:
        response = web.Response(status=204)
    if request.get(session_key) is not None:
        # set_password ended every session, this one too: this browser
        # stays signed in with a new one.
        secret, _ = await rules.start_session(user)
        set_session_cookie(request, response, secret)
    return response


def sign_in_first(request: web.Request) -> None:
    """A browser nobody is signed in to goes to the sign-in page, and comes
    back here after; curl gets the 401."""
    if request[user_key] is None and not request.app[auth_key].open and wants_html(request):
        login = request.app.router["login"].url_for().with_query(next=request.path)
        raise web.HTTPSeeOther(login)


async def _signed_in(request: web.Request, user: User, next_path: str) -> web.StreamResponse:
    """Sign `user` in with a new session: a fresh id on every sign-in, so an id
    planted in the browser beforehand is worth nothing."""
    rules = request.app[auth_key]
    old = request.get(session_key)
    if old is not None:
        await rules.end_session(old)
    secret, _ = await rules.start_session(user)
    if wants_html(request):
        response = _see_other(request, next_path)
    else:
        response = web.json_response({"name": user.name, "role": user.role})
    set_session_cookie(request, response, secret)
    return response


async def _confirm_password(request: web.Request, user: User, password,
                            doing: str = "creating a token", field: str = "password") -> None:
    """The account's current password, checked like a sign-in: a wrong one
    counts towards the lockout."""
    if not isinstance(password, str) or not password:
        raise BadRequest(f"{doing} asks for your current password again: send it "
                         f"in the form field '{field}'")
    try:
        await request.app[auth_key].check_password(user.name, password, client_address(request))
    except Unauthorized:
        raise Unauthorized(f"that is not your current password; {doing} asks "
                           "for it again") from None


async def _account_page(request: web.Request, user: User, status: int = 200, error=None,
                        new_token: str | None = None, form=None, password_error=None,
                        password_changed: str | None = None) -> web.Response:
    """`error` belongs to the token form, `password_error` to the password
    form; `password_changed` says what became of the tokens: "revoked", "kept"."""
    tokens = await request.app[auth_key].accounts.tokens(user.name)
    form = form or {}
    context = {"tokens": tokens, "new_token": new_token, "error": error,
               "now": now_rfc3339(), "label": str(form.get("label", "")),
               "expires": str(form.get("expires", "")), "password_error": password_error,
               "password_changed": password_changed}
    error = error or password_error
    status = int(error.status) if error is not None else status
    response = render(request, "account.html", context, status=status)
    response.headers.update(error.headers if error is not None else {})
    return response


def _login_page(request: web.Request, next_path: str, error=None, name="") -> web.Response:
    context = {"next": next_path, "error": error, "name": name}
    status = int(error.status) if error is not None else 200
    response = render(request, "login.html", context, status=status)
    response.headers.update(error.headers if error is not None else {})
    return response


def _next_path(raw) -> str:
    """Where to go after signing in: a path on this server, never another
    site, and fit for a Location header; home for anything else.

    `raw` is already decoded (from the form or the query string). A browser
    reading a Location drops tabs and newlines and takes a backslash for a
    slash, so `/<TAB>/evil.example` is `//evil.example`; control characters
    would also break the header. Percent-escapes left in `raw` are inert:
    a browser keeps them in the path."""
    if not isinstance(raw, str) or not raw.startswith("/") or raw.startswith("//"):
        return "/"
    if "\\" in raw or any(_unfit_for_a_path(char) for char in raw):
        return "/"
    # Letters beyond ASCII stay what they were, escaped as a URL carries them.
    path = urllib.parse.quote(raw, safe=PRINTABLE_ASCII)
    parts = urllib.parse.urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


def _unfit_for_a_path(char: str) -> bool:
    """Whitespace, controls, and invisible formatting (Unicode's C and Z categories)."""
    return char.isspace() or unicodedata.category(char)[0] in "CZ"


def _see_other(request: web.Request, location) -> web.Response:
    if wants_html(request):
        return web.Response(status=303, headers={"Location": str(location)})
    return web.Response(status=204)


def require_accounts(request: web.Request) -> auth.Auth:
    rules = request.app[auth_key]
    if rules.open:
        raise NotFound("this server has no accounts (it runs with --auth open): "
                       "there is nothing to sign in to")
    return rules


async def _require_setup(request: web.Request) -> str:
    """The setup code, while the server still has no account."""
    rules = require_accounts(request)
    if not await rules.setup_pending():
        raise NotFound("this server is set up: sign in at /login")
    return rules.config.setup_code
