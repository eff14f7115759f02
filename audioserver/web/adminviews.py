"""The admins' page of accounts: list, create, remove, and reset a password.
The same rules as `python -m audioserver user …`; the command line stays."""

from aiohttp import web

from .. import auth
from ..accounts import User, validate_user_name
from ..errors import BadRequest, Forbidden, UserExists
from .accountviews import require_accounts, sign_in_first
from .keys import auth_key, user_key
from .negotiation import wants_html
from .templating import render

# What the page shows again with a message, rather than an error page.
FORM_ERRORS = (BadRequest, UserExists)
TRUE_WORDS = ("1", "true", "yes", "on")


async def users(request: web.Request) -> web.StreamResponse:
    admin = await _require_admin(request)
    if wants_html(request):
        return await _users_page(request, admin)
    return web.json_response([
        {"name": user.name, "role": user.role, "created_at": created_at, "files": files}
        for user, created_at, files in await request.app[auth_key].accounts.users()])


async def create_user(request: web.Request) -> web.StreamResponse:
    admin = await _require_admin(request)
    form = await request.post()
    try:
        user = User(validate_user_name(form.get("name")), auth.parse_role(form.get("role")))
        await request.app[auth_key].add_user(user, str(form.get("password", "")))
    except FORM_ERRORS as exc:
        if not wants_html(request):
            raise
        # The form again, with what was typed (never the password).
        return await _users_page(request, admin, error=exc,
                                 form={"name": form.get("name", ""), "role": form.get("role")})
    if wants_html(request):
        raise web.HTTPSeeOther(request.app.router["users"].url_for())
    return web.json_response({"name": user.name, "role": user.role}, status=201)


async def remove_user(request: web.Request) -> web.StreamResponse:
    """DELETE /users?name=NAME, or POST /users/remove with the form field name."""
    admin = await _require_admin(request)
    name = request.query.get("name") or (await request.post()).get("name")
    name = validate_user_name(name if isinstance(name, str) else None)
    if name == admin.name:
        # Otherwise the last admin could lock everyone out of these pages.
        raise Forbidden("you cannot remove your own account while signed in to it; another "
                        "admin can, or `python -m audioserver user remove NAME`", user=name)
    await request.app[auth_key].accounts.remove_user(name)
    if wants_html(request):
        raise web.HTTPSeeOther(request.app.router["users"].url_for())
    return web.Response(status=204)


async def reset_password(request: web.Request) -> web.StreamResponse:
    """A new password for an account: its sessions end, and with
    revoke_tokens its API tokens too, as `user passwd --revoke-tokens`."""
    admin = await _require_admin(request)
    form = await request.post()
    name = validate_user_name(form.get("name"))
    revoke = str(form.get("revoke_tokens", "")).lower() in TRUE_WORDS
    rules = request.app[auth_key]
    try:
        password_hash = await rules.hash_password(str(form.get("password", "")))
    except BadRequest as exc:
        if not wants_html(request):
            raise
        return await _users_page(request, admin, error=exc)
    await rules.accounts.set_password(name, password_hash, revoke_tokens=revoke)
    if wants_html(request):
        done = (f"New password for {name}: signed out everywhere"
                + (", and every API token revoked." if revoke else "; API tokens still work."))
        return await _users_page(request, admin, notice=done)
    return web.Response(status=204)


async def _require_admin(request: web.Request) -> User:
    rules = require_accounts(request)
    sign_in_first(request)
    return auth.require_admin(rules, request[user_key])


async def _users_page(request: web.Request, admin: User, error=None, notice=None,
                      form=None) -> web.Response:
    accounts = await request.app[auth_key].accounts.users()
    context = {"account_rows": accounts, "error": error, "notice": notice, "form": form or {},
               "admin": admin}
    status = int(error.status) if error is not None else 200
    return render(request, "users.html", context, status=status)
