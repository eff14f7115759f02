"""Accounts (--auth users): sign-in, sessions, API tokens, owners, private
files and CSRF, through HTTP against a real SQLite file."""

import hashlib
import re
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

import audiofiles
from audioserver.accounts import User
from audioserver.auth import SESSION_COOKIE
from audioserver.clock import now_rfc3339
from audioserver.config import Config
from audioserver.metadata.sqlite import MIGRATIONS
from audioserver.web.app import create_app
from audioserver.web.keys import auth_key
from serverprocess import command

PASSWORD = "correct horse battery"
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html"}


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    """What this module tests does not depend on where the files are: each
    metadata store and each storage once (SQLite+disk, PostgreSQL+S3)."""
    return request.param


@pytest.fixture
def config(config) -> Config:
    return replace(config, auth="users")


@pytest.fixture
async def client(aiohttp_client, config):
    # No cookie jar: each test says which session a request carries.
    return await aiohttp_client(create_app(config), cookie_jar=aiohttp.DummyCookieJar())


@pytest.fixture
def rules(client):
    return client.app[auth_key]


@pytest.fixture
def account(rules, client):
    """Make an account; return its API token as request headers."""
    async def make(name: str, role: str = "user") -> dict:
        user = User(name, role)
        await rules.add_user(user, PASSWORD)
        secret, _ = await rules.create_token(user, "tests")
        return {"Authorization": f"Bearer {secret}"}
    return make


async def sign_in(client, name: str, password: str = PASSWORD, csrf: str = "", **headers):
    return await client.post("/login", allow_redirects=False, headers={**JSON, **headers},
                             data={"name": name, "password": password, "csrf_token": csrf})


def session_of(response) -> str:
    return response.cookies[SESSION_COOKIE].value


async def browser_session(client, name: str) -> tuple[dict, str]:
    """Sign `name` in like a browser: the cookie header and the page's CSRF token."""
    response = await sign_in(client, name)
    assert response.status == 200, await response.text()
    cookie = {"Cookie": f"{SESSION_COOKIE}={session_of(response)}"}
    page = await (await client.get("/", headers={**cookie, **BROWSER})).text()
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    return cookie, csrf


async def put(client, name: str, headers: dict, visibility: str | None = None):
    params = {"name": name} | ({"visibility": visibility} if visibility else {})
    return await client.put("/upload", params=params, data=audiofiles.wav(),
                            headers={**JSON, **headers})


async def names_listed(client, headers: dict, **params) -> list[str]:
    response = await client.get("/list", params=params, headers=headers)
    assert response.status == 200
    return [item["name"] for item in await response.json()]


# Signing in


async def test_sign_in_gives_a_session_cookie_that_signs_requests_in(client, account):
    await account("alice")
    response = await sign_in(client, "alice")
    assert response.status == 200
    assert await response.json() == {"name": "alice", "role": "user"}
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    account_page = await client.get("/account", headers={
        **JSON, "Cookie": f"{SESSION_COOKIE}={cookie.value}"})
    assert (await account_page.json())["name"] == "alice"


async def test_a_browser_signing_in_goes_where_it_was_going_but_not_off_site(client, account):
    await account("alice")
    for wanted, landed in [("/upload", "/upload"), ("//evil.example/", "/"),
                           ("https://evil.example/", "/")]:
        response = await client.post("/login", headers=BROWSER, allow_redirects=False,
                                     data={"name": "alice", "password": PASSWORD, "next": wanted})
        assert response.status == 303
        assert response.headers["Location"] == landed


# Each parses (tabs and newlines are dropped by a browser's URL parser, a
# backslash is a slash) or would break the header into another site.
OFF_SITE = ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\x0b/evil.example",
            "/\\evil.example", "\\/evil.example", "/ /evil.example", "/\x00/evil.example",
            "/\u2028/evil.example", "javascript:alert(1)", "https:evil.example", ""]


@pytest.mark.parametrize("wanted", OFF_SITE)
async def test_sign_in_never_sends_a_browser_off_site_however_next_is_spelled(client, account,
                                                                              wanted):
    await account("alice")
    response = await client.post("/login", headers=BROWSER, allow_redirects=False,
                                 data={"name": "alice", "password": PASSWORD, "next": wanted})
    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert SESSION_COOKIE in response.cookies


@pytest.mark.parametrize("wanted", OFF_SITE)
async def test_the_login_page_does_not_carry_an_off_site_next(client, account, wanted):
    await account("alice")
    page = await (await client.get("/login", params={"next": wanted}, headers=BROWSER)).text()
    assert '<input type="hidden" name="next" value="/">' in page


@pytest.mark.parametrize("wanted, landed", [
    ("/info?name=a%20b.wav", "/info?name=a%20b.wav"),
    ("/list?q=caf%C3%A9", "/list?q=caf%C3%A9"),
    # Not as sent, but where it pointed: on this server, in a header's characters.
    ("/info?name=café.wav", "/info?name=caf%C3%A9.wav"),
])
async def test_sign_in_keeps_a_next_on_this_server_as_it_was(client, account, wanted, landed):
    await account("alice")
    response = await client.post("/login", headers=BROWSER, allow_redirects=False,
                                 data={"name": "alice", "password": PASSWORD, "next": wanted})
    assert response.headers["Location"] == landed


async def test_wrong_password_and_unknown_account_get_the_same_answer(client, account):
    await account("alice")
    wrong_password = await sign_in(client, "alice", "not the password")
    unknown = await sign_in(client, "nobody", "not the password")
    assert wrong_password.status == unknown.status == 401
    assert wrong_password.content_type == "application/problem+json"
    assert await wrong_password.json() == await unknown.json()
    assert SESSION_COOKIE not in wrong_password.cookies


async def test_the_login_page_says_what_went_wrong_and_keeps_the_name(client, account):
    await account("alice")
    response = await client.post("/login", headers=BROWSER,
                                 data={"name": "alice", "password": "nope-nope"})
    assert response.status == 401
    page = await response.text()
    assert "wrong account name or password" in page
    assert 'value="alice"' in page


async def test_repeated_failures_for_one_account_must_wait(client, account, db_rows):
    await account("alice")
    for attempt in range(5):
        response = await sign_in(client, "alice", "wrong", **{"X-Attempt": str(attempt)})
        assert response.status == 401
    locked = await sign_in(client, "alice")  # even the right password waits
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) >= 1
    assert "try again in" in (await locked.json())["detail"]
    # Once the wait is over, the right password works and the count is cleared.
    db_rows("UPDATE login_failures SET last_failure = ?", (now_rfc3339(-10),))
    assert (await sign_in(client, "alice")).status == 200
    assert db_rows("SELECT * FROM login_failures WHERE key = 'user:alice'") == []


async def test_failures_are_forgotten_after_a_quiet_day(client, account, db_rows, config):
    await account("alice")
    assert (await sign_in(client, "nobody", "guess")).status == 401
    db_rows("UPDATE login_failures SET last_failure = ?", (now_rfc3339(-2 * 86400),))
    assert (await sign_in(client, "someone", "guess")).status == 401
    keys = {key for (key,) in db_rows("SELECT key FROM login_failures")}
    assert keys == {"user:someone", "address:127.0.0.1"}
    assert db_rows("SELECT failures FROM login_failures WHERE key = 'address:127.0.0.1'") == [(1,)]


async def test_failures_from_one_address_slow_down_every_account_tried_from_it(client, account):
    await account("alice")
    for name in ["bob", "carol", "dave", "erin", "frank"]:
        assert (await sign_in(client, name, "guess")).status == 401
    assert (await sign_in(client, "alice")).status == 429


async def test_sign_in_rotates_the_session_and_logout_ends_it(client, account, db_rows):
    await account("alice")
    cookie, csrf = await browser_session(client, "alice")
    first = cookie["Cookie"].partition("=")[2]
    assert (await sign_in(client, "alice", **cookie)).status == 403  # no CSRF token
    second = session_of(await sign_in(client, "alice", csrf=csrf, **cookie))
    assert second != first
    # The session that was planted or reused before the sign-in is over.
    assert (await client.get("/account", headers={**JSON, **cookie})).status == 401
    cookie2, csrf = {"Cookie": f"{SESSION_COOKIE}={second}"}, None
    page = await (await client.get("/", headers={**cookie2, **BROWSER})).text()
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    logout = await client.post("/logout", data={"csrf_token": csrf},
                               headers={**cookie2, **BROWSER}, allow_redirects=False)
    assert logout.status == 303
    assert logout.cookies[SESSION_COOKIE].value == ""
    # A copy of the cookie, stolen before the logout, signs nobody in.
    assert (await client.get("/account", headers={**JSON, **cookie2})).status == 401
    assert db_rows("SELECT count(*) FROM sessions") == [(0,)]


async def test_only_a_hash_of_the_session_is_stored(client, account, db_rows):
    await account("alice")
    secret = session_of(await sign_in(client, "alice"))
    (stored,) = db_rows("SELECT token_hash FROM sessions")
    assert stored == (hashlib.sha256(secret.encode()).hexdigest(),)


async def test_a_forwarded_proto_header_does_not_make_the_cookie_secure(account, client):
    await account("alice")
    response = await sign_in(client, "alice")
    assert not response.cookies[SESSION_COOKIE]["secure"]
    # X-Forwarded-Proto from just anyone must not switch it on, nor off.
    response = await sign_in(client, "alice", **{"X-Forwarded-Proto": "https"})
    assert not response.cookies[SESSION_COOKIE]["secure"]


async def test_the_cookie_is_secure_behind_a_trusted_https_proxy(aiohttp_client, config):
    app = create_app(replace(config, trusted_proxies=("127.0.0.1",)))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    await app[auth_key].add_user(User("alice", "user"), PASSWORD)
    response = await sign_in(client, "alice", **{"X-Forwarded-Proto": "https"})
    assert response.cookies[SESSION_COOKIE]["secure"]
    response = await sign_in(client, "alice", **{"X-Forwarded-Proto": "http"})
    assert not response.cookies[SESSION_COOKIE]["secure"]


@pytest.mark.parametrize("column, age_setting", [("last_seen", "session_idle"),
                                                  ("created", "session_lifetime")])
async def test_sessions_end_after_their_idle_and_absolute_lifetimes(
        client, account, config, db_rows, column, age_setting):
    await account("alice")
    cookie, _ = await browser_session(client, "alice")
    assert (await client.get("/account", headers={**JSON, **cookie})).status == 200
    too_old = getattr(config, age_setting) + 60
    db_rows(f"UPDATE sessions SET {column} = ?", (now_rfc3339(-too_old),))
    assert (await client.get("/account", headers={**JSON, **cookie})).status == 401


async def test_signing_in_sweeps_out_ended_sessions(client, account, config, db_rows):
    await account("alice")
    await browser_session(client, "alice")
    db_rows("UPDATE sessions SET last_seen = ?", (now_rfc3339(-config.session_idle - 60),))
    await browser_session(client, "alice")
    assert db_rows("SELECT count(*) FROM sessions") == [(1,)]


async def test_sessions_survive_a_restart(aiohttp_client, client, account, config):
    await account("alice")
    cookie, _ = await browser_session(client, "alice")
    await client.close()
    restarted = await aiohttp_client(create_app(config), cookie_jar=aiohttp.DummyCookieJar())
    response = await restarted.get("/account", headers={**JSON, **cookie})
    assert response.status == 200
    assert (await response.json())["name"] == "alice"


# API tokens


async def new_token(client, name: str, password: str = PASSWORD, **fields):
    """POST /tokens from `name`'s browser session, with the password."""
    cookie, csrf = await browser_session(client, name)
    return await client.post("/tokens", headers={**JSON, **cookie},
                             data={"label": "laptop", "password": password,
                                   "csrf_token": csrf, **fields})


async def test_tokens_are_shown_once_stored_as_hashes_and_can_be_revoked(client, account,
                                                                        db_rows):
    await account("alice")
    created = await new_token(client, "alice")
    assert created.status == 201
    token = await created.json()
    assert token["token"].startswith("as_") and token["label"] == "laptop"
    assert token["expires_at"] is None
    assert db_rows("SELECT count(*) FROM api_tokens WHERE token_hash = ?",
                   (hashlib.sha256(token["token"].encode()).hexdigest(),)) == [(1,)]
    assert db_rows("SELECT count(*) FROM api_tokens WHERE token_hash = ?",
                   (token["token"],)) == [(0,)]
    laptop = {"Authorization": f"Bearer {token['token']}"}
    listed = await (await client.get("/account", headers={**JSON, **laptop})).json()
    # The list says which tokens exist, never what they are.
    assert all(set(t) == {"id", "label", "created_at", "last_used_at", "expires_at"}
               for t in listed["tokens"])
    assert {t["label"] for t in listed["tokens"]} == {"tests", "laptop"}
    # A token revokes itself; a session revokes any of the account's.
    revoked = await client.delete("/tokens", params={"id": token["id"]}, headers=laptop)
    assert revoked.status == 204
    refused = await client.get("/account", headers={**JSON, **laptop})
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_cannot_create_tokens(client, account, db_rows):
    alice = await account("alice")
    for fields in [{"label": "x"}, {"label": "x", "password": PASSWORD}]:
        refused = await client.post("/tokens", data=fields, headers={**JSON, **alice})
        assert refused.status == 403
        assert "/account" in (await refused.json())["detail"]
        assert "token create" in (await refused.json())["detail"]
    assert db_rows("SELECT label FROM api_tokens") == [("tests",)]


async def test_creating_a_token_needs_the_current_password(client, account, db_rows):
    await account("alice")
    missing = await new_token(client, "alice", password="")
    assert missing.status == 400
    assert "current password" in (await missing.json())["detail"]
    wrong = await new_token(client, "alice", password="not the password")
    assert wrong.status == 401
    assert "password" in (await wrong.json())["detail"]
    # A wrong password here is a failed sign-in: it counts towards the lockout.
    assert db_rows("SELECT failures FROM login_failures WHERE key = 'user:alice'") == [(1,)]
    # Never from the query string, where it would be logged.
    cookie, csrf = await browser_session(client, "alice")
    in_url = await client.post("/tokens", params={"password": PASSWORD}, headers={
        **JSON, **cookie}, data={"label": "x", "csrf_token": csrf})
    assert in_url.status == 400
    assert db_rows("SELECT label FROM api_tokens") == [("tests",)]
    assert (await new_token(client, "alice")).status == 201


async def test_the_account_page_asks_again_for_a_wrong_password(client, account):
    await account("alice")
    cookie, csrf = await browser_session(client, "alice")
    page = await client.post("/tokens", headers={**BROWSER, **cookie}, data={
        "label": "x", "password": "not the password", "csrf_token": csrf})
    assert page.status == 401 and page.content_type == "text/html"
    text = await page.text()
    assert 'role="alert"' in text and 'name="password"' in text and "as_" not in text


async def test_a_token_may_revoke_itself_but_no_other(client, account, db_rows):
    alice = await account("alice")
    other = await (await new_token(client, "alice")).json()
    (own,) = db_rows("SELECT id FROM api_tokens WHERE label = 'tests'")
    for method, path, where in [("DELETE", "/tokens", "params"),
                                ("POST", "/tokens/revoke", "data")]:
        refused = await client.request(method, path, headers={**JSON, **alice},
                                       **{where: {"id": other["id"]}})
        assert refused.status == 403
        assert "/account" in (await refused.json())["detail"]
    assert db_rows("SELECT count(*) FROM api_tokens") == [(2,)]
    laptop = {"Authorization": f"Bearer {other['token']}"}
    assert (await client.get("/account", headers={**JSON, **laptop})).status == 200
    revoked = await client.post("/tokens/revoke", data={"id": own[0]}, headers={**JSON, **alice})
    assert revoked.status == 204
    assert (await client.get("/account", headers={**JSON, **alice})).status == 401


async def test_tokens_may_expire(client, account, db_rows):
    await account("alice")
    created = await new_token(client, "alice", expires="30d")
    assert created.status == 201
    token = await created.json()
    expires = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - datetime.now(timezone.utc) - timedelta(days=30)) < timedelta(hours=1)
    laptop = {"Authorization": f"Bearer {token['token']}"}
    assert (await client.get("/account", headers={**JSON, **laptop})).status == 200
    # The expiry passes (the clock cannot be waited for: the row says so).
    db_rows("UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?",
            (token["id"],))
    refused = await client.get("/account", headers={**JSON, **laptop})
    assert refused.status == 401
    assert "expired" in (await refused.json())["detail"]
    for wrong in ["soon", "0d", "-1d", "99999d"]:
        response = await new_token(client, "alice", expires=wrong)
        assert response.status == 400, wrong
        assert "expires" in (await response.json())["detail"]


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's own migrations
async def test_tokens_made_before_expiry_existed_last_until_revoked(aiohttp_client, config):
    """A database from before the expiry migration: its tokens keep working."""
    (config.data_dir / "audio").mkdir(parents=True)
    with sqlite3.connect(config.db_path) as conn:
        for script in MIGRATIONS[:2]:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
        conn.execute("PRAGMA user_version=2")
        conn.execute("INSERT INTO users VALUES ('alice', 'x', 'user', '2026-01-01T00:00:00Z')")
        conn.execute("INSERT INTO api_tokens (user_name, label, token_hash, created_at)"
                     " VALUES ('alice', 'old', ?, '2026-01-01T00:00:00Z')",
                     (hashlib.sha256(b"as_old").hexdigest(),))
    client = await aiohttp_client(create_app(config))
    response = await client.get("/account", headers={**JSON, "Authorization": "Bearer as_old"})
    assert response.status == 200
    assert [t["expires_at"] for t in (await response.json())["tokens"]] == [None]


async def test_the_account_page_shows_each_tokens_use_and_expiry(client, account):
    alice = await account("alice")
    await client.get("/account", headers={**JSON, **alice})  # "tests" is used
    assert (await new_token(client, "alice", label="laptop", expires="7d")).status == 201
    cookie, _ = await browser_session(client, "alice")
    page = await (await client.get("/account", headers={**BROWSER, **cookie})).text()
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    tests_row = next(row for row in rows if "tests" in row)
    laptop_row = next(row for row in rows if "laptop" in row)
    assert tests_row.count("<time") == 2 and "never" in tests_row  # created, used; no expiry
    assert laptop_row.count("<time") == 2 and "never" in laptop_row  # created, expires; unused
    assert 'name="expires"' in page and 'name="password"' in page


@pytest.mark.parametrize("header", ["Bearer as_not-a-real-token", "Basic YWxpY2U6cHc=", "Bearer "])
async def test_a_bad_authorization_header_is_a_401_that_says_what_to_send(client, header):
    response = await client.get("/list", headers={"Authorization": header})
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert "token" in (await response.json())["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_removing_an_account_ends_its_tokens_and_sessions_but_keeps_its_files(
        client, account, rules, db_rows):
    alice = await account("alice")
    cookie, _ = await browser_session(client, "alice")
    assert (await put(client, "a.wav", alice)).status == 201
    await rules.accounts.remove_user("alice")
    assert (await client.get("/account", headers={**JSON, **alice})).status == 401
    assert (await client.get("/account", headers={**JSON, **cookie})).status == 401
    info = await (await client.get("/info", params={"name": "a.wav"})).json()
    assert info["owner"] is None


# Who may do what


async def test_uploads_need_an_account(client, account, browser_headers):
    refused = await put(client, "a.wav", {})
    assert refused.status == 401
    assert "sign in" in (await refused.json())["detail"]
    page = await client.get("/upload", headers=browser_headers, allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == "/login?next=/upload"
    alice = await account("alice")
    created = await put(client, "a.wav", alice)
    assert created.status == 201
    assert (await created.json())["owner"] == "alice"
    assert (await created.json())["visibility"] == "public"


async def test_an_anonymous_upload_is_refused_before_its_body_is_sent(client):
    response = await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav(),
                                headers={"Expect": "100-continue"})
    assert response.status == 401


async def test_a_private_file_is_invisible_to_everyone_else(client, account):
    alice, bob = await account("alice"), await account("bob")
    assert (await put(client, "secret.wav", alice, "private")).status == 201
    assert (await put(client, "open.wav", alice, "public")).status == 201
    for someone in [bob, {}]:
        assert await names_listed(client, someone) == ["open.wav"]
        listing = await client.get("/list", headers=someone)
        assert listing.headers["X-Total-Count"] == "1"
        for path in ["/info", "/download", "/waveform"]:
            response = await client.get(path, params={"name": "secret.wav"}, headers=someone)
            assert response.status == 404, path
            assert "no audio called 'secret.wav'" in (await response.json())["detail"]
        home = await (await client.get("/", headers={**BROWSER, **someone})).text()
        assert re.search(r"\b1 file\b", home), home
    assert await names_listed(client, alice) == ["open.wav", "secret.wav"]
    assert (await client.get("/download", params={"name": "secret.wav"},
                             headers=alice)).status == 200


async def test_a_409_does_not_confirm_a_private_file_exists(client, account, db_rows):
    alice, bob = await account("alice"), await account("bob")
    admin = await account("root", "admin")
    assert (await put(client, "secret-plan.wav", alice, "private")).status == 201
    before = db_rows("SELECT * FROM audio")
    # One namespace for the whole library: bob cannot take the name, and is
    # told only that it cannot be used, by a raw upload or a form.
    several = aiohttp.FormData()
    several.add_field("file", audiofiles.wav(), filename="secret-plan.wav")
    for refused in [await put(client, "secret-plan.wav", bob),
                    await client.post("/upload", data=several, headers={**JSON, **bob})]:
        assert refused.status == 409
        problem = await refused.json()
        assert problem["detail"] == ("the name 'secret-plan.wav' is not available; "
                                     "choose another name")
        assert set(problem) == {"type", "title", "status", "detail", "name"}
    assert db_rows("SELECT * FROM audio") == before
    # Who can see the file (its /info answers) may be told it is taken.
    for who in [alice, admin]:
        refused = await put(client, "secret-plan.wav", who)
        assert refused.status == 409
        assert "'secret-plan.wav' is taken" in (await refused.json())["detail"]


async def test_only_the_owner_or_an_admin_may_delete(client, account):
    alice, bob, admin = await account("alice"), await account("bob"), await account("root", "admin")
    await put(client, "secret.wav", alice, "private")
    await put(client, "shared.wav", alice, "public")
    # Someone else's private file is not there for them; a public one is not theirs.
    gone = await client.delete("/delete", params={"name": "secret.wav"}, headers=bob)
    assert gone.status == 404
    forbidden = await client.delete("/delete", params={"name": "shared.wav"}, headers=bob)
    assert forbidden.status == 403
    assert "only the owner" in (await forbidden.json())["detail"]
    anonymous = await client.delete("/delete", params={"name": "shared.wav"})
    assert anonymous.status == 401
    assert await names_listed(client, admin) == ["secret.wav", "shared.wav"]
    assert (await client.delete("/delete", params={"name": "secret.wav"},
                                headers=admin)).status == 204
    assert (await client.delete("/delete", params={"name": "shared.wav"},
                                headers=alice)).status == 204
    assert await names_listed(client, admin) == []


async def test_the_owner_changes_visibility_and_nobody_else_does(client, account):
    alice, bob = await account("alice"), await account("bob")
    await put(client, "a.wav", alice, "public")
    refused = await client.post("/visibility", params={"name": "a.wav", "visibility": "private"},
                                headers=bob)
    assert refused.status == 403
    changed = await client.post("/visibility",
                                params={"name": "a.wav", "visibility": "private"}, headers=alice)
    assert changed.status == 200
    assert (await changed.json())["visibility"] == "private"
    assert await names_listed(client, bob) == []
    bad = await client.post("/visibility", params={"name": "a.wav", "visibility": "secret"},
                            headers=alice)
    assert bad.status == 400


async def test_owner_and_visibility_filters(client, account):
    alice, bob, admin = await account("alice"), await account("bob"), await account("root", "admin")
    await put(client, "a1.wav", alice, "public")
    await put(client, "a2.wav", alice, "private")
    await put(client, "b1.wav", bob, "private")
    assert await names_listed(client, admin, owner="alice") == ["a1.wav", "a2.wav"]
    assert await names_listed(client, admin, visibility="private") == ["a2.wav", "b1.wav"]
    assert await names_listed(client, alice, visibility="private") == ["a2.wav"]
    assert await names_listed(client, bob, owner="alice") == ["a1.wav"]
    bad = await client.get("/list", params={"visibility": "hidden"})
    assert bad.status == 400


async def test_the_default_visibility_is_configurable(aiohttp_client, config):
    app = create_app(replace(config, default_visibility="private"))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    user = User("alice", "user")
    await app[auth_key].add_user(user, PASSWORD)
    secret, _ = await app[auth_key].create_token(user, "t")
    created = await put(client, "a.wav", {"Authorization": f"Bearer {secret}"})
    assert (await created.json())["visibility"] == "private"


async def test_open_mode_has_no_accounts_and_no_private_files(aiohttp_client, tmp_path):
    app = create_app(Config(data_dir=tmp_path / "open", probe_workers=1, auth="open"))
    client = await aiohttp_client(app)
    assert (await client.get("/login")).status == 404
    private = await client.put("/upload", params={"name": "a.wav", "visibility": "private"},
                               data=audiofiles.wav())
    assert private.status == 400
    assert "--auth users" in (await private.json())["detail"]
    public = await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav())
    assert public.status == 201
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204


# CSRF


async def test_session_requests_need_the_csrf_token(client, account):
    await account("alice")
    cookie, csrf = await browser_session(client, "alice")
    with_cookie = {**cookie, **JSON}
    refused = await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav(),
                               headers=with_cookie)
    assert refused.status == 403
    assert "CSRF" in (await refused.json())["detail"]
    created = await client.put("/upload", params={"name": "a.wav"}, data=audiofiles.wav(),
                               headers={**with_cookie, "X-CSRF-Token": csrf})
    assert created.status == 201
    for method, path, data in [
        ("POST", "/visibility", {"name": "a.wav", "visibility": "private"}),
        ("POST", "/delete", {"name": "a.wav"}),
        ("POST", "/tokens", {"label": "x"}),
        ("POST", "/logout", {}),
    ]:
        forged = await client.request(method, path, data=data, headers=with_cookie)
        assert forged.status == 403, path
        wrong = await client.request(method, path, data={**data, "csrf_token": "guess"},
                                     headers=with_cookie)
        assert wrong.status == 403, path
    assert (await client.get("/info", params={"name": "a.wav"}, headers=with_cookie)).status == 200
    deleted = await client.post("/delete", data={"name": "a.wav", "csrf_token": csrf},
                                headers=with_cookie)
    assert deleted.status == 204


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
])
async def test_a_cross_site_request_with_a_session_is_refused_whatever_token_it_has(
        client, account, headers):
    alice = await account("alice")
    await put(client, "a.wav", alice)
    cookie, csrf = await browser_session(client, "alice")
    forged = await client.post("/visibility", headers={**JSON, **cookie, **headers},
                               data={"name": "a.wav", "visibility": "private",
                                     "csrf_token": csrf})
    assert forged.status == 403
    assert "another site" in (await forged.json())["detail"]
    info = await client.get("/info", params={"name": "a.wav"}, headers={**JSON, **alice})
    assert (await info.json())["visibility"] == "public"
    # The same request from the server's own page goes through.
    own_page = {"Origin": f"http://{client.host}:{client.port}", "Sec-Fetch-Site": "same-origin"}
    changed = await client.post("/visibility", headers={**JSON, **cookie, **own_page},
                                data={"name": "a.wav", "visibility": "private",
                                      "csrf_token": csrf})
    assert changed.status == 200


async def test_a_multipart_upload_carries_the_token_before_its_files(client, account):
    await account("alice")
    cookie, csrf = await browser_session(client, "alice")

    def form(token: str | None) -> aiohttp.FormData:
        data = aiohttp.FormData()
        if token is not None:
            data.add_field("csrf_token", token)
        data.add_field("visibility", "private")
        data.add_field("file", audiofiles.wav(), filename="a.wav")
        return data

    assert (await client.post("/upload", data=form(None), headers={**cookie, **JSON})).status == 403
    assert (await client.post("/upload", data=form("guess"),
                              headers={**cookie, **JSON})).status == 403
    created = await client.post("/upload", data=form(csrf), headers={**cookie, **JSON})
    assert created.status == 201
    assert (await created.json())["visibility"] == "private"


async def test_bearer_requests_need_no_csrf_token(client, account):
    alice = await account("alice")
    assert (await put(client, "a.wav", alice)).status == 201
    assert (await client.post("/delete", data={"name": "a.wav"}, headers=alice)).status == 204


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "https://evil.example"}, {"Origin": "null"}])
async def test_another_site_cannot_make_a_browser_sign_in(client, account, headers):
    await account("alice")
    response = await sign_in(client, "alice", **headers)
    assert response.status == 403
    assert SESSION_COOKIE not in response.cookies


async def test_a_same_site_form_may_sign_in(client, account):
    await account("alice")
    response = await sign_in(client, "alice", **{"Sec-Fetch-Site": "same-origin"})
    assert response.status == 200


async def test_behind_a_trusted_proxy_the_origin_is_compared_with_the_forwarded_host(
        aiohttp_client, config):
    app = create_app(replace(config, trusted_proxies=("127.0.0.1",),
                             allowed_hosts=("music.example",)))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    await app[auth_key].add_user(User("alice", "user"), PASSWORD)
    proxied = {"Host": "backend:8080", "X-Forwarded-Host": "music.example"}
    own = await sign_in(client, "alice", **proxied, Origin="https://music.example")
    assert own.status == 200
    other = await sign_in(client, "alice", **proxied, Origin="https://evil.example")
    assert other.status == 403


# Setting up the first admin


async def test_setup_creates_the_first_admin_with_the_code(aiohttp_client, config):
    app = create_app(replace(config, setup_code="abc123"))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    assert (await client.get("/setup", headers=BROWSER)).status == 200
    wrong = await client.post("/setup", headers=JSON,
                              data={"code": "nope", "name": "root", "password": PASSWORD})
    assert wrong.status == 401
    short = await client.post("/setup", headers=JSON,
                              data={"code": "abc123", "name": "root", "password": "short"})
    assert short.status == 400
    made = await client.post("/setup", headers=JSON,
                             data={"code": "abc123", "name": "root", "password": PASSWORD})
    assert made.status == 200
    assert await made.json() == {"name": "root", "role": "admin"}
    assert SESSION_COOKIE in made.cookies
    # Once there is an account, the setup page is gone.
    assert (await client.get("/setup")).status == 404
    again = await client.post("/setup", headers=JSON,
                              data={"code": "abc123", "name": "evil", "password": PASSWORD})
    assert again.status == 404


async def test_without_a_setup_code_there_is_no_setup_page(client):
    assert (await client.get("/setup")).status == 404


async def test_the_info_page_offers_changes_only_to_who_may_make_them(client, account):
    alice, bob = await account("alice"), await account("bob")
    await put(client, "a.wav", alice)
    for who, buttons in [(alice, True), (bob, False), ({}, False)]:
        page = await (await client.get("/info", params={"name": "a.wav"},
                                       headers={**BROWSER, **who})).text()
        assert ('id="delete"' in page) is buttons
        assert ('id="visibility"' in page) is buttons


async def test_a_new_password_signs_the_account_out_everywhere(client, account, config):
    await account("alice")
    cookie, _ = await browser_session(client, "alice")
    changed = command(config, "user", "passwd", "alice", "--password-stdin",
                          stdin="a brand new password\n")
    assert changed.returncode == 0, changed.stderr
    assert (await client.get("/account", headers={**JSON, **cookie})).status == 401
    assert (await sign_in(client, "alice")).status == 401
    assert (await sign_in(client, "alice", "a brand new password")).status == 200


async def test_a_new_password_may_revoke_every_token_too(client, account, config):
    alice = await account("alice")
    for flags, token_works in [((), True), (("--revoke-tokens",), False)]:
        changed = command(config, "user", "passwd", "alice", "--password-stdin",
                              *flags, stdin="a brand new password\n")
        assert changed.returncode == 0, changed.stderr
        assert ("tokens revoked" in changed.stdout) is not token_works
        status = (await client.get("/account", headers={**JSON, **alice})).status
        assert status == (200 if token_works else 401), flags


async def test_the_command_line_makes_tokens_that_expire(client, account, config, db_rows):
    await account("alice")
    made = command(config, "token", "create", "alice", "--expires", "30d")
    assert made.returncode == 0, made.stderr
    assert db_rows("SELECT count(*) FROM api_tokens WHERE expires_at > created_at") == [(1,)]
    headers = {**JSON, "Authorization": f"Bearer {made.stdout.strip()}"}
    assert (await client.get("/account", headers=headers)).status == 200
    wrong = command(config, "token", "create", "alice", "--expires", "soon")
    assert wrong.returncode == 1 and "expires" in wrong.stderr
