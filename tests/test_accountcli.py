"""Accounts from the console, and signed-in requests on a real server with
several workers."""

import json
import urllib.parse

import pytest

import audiofiles
from audioserver.auth import SESSION_COOKIE
from serverprocess import ServerProcess, audioserver

PASSWORD = "correct horse battery"


def test_user_commands(tmp_path):
    data = tmp_path / "data"
    added = audioserver(data, "user", "add", "alice", "--admin", "--password-stdin",
                        stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "added admin 'alice'" in added.stdout
    assert audioserver(data, "user", "add", "bob", "--password-stdin",
                       stdin=PASSWORD + "\n").returncode == 0
    taken = audioserver(data, "user", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert taken.returncode == 1 and "bob" in taken.stderr
    short = audioserver(data, "user", "add", "carol", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "8 to 1024 characters" in short.stderr
    bad_name = audioserver(data, "user", "add", "no spaces", "--password-stdin",
                           stdin=PASSWORD + "\n")
    assert bad_name.returncode == 1 and "not an account name" in bad_name.stderr
    listed = audioserver(data, "user", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["alice", "admin", "0 files"],
                                                         ["bob", "user", "0 files"]]
    assert audioserver(data, "user", "passwd", "bob", "--password-stdin",
                       stdin="another long one\n").returncode == 0
    assert audioserver(data, "user", "remove", "bob").returncode == 0
    assert [line.split("\t")[0] for line in audioserver(data, "user", "list").stdout.splitlines()
            ] == ["alice"]
    missing = audioserver(data, "user", "remove", "bob")
    assert missing.returncode == 1 and "bob" in missing.stderr


def test_token_create_prints_only_the_token(tmp_path):
    data = tmp_path / "data"
    audioserver(data, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    created = audioserver(data, "token", "create", "alice", "--label", "backup")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("as_") and len(created.stdout.split()) == 1
    unknown = audioserver(data, "token", "create", "nobody")
    assert unknown.returncode == 1 and "no account called 'nobody'" in unknown.stderr


@pytest.fixture
def server(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2)
    yield server
    server.kill()


def test_a_session_and_a_token_work_on_every_worker(server, tmp_path):
    """State between requests lives in the database: any worker answers."""
    audioserver(server.data_dir, "user", "add", "alice", "--password-stdin",
                stdin=PASSWORD + "\n")
    token = audioserver(server.data_dir, "token", "create", "alice").stdout.strip()
    server.start(server.command("--auth", "users"))
    assert "; accounts)" in server.stdout
    status, headers, body = server.request(
        "POST", "/login", urllib.parse.urlencode({"name": "alice", "password": PASSWORD}),
        {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    assert status == 200, body
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith(SESSION_COOKIE + "=")
    # A new connection for each request: the kernel spreads them over the workers.
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(20):
        status, _, body = server.request("GET", "/account", headers={
            "Cookie": cookie, "Accept": "application/json"})
        assert status == 200 and json.loads(body)["name"] == "alice"
        assert server.request("GET", "/account", headers=bearer)[0] == 200
    status, _, body = server.request("PUT", "/upload?name=a.wav&visibility=private",
                                     audiofiles.wav(), bearer)
    assert status == 201 and json.loads(body)["owner"] == "alice"
    for _ in range(10):
        assert json.loads(server.request("GET", "/list")[2]) == []
        assert server.request("GET", "/info?name=a.wav")[0] == 404
    serving = server.descendants()
    assert len([p for p in serving if "audioserver.media.probe" not in " ".join(p.cmdline())]) >= 2


def test_a_server_without_accounts_prints_a_setup_code(server):
    server.start(server.command("--auth", "users"))
    out = server.stdout
    assert "There is no account yet" in out
    code = out.split("setup code ")[1].split(",")[0]
    status, _, _ = server.request("GET", "/setup")
    assert status == 200
    status, headers, body = server.request(
        "POST", "/setup",
        urllib.parse.urlencode({"code": code, "name": "root", "password": PASSWORD}),
        {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    assert status == 200, body
    assert json.loads(body) == {"name": "root", "role": "admin"}
    # Every worker knows the code, and every worker knows it is used up.
    for _ in range(10):
        assert server.request("GET", "/setup")[0] == 404
