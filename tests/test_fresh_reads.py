"""What one worker writes, every worker reads at once: the point reads of
/info and the cached answers of /list never show a library older than the
last answer a client was given. Two workers share the port (SO_REUSEPORT),
so each new connection may reach either; thirty of them reach both but
once in 2^29 runs. On PostgreSQL, two server instances share one database.
"""

import json

import pytest

import audiofiles
from serverprocess import ServerProcess, query

CONNECTIONS = 30  # new connections per check: both workers see some


@pytest.fixture
def server(tmp_path, request):
    env = {"AUDIOSERVER_READ_RATE": "off", "AUDIOSERVER_WRITE_RATE": "off"}
    if getattr(request, "param", "sqlite") == "postgresql":
        env["AUDIOSERVER_DATABASE"] = request.getfixturevalue("postgres_url")
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2, env=env).start()
    yield server
    server.kill()


def statuses(server, path: str, headers=None) -> set[int]:
    """The status of `path` asked on CONNECTIONS new connections."""
    return {server.request("GET", path, headers=headers)[0] for _ in range(CONNECTIONS)}


def listed(server, path: str = "/list") -> set[tuple]:
    """What /list answers on CONNECTIONS new connections, each answer as a tuple of names."""
    answers = set()
    for _ in range(CONNECTIONS):
        status, _, body = server.request("GET", path)
        assert status == 200
        answers.add(tuple(record["name"] for record in json.loads(body)))
    return answers


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_info_sees_every_workers_writes_at_once(server):
    path = "/info?" + query("a.wav")
    assert statuses(server, path) == {404}
    assert server.put("a.wav", audiofiles.wav(0.1))[0] == 201
    assert statuses(server, path) == {200}
    assert server.request("DELETE", path.replace("/info", "/delete"))[0] == 204
    assert statuses(server, path) == {404}
    assert server.put("a.wav", audiofiles.wav(0.2))[0] == 201  # the same name, another row
    assert {json.loads(server.request("GET", path)[2])["duration"]
            for _ in range(CONNECTIONS)} == {0.2}


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_a_kept_info_changes_with_any_workers_edit(server):
    """Both workers keep the answer; an edit through either moves it in both."""
    path = "/info?" + query("a.wav")
    assert server.put("a.wav", audiofiles.wav(0.1))[0] == 201
    titles = lambda: {json.loads(server.request("GET", path)[2])["title"]  # noqa: E731
                      for _ in range(CONNECTIONS)}
    assert titles() == {None}
    assert titles() == {None}  # now answered from what each worker kept
    edited = server.request("PATCH", path, body=json.dumps({"title": "Dawn"}),
                            headers={"Content-Type": "application/merge-patch+json"})
    assert edited[0] == 200
    assert titles() == {"Dawn"}


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_a_cached_list_changes_with_any_workers_write(server):
    assert server.put("a.wav", audiofiles.wav(0.1))[0] == 201
    assert listed(server) == {("a.wav",)}  # now kept by both workers
    assert listed(server) == {("a.wav",)}
    assert server.put("b.wav", audiofiles.wav(0.1))[0] == 201
    assert listed(server) == {("a.wav", "b.wav")}
    assert server.request("DELETE", "/delete?name=a.wav")[0] == 204
    assert listed(server) == {("b.wav",)}


def test_a_cached_list_changes_with_another_instances_write(tmp_path, postgres_url):
    """Two servers on one PostgreSQL database (and one data directory): what
    one stores, the other lists at once, though it kept the list before."""
    env = {"AUDIOSERVER_DATABASE": postgres_url, "AUDIOSERVER_READ_RATE": "off",
           "AUDIOSERVER_WRITE_RATE": "off"}
    first = ServerProcess(tmp_path / "data", tmp_path, workers=1, env=env).start()
    (tmp_path / "second").mkdir()
    second = ServerProcess(tmp_path / "data", tmp_path / "second", workers=1, env=env)
    try:
        second.start()
        assert listed(first) == listed(second) == {()}
        assert second.put("a.wav", audiofiles.wav(0.1))[0] == 201
        assert listed(first) == {("a.wav",)}
        assert first.request("DELETE", "/delete?name=a.wav")[0] == 204
        assert listed(second) == {()}
    finally:
        second.kill()
        first.kill()
