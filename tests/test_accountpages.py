"""Accounts managed in the browser: the admins' /users page (create, remove,
reset a password) and changing one's own password on /account; through
HTTP against a real database (both backends)."""

import html
import re
from dataclasses import replace

import aiohttp
import pytest

import audiofiles
from audioserver.accounts import User
from audioserver.auth import SESSION_COOKIE
from audioserver.config import Config
from audioserver.web.app import create_app
from audioserver.web.keys import auth_key

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new password"
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html"}


@pytest.fixture
def config(config) -> Config:
    return replace(config, auth="users")


@pytest.fixture
async def client(aiohttp_client, config):
    # No cookie jar: each request says which session it carries.
    return await aiohttp_client(create_app(config), cookie_jar=aiohttp.DummyCookieJar())


@pytest.fixture
def account(client):
    """Make an account; return its API token as request headers."""
    async def make(name: str, role: str = "user") -> dict:
        rules = client.app[auth_key]
        user = User(name, role)
        await rules.add_user(user, PASSWORD)
        secret, _ = await rules.create_token(user, "tests")
        return {"Authorization": f"Bearer {secret}"}
    return make


async def sign_in(client, name: str, password: str = PASSWORD):
    return await client.post("/login", allow_redirects=False, headers=JSON,
                              data={"name": name, "password": password})


async def browser_session(client, name: str, password: str = PASSWORD) -> tuple[dict, str]:
    """Sign `name` in like a browser: the cookie header and the page's CSRF token."""
    response = await sign_in(client, name, password)
    assert response.status == 200, await response.text()
    cookie = {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE].value}"}
    return cookie, await csrf_of(client, cookie)


async def csrf_of(client, cookie: dict) -> str:
    page = await (await client.get("/", headers={**cookie, **BROWSER})).text()
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


async def signed_in(client, headers: dict) -> bool:
    response = await client.get("/account", headers={**JSON, **headers})
    assert response.status in (200, 401)
    return response.status == 200


async def user_names(client, admin: dict) -> list[str]:
    response = await client.get("/users", headers={**JSON, **admin})
    assert response.status == 200
    return [user["name"] for user in await response.json()]


# The admins' page


async def test_an_admin_lists_every_account_with_its_role_and_files(client, account):
    root = await account("root", "admin")
    alice = await account("alice")
    await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav(), headers=alice)
    response = await client.get("/users", headers={**JSON, **root})
    users = {user["name"]: user for user in await response.json()}
    assert users["alice"]["role"] == "user" and users["alice"]["files"] == 1
    assert users["root"]["role"] == "admin" and users["root"]["files"] == 0
    assert users["alice"]["created_at"].endswith("Z")
    page = await (await client.get("/users", headers={**BROWSER, **root})).text()
    assert "<h1>Accounts</h1>" in page
    assert re.search(r"alice</td>\s*<td>user</td>", page)


async def test_an_admin_creates_an_account_who_can_then_sign_in(client, account):
    root = await account("root", "admin")
    made = await client.post("/users", headers={**JSON, **root},
                             data={"name": "carol", "password": PASSWORD, "role": "admin"})
    assert made.status == 201
    assert await made.json() == {"name": "carol", "role": "admin"}
    assert (await sign_in(client, "carol")).status == 200
    again = await client.post("/users", headers={**JSON, **root},
                              data={"name": "carol", "password": PASSWORD})
    assert again.status == 409
    assert "already an account called 'carol'" in (await again.json())["detail"]


async def test_the_create_form_comes_back_with_what_went_wrong(client, account):
    await account("root", "admin")
    cookie, csrf = await browser_session(client, "root")
    for fields, says in [({"name": "dave", "password": "short"}, "8 to 1024 characters"),
                         ({"name": "no spaces", "password": PASSWORD}, "is not an account name"),
                         ({"name": "dave", "password": PASSWORD, "role": "god"},
                          "'god' is not a role")]:
        response = await client.post("/users", headers={**BROWSER, **cookie},
                                     data={**fields, "csrf_token": csrf}, allow_redirects=False)
        assert response.status == 400
        page = html.unescape(await response.text())
        assert says in page and 'role="alert"' in page
        assert 'value="dave"' in page or fields["name"] != "dave"
    created = await client.post("/users", headers={**BROWSER, **cookie}, allow_redirects=False,
                                data={"name": "dave", "password": PASSWORD, "csrf_token": csrf})
    assert created.status == 303 and created.headers["Location"] == "/users"
    assert (await sign_in(client, "dave")).status == 200


async def test_an_admin_removes_an_account_whose_files_stay_ownerless(client, account):
    root = await account("root", "admin")
    bob = await account("bob")
    await client.put("/upload", params={"name": "b.wav"}, data=audiofiles.wav(), headers=bob)
    cookie, csrf = await browser_session(client, "root")
    bob_cookie, _ = await browser_session(client, "bob")
    removed = await client.post("/users/remove", headers={**BROWSER, **cookie},
                                data={"name": "bob", "csrf_token": csrf}, allow_redirects=False)
    assert removed.status == 303 and removed.headers["Location"] == "/users"
    assert not await signed_in(client, bob) and not await signed_in(client, bob_cookie)
    assert await user_names(client, root) == ["root"]
    info = await client.get("/info", params={"name": "b.wav"}, headers={**JSON, **root})
    assert (await info.json())["owner"] is None
    missing = await client.delete("/users", params={"name": "bob"}, headers=root)
    assert missing.status == 404


async def test_the_json_twin_removes_with_delete(client, account):
    root = await account("root", "admin")
    await account("bob")
    assert (await client.delete("/users", params={"name": "bob"}, headers=root)).status == 204
    assert await user_names(client, root) == ["root"]


async def test_an_admin_may_not_remove_their_own_account(client, account):
    root = await account("root", "admin")
    refused = await client.delete("/users", params={"name": "root"}, headers=root)
    assert refused.status == 403
    assert "your own account" in (await refused.json())["detail"]
    assert await user_names(client, root) == ["root"]


@pytest.mark.parametrize("revoke, token_works", [(False, True), (True, False)])
async def test_an_admin_resets_a_password_and_signs_the_account_out(client, account, revoke,
                                                                     token_works):
    root = await account("root", "admin")
    bob = await account("bob")
    bob_cookie, _ = await browser_session(client, "bob")
    fields = {"name": "bob", "password": NEW_PASSWORD} | ({"revoke_tokens": "on"} if revoke else {})
    reset = await client.post("/users/password", headers={**JSON, **root}, data=fields)
    assert reset.status == 204
    assert not await signed_in(client, bob_cookie)
    assert await signed_in(client, bob) is token_works
    assert (await sign_in(client, "bob")).status == 401
    assert (await sign_in(client, "bob", NEW_PASSWORD)).status == 200


async def test_the_page_says_the_password_was_reset(client, account):
    await account("root", "admin")
    await account("bob")
    cookie, csrf = await browser_session(client, "root")
    reset = await client.post("/users/password", headers={**BROWSER, **cookie},
                              allow_redirects=False,
                              data={"name": "bob", "password": "short", "csrf_token": csrf})
    assert reset.status == 400
    assert "8 to 1024 characters" in await reset.text()
    assert (await sign_in(client, "bob")).status == 200


@pytest.mark.parametrize("method, path, data", [
    ("GET", "/users", None),
    ("POST", "/users", {"name": "eve", "password": PASSWORD, "role": "admin"}),
    ("DELETE", "/users?name=root", None),
    ("POST", "/users/remove", {"name": "root"}),
    ("POST", "/users/password", {"name": "root", "password": NEW_PASSWORD}),
])
async def test_only_admins_manage_accounts(client, account, method, path, data):
    root = await account("root", "admin")
    alice = await account("alice")
    refused = await client.request(method, path, data=data, headers={**JSON, **alice})
    assert refused.status == 403
    assert "admins" in (await refused.json())["detail"]
    nobody = await client.request(method, path, data=data, headers=JSON)
    assert nobody.status == 401
    assert sorted(await user_names(client, root)) == ["alice", "root"]
    assert (await sign_in(client, "root")).status == 200


async def test_a_user_sees_a_403_page_and_no_link_to_it(client, account):
    await account("alice")
    cookie, _ = await browser_session(client, "alice")
    response = await client.get("/users", headers={**BROWSER, **cookie})
    assert response.status == 403 and response.content_type == "text/html"
    assert "only admins" in await response.text()
    home = await (await client.get("/", headers={**BROWSER, **cookie})).text()
    assert 'href="/users"' not in home


async def test_an_admin_has_a_link_to_it(client, account):
    await account("root", "admin")
    cookie, _ = await browser_session(client, "root")
    home = await (await client.get("/", headers={**BROWSER, **cookie})).text()
    assert 'href="/users"' in home


async def test_the_forms_need_the_csrf_token(client, account):
    await account("root", "admin")
    await account("bob")
    cookie, csrf = await browser_session(client, "root")
    for path, data in [("/users", {"name": "eve", "password": PASSWORD}),
                       ("/users/remove", {"name": "bob"}),
                       ("/users/password", {"name": "bob", "password": NEW_PASSWORD})]:
        forged = await client.post(path, data=data, headers={**JSON, **cookie})
        assert forged.status == 403, path
    assert (await sign_in(client, "bob")).status == 200
    assert (await sign_in(client, "eve")).status == 401


async def test_a_signed_out_browser_is_sent_to_sign_in(client, account):
    await account("root", "admin")
    for path in ["/users", "/account"]:
        response = await client.get(path, headers=BROWSER, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"] == f"/login?next={path}"
        assert (await client.get(path, headers=JSON)).status == 401


async def test_open_mode_has_no_accounts_to_manage(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, auth="open")))
    response = await client.get("/users", headers=JSON)
    assert response.status == 404
    assert "--auth open" in (await response.json())["detail"]
    assert (await client.post("/users", data={"name": "x", "password": PASSWORD})).status == 404


# Changing one's own password


@pytest.mark.parametrize("revoke, token_works", [(False, True), (True, False)])
async def test_a_new_password_signs_out_the_other_sessions_only(client, account, revoke,
                                                                 token_works):
    alice = await account("alice")
    here, csrf = await browser_session(client, "alice")
    elsewhere, _ = await browser_session(client, "alice")
    fields = {"current_password": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD,
              "csrf_token": csrf} | ({"revoke_tokens": "on"} if revoke else {})
    changed = await client.post("/account/password", headers={**BROWSER, **here}, data=fields,
                                allow_redirects=False)
    assert changed.status == 200
    assert "Your password is changed" in await changed.text()
    assert not await signed_in(client, elsewhere)
    # This browser stays signed in, with a new session id.
    fresh = {"Cookie": f"{SESSION_COOKIE}={changed.cookies[SESSION_COOKIE].value}"}
    assert fresh != here and await signed_in(client, fresh)
    assert not await signed_in(client, here)
    assert await signed_in(client, alice) is token_works
    assert (await sign_in(client, "alice", NEW_PASSWORD)).status == 200


async def test_a_new_password_needs_the_current_one(client, account):
    await account("alice")
    here, csrf = await browser_session(client, "alice")
    elsewhere, _ = await browser_session(client, "alice")
    for fields, status, says in [
        ({"current_password": "not it", "password": NEW_PASSWORD, "again": NEW_PASSWORD},
         401, "not your current password"),
        ({"current_password": PASSWORD, "password": NEW_PASSWORD, "again": "typo"},
         400, "the two new passwords differ"),
        ({"current_password": PASSWORD, "password": "short", "again": "short"},
         400, "8 to 1024 characters"),
    ]:
        response = await client.post("/account/password", headers={**BROWSER, **here},
                                     data={**fields, "csrf_token": csrf})
        assert response.status == status
        page = html.unescape(await response.text())
        assert says in page and 'role="alert"' in page
        assert PASSWORD not in page and NEW_PASSWORD not in page
    assert await signed_in(client, here) and await signed_in(client, elsewhere)
    assert (await sign_in(client, "alice")).status == 200


async def test_a_token_changes_the_password_only_with_the_current_one(client, account):
    alice = await account("alice")
    fields = {"current_password": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD}
    changed = await client.post("/account/password", headers={**JSON, **alice}, data=fields)
    assert changed.status == 204
    assert (await sign_in(client, "alice", NEW_PASSWORD)).status == 200


# The menu


@pytest.mark.parametrize("path", ["/", "/list", "/account"])
async def test_upload_and_delete_are_offered_only_to_who_may_use_them(client, account, path):
    await account("alice")
    cookie, _ = await browser_session(client, "alice")
    for page in ["/", "/list"]:
        signed_out = await (await client.get(page, headers=BROWSER)).text()
        assert 'href="/upload"' not in signed_out and 'href="/delete"' not in signed_out
    signed_in = await (await client.get(path, headers={**BROWSER, **cookie})).text()
    assert 'href="/upload"' in signed_in and 'href="/delete"' in signed_in


async def test_open_mode_offers_upload_and_delete_to_everyone(aiohttp_client, config):
    client = await aiohttp_client(create_app(replace(config, auth="open")))
    home = await (await client.get("/", headers=BROWSER)).text()
    assert 'href="/upload"' in home and 'href="/delete"' in home
