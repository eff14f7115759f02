"""The real server process: signals, restarts, kill -9, concurrent uploads,
start-up checks, environment variables and `import`.

Each test starts `python -m audioserver` (see serverprocess.py) on a free
port and a temporary data directory and talks to it over real sockets.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import psutil
import pytest

import audiofiles
from serverprocess import ServerProcess, query, sha256

CTRL_C = "ctrl-c"  # SIGINT to the whole process group, as a terminal sends it
GROUP_SIGTERM = "group"  # SIGTERM to the whole process group, as systemd sends it


@pytest.fixture
def server(tmp_path, request):
    """One serving process unless a test asks for more: it starts faster.
    On SQLite, or on PostgreSQL where a test says so (indirect parameter)."""
    env = {}
    if getattr(request, "param", "sqlite") == "postgresql":
        env["AUDIOSERVER_DATABASE"] = request.getfixturevalue("postgres_url")
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1, env=env)
    yield server
    server.kill()


# The tests of what a database must guarantee run on each backend.
on_each_backend = pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def listdir(server, sub: str) -> list[str]:
    return sorted(os.listdir(server.data_dir / sub))


def audio_files(server) -> list[str]:
    """The stored audio files, without their sidecars (key.meta, key.peaks...)."""
    return [name for name in listdir(server, "audio") if "." not in name]


def gone(processes: list[psutil.Process]) -> bool:
    def dead(process):
        try:
            return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return all(dead(process) for process in processes)


# Starting and stopping

@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, CTRL_C, GROUP_SIGTERM],
                         ids=["SIGTERM", "SIGINT", "ctrl-c", "SIGTERM-to-the-group"])
def test_prints_its_url_and_stops_cleanly_on_a_signal(server, how, workers):
    server.workers = workers
    server.start()
    assert f"AudioServer is serving http://127.0.0.1:{server.port}/" in server.stdout
    assert server.put("a.wav", audiofiles.wav())[0] == 201  # a probe worker runs now
    children = server.descendants()
    assert any("audioserver.media.probe" in " ".join(child.cmdline()) for child in children)
    started = time.monotonic()
    if how == CTRL_C:
        code = server.stop(signal.SIGINT, group=True)
    elif how == GROUP_SIGTERM:
        code = server.stop(signal.SIGTERM, group=True)
    else:
        code = server.stop(how)
    assert code == 0
    assert time.monotonic() - started < 5
    wait_for(lambda: gone(children), timeout=5)  # serving and probe workers alike
    assert "Traceback" not in server.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def start_an_upload(server, name: str, data: bytes) -> socket.socket:
    """Headers and the first half of `data`, once the server is writing it."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(f"PUT /upload?{query(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:len(data) // 2])
    wait_for(lambda: any(name.endswith(".part") for name in listdir(server, "tmp")))
    return sock


def terminate(server, how: str) -> None:
    if how == GROUP_SIGTERM:
        os.killpg(server.process.pid, signal.SIGTERM)
    else:
        server.process.send_signal(signal.SIGTERM)


@pytest.mark.parametrize("workers,how", [(1, "process"), (2, "supervisor"),
                                         (2, GROUP_SIGTERM)])
def test_an_upload_in_flight_at_sigterm_is_finished_and_kept(server, workers, how):
    server.workers = workers
    server.start()
    data = audiofiles.wav(10)
    sock = start_an_upload(server, "late.wav", data)
    terminate(server, how)
    time.sleep(0.2)
    # New connections are refused while the one in flight is served.
    wait_for(lambda: not port_open(server))
    sock.sendall(data[len(data) // 2:])
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 201
    assert json.loads(response.read())["sha256"] == sha256(data)
    sock.close()
    assert server.process.wait(15) == 0
    assert "Traceback" not in server.stderr
    server.start()
    assert server.names() == ["late.wav"]
    assert server.download_sha256("late.wav") == sha256(data)


@pytest.mark.parametrize("workers,how", [(1, "process"), (2, GROUP_SIGTERM)])
def test_an_upload_not_finished_within_the_shutdown_timeout_leaves_nothing(server, workers,
                                                                          how):
    server.workers = workers
    if how == GROUP_SIGTERM:  # and through its variable
        server.env["AUDIOSERVER_SHUTDOWN_TIMEOUT"] = "1"
        server.start()
    else:
        server.start(server.command("--shutdown-timeout", "1"))
    sock = start_an_upload(server, "never.wav", audiofiles.wav(10))
    terminate(server, how)
    assert server.process.wait(15) == 0
    sock.settimeout(5)
    with pytest.raises(ConnectionResetError):
        while sock.recv(65536):  # anything but a 201; then the close
            pass
        raise ConnectionResetError  # closed without a word: just as good
    sock.close()
    assert "Traceback" not in server.stderr
    server.start()
    assert server.names() == []
    assert listdir(server, "tmp") == [] and listdir(server, "audio") == []


def port_open(server) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        return True
    except ConnectionRefusedError:
        return False


@on_each_backend
def test_files_survive_a_restart(server):
    server.start()
    one, two, three = audiofiles.wav(1), audiofiles.encode(2, "FLAC"), audiofiles.wav(0.5)
    assert server.put("one.wav", one)[0] == 201
    status, answer = server.post_form({"two.flac": two, "three £.wav": three})
    assert status == 201 and [item["name"] for item in answer] == ["two.flac", "three £.wav"]
    sent = {"one.wav": one, "two.flac": two, "three £.wav": three}
    before = {name: server.info(name)[1] for name in sent}
    listing = server.listing()
    assert server.stop() == 0
    server.start()
    assert server.listing() == listing
    for name, data in sent.items():
        status, info = server.info(name)
        assert status == 200 and info == before[name]
        assert info["sha256"] == sha256(data) == server.download_sha256(name)
    assert len(audio_files(server)) == 3 and listdir(server, "tmp") == []


@on_each_backend
def test_a_201_survives_a_kill_9(server):
    server.start()
    data = audiofiles.wav(1.5)
    status, info = server.put("durable.wav", data)
    assert status == 201
    server.kill()  # right after the answer: no clean shutdown, no checkpoint
    server.start()
    assert server.names() == ["durable.wav"]
    assert server.info("durable.wav") == (200, info)
    assert server.download_sha256("durable.wav") == info["sha256"] == sha256(data)


# Uploads cut off

def send_half_an_upload(server, name: str, size: int = 8 * 1024**2) -> socket.socket:
    """Headers saying `size` bytes, then half of them (a WAV header and zeros)."""
    data = audiofiles.wav(1)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(f"PUT /upload?{query(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Content-Length: {size}\r\n\r\n".encode() + data
                 + b"\0" * (size // 2 - len(data)))
    return sock


def test_kill_9_in_the_middle_of_an_upload_leaves_nothing(server):
    server.start()
    sock = send_half_an_upload(server, "half.wav")
    wait_for(lambda: any(name.endswith(".part") for name in listdir(server, "tmp")))
    # Most of what was sent has reached the file.
    wait_for(lambda: sum(os.path.getsize(server.data_dir / "tmp" / name)
                         for name in listdir(server, "tmp")) >= 3 * 1024**2)
    server.kill()
    sock.close()
    leftovers = listdir(server, "tmp")
    assert leftovers  # there until the next start
    server.start()
    assert listdir(server, "tmp") == [] and listdir(server, "audio") == []
    assert server.info("half.wav")[0] == 404
    assert server.names() == []
    for leftover in leftovers:
        assert f"removed the unfinished upload {leftover}" in server.stderr
    assert server.put("half.wav", audiofiles.wav())[0] == 201  # the name is free


def test_a_client_gone_in_the_middle_leaves_nothing(server):
    server.start()
    sock = send_half_an_upload(server, "gone.wav")
    wait_for(lambda: listdir(server, "tmp"))
    sock.close()
    wait_for(lambda: listdir(server, "tmp") == [], timeout=5)
    assert listdir(server, "audio") == []
    assert server.info("gone.wav")[0] == 404
    assert server.names() == []
    assert server.put("gone.wav", audiofiles.wav())[0] == 201  # still serving, name free
    assert server.process.poll() is None
    assert "Traceback" not in server.stderr


# Concurrency

def raw_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, dict(response.getheaders()), response.read()


def upload_all_at_once(server, bodies: list[bytes]) -> list:
    """Threads released by one barrier, each a whole PUT."""
    results = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def upload(index):
        barrier.wait()
        results[index] = server.request("PUT", "/upload?name=same.wav", bodies[index])

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def upload_held_at_the_last_byte(server, bodies: list[bytes]) -> list:
    """Every upload gets past the early name check (its temporary file exists)
    before any finishes: the clash is only found when the rows are inserted."""
    socks = []
    try:
        for body in bodies:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            socks.append(sock)
            sock.sendall(b"PUT /upload?name=same.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:-1])
        wait_for(lambda: len(listdir(server, "tmp")) == len(bodies))
        for sock, body in zip(socks, bodies):
            sock.sendall(body[-1:])
        return [raw_response(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("race", [upload_all_at_once, upload_held_at_the_last_byte],
                         ids=["all-at-once", "held-at-the-last-byte"])
@on_each_backend
def test_concurrent_uploads_of_one_name_one_wins(server, race):
    server.workers = 2  # the uploads race across processes too
    server.start()
    bodies = [audiofiles.wav(1 + i / 10) for i in range(8)]  # all different
    results = race(server, bodies)
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] + [409] * 7
    for status, headers, body in results:
        if status == 409:
            assert headers["Content-Type"].startswith("application/problem+json")
            problem = json.loads(body)
            assert problem["status"] == 409 and problem["name"] == "same.wav"
    (winner,) = [i for i, (status, _, _) in enumerate(results) if status == 201]
    created = json.loads(results[winner][2])
    assert created["sha256"] == sha256(bodies[winner])
    assert server.download_sha256("same.wav") == created["sha256"]
    assert server.info("same.wav")[1] == created
    assert server.names() == ["same.wav"]
    assert len(audio_files(server)) == 1 and listdir(server, "tmp") == []


# Start-up checks

def storage_key(server, name: str) -> str:
    db = sqlite3.connect(server.data_dir / "audioserver.sqlite3")
    try:
        (key,) = db.execute("SELECT storage_key FROM audio WHERE name = ?", (name,)).fetchone()
        return key
    finally:
        db.close()


def test_start_reconciles_disk_and_database(server):
    server.start()
    assert server.put("kept.wav", audiofiles.wav())[0] == 201
    assert server.put("lost.wav", audiofiles.wav(2))[0] == 201
    assert server.stop() == 0
    audio = server.data_dir / "audio"
    (audio / "0123456789abcdef0123456789abcdef").write_bytes(b"no row refers to me")
    (server.data_dir / "tmp" / "left.part").write_bytes(b"half an upload")
    key = storage_key(server, "lost.wav")
    shutil.move(audio / key, server.data_dir / "elsewhere")
    server.start()
    assert listdir(server, "tmp") == []
    # A complete file no row names is kept: it may be all that is left of a row.
    assert "0123456789abcdef0123456789abcdef" in listdir(server, "audio")
    assert storage_key(server, "kept.wav") in listdir(server, "audio")
    assert "kept 0123456789abcdef0123456789abcdef: no row names it" in server.stderr
    assert "recover --merge" in server.stderr
    assert "removed the unfinished upload left.part" in server.stderr
    assert "the file of 'lost.wav'" in server.stderr and "missing" in server.stderr
    status, problem = server.info("lost.wav")
    assert status == 410 and "missing" in problem["detail"]
    assert server.download("lost.wav")[0] == 410
    assert server.names() == ["kept.wav"]
    assert server.info("kept.wav")[0] == 200
    assert server.stop() == 0
    shutil.move(server.data_dir / "elsewhere", audio / key)  # the file is back
    server.start()
    assert "the file of 'lost.wav' is back" in server.stderr
    assert server.info("lost.wav")[0] == 200
    assert server.download_sha256("lost.wav") == sha256(audiofiles.wav(2))
    assert server.names() == ["kept.wav", "lost.wav"]


def snapshot(server) -> dict:
    """Every file of the data directory: its bytes and its mtime."""
    files = {}
    for root, _, names in os.walk(server.data_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, server.data_dir)] = (
                    file.read(), os.stat(path).st_mtime_ns)
    return files


@pytest.fixture(scope="module")
def library_of_two(tmp_path_factory):
    """A data directory whose database lists a.wav and b.wav, made once."""
    tmp = tmp_path_factory.mktemp("library-of-two")
    server = ServerProcess(tmp / "data", tmp, workers=1)
    try:
        server.start()
        assert server.put("a.wav", audiofiles.wav())[0] == 201
        assert server.put("b.wav", audiofiles.wav(0.5))[0] == 201
        assert server.stop() == 0
    finally:
        server.kill()
    return server.data_dir


@pytest.mark.parametrize("workers", [1, 2])
def test_refuses_to_start_when_the_storage_is_missing(server, workers, library_of_two):
    server.workers = workers
    shutil.copytree(library_of_two, server.data_dir)
    shutil.rmtree(server.data_dir / "audio")
    (server.data_dir / "tmp" / "left.part").write_bytes(b"half an upload")
    before = snapshot(server)
    assert "audioserver.sqlite3" in before
    assert server.run_until_exit() == 1
    assert "not starting" in server.stderr
    assert f"the storage directory {server.data_dir / 'audio'} is missing" in server.stderr
    assert snapshot(server) == before  # the database to the byte, and nothing else
    assert not (server.data_dir / "audio").exists()
    assert never_served(server)


@pytest.mark.parametrize("workers", [1, 2])
def test_refuses_to_start_when_none_of_the_files_is_there(server, workers, library_of_two):
    server.workers = workers
    shutil.copytree(library_of_two, server.data_dir)
    for path in (server.data_dir / "audio").iterdir():
        shutil.move(path, server.data_dir.parent / path.name)
    (server.data_dir / "tmp" / "left.part").write_bytes(b"half an upload")
    before = snapshot(server)
    assert server.run_until_exit() == 1
    assert "not starting" in server.stderr
    assert "none of the 2 files the database lists" in server.stderr
    assert "Nothing was changed" in server.stderr
    assert snapshot(server) == before  # not even the unfinished upload was removed
    assert never_served(server)
    # Once the files are back it starts, and only then tidies up.
    for path in server.data_dir.parent.iterdir():
        if len(path.name) == 32:
            shutil.move(path, server.data_dir / "audio" / path.name)
    server.start()
    assert server.names() == ["a.wav", "b.wav"]
    assert listdir(server, "tmp") == []


def never_served(server) -> bool:
    return "AudioServer is serving" not in server.stdout


# Settings

def test_settings_from_environment_variables(tmp_path):
    server = ServerProcess(tmp_path / "unused", tmp_path, env={
        "AUDIOSERVER_DATA_DIR": str(tmp_path / "from-env"),
        "AUDIOSERVER_MAX_UPLOAD_SIZE": "100K",
        "AUDIOSERVER_WORKERS": "1",
    })
    server.env["AUDIOSERVER_PORT"] = str(server.port)
    try:
        server.start([sys.executable, "-m", "audioserver"])
        assert f"http://127.0.0.1:{server.port}/ " in server.stdout
        assert str(tmp_path / "from-env") in server.stdout
        assert (tmp_path / "from-env" / "audioserver.sqlite3").exists()
        assert not (tmp_path / "unused").exists()
        status, problem = server.put("big.wav", audiofiles.wav(2))  # 176 KB
        assert status == 413 and problem["max_upload_size"] == 100 * 1024
        assert server.put("small.wav", audiofiles.wav(1))[0] == 201  # 88 KB
    finally:
        server.kill()


@pytest.mark.parametrize("variable, value", [
    ("AUDIOSERVER_MAX_UPLOAD_SIZE", "lots"),
    ("AUDIOSERVER_MAX_UPLOAD_SIZE", "0"),
    ("AUDIOSERVER_PORT", "eighty"),
])
def test_a_bad_environment_variable_is_a_clear_error(tmp_path, variable, value):
    env = {**os.environ, variable: value, "AUDIOSERVER_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "audioserver"], env=env,
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert f"bad environment variable: {variable}={value!r}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_flag_wins_over_its_variable(server):
    server.env["AUDIOSERVER_MAX_UPLOAD_SIZE"] = "10K"
    server.env["AUDIOSERVER_DATA_DIR"] = str(server.logs / "not-this")
    server.start(server.command("--max-upload-size", "1M"))
    assert server.put("a.wav", audiofiles.wav(1))[0] == 201  # 88 KB > 10K
    assert (server.data_dir / "audioserver.sqlite3").exists()
    assert not (server.logs / "not-this").exists()


# Several serving processes

def serving_workers(server) -> list[psutil.Process]:
    """The supervisor's children: forked, they have its command line; the
    child that checked the library has exited before they start."""
    workers = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                workers.append(child)
        except psutil.NoSuchProcess:
            pass  # a dead worker already collected
    return workers


def test_several_workers_share_the_port_and_a_dead_one_is_replaced(server):
    server.workers = 3
    server.start()
    assert "with 3 workers" in server.stdout
    workers = serving_workers(server)
    assert len(workers) == 3
    for index in range(6):  # writes land on whichever worker; all see them all
        assert server.put(f"{index}.wav", audiofiles.wav())[0] == 201
        for _ in range(3):
            assert server.names() == [f"{i}.wav" for i in range(index + 1)]
            _, headers, _ = server.request("GET", "/list?maxduration=5")
            assert headers["X-Total-Count"] == str(index + 1)
    workers[0].kill()
    wait_for(lambda: len([w for w in serving_workers(server) if w.pid != workers[0].pid]) == 3)
    for _ in range(10):
        assert server.info("5.wav")[0] == 200
    assert "starting another" in server.stderr


def test_a_serving_worker_leaves_sigint_to_the_supervisor(server):
    """Ctrl-C reaches the whole process group; only the supervisor acts on it
    (it then stops the workers with SIGTERM). A worker that acted on SIGINT
    itself would be shutting down when the supervisor's SIGTERM arrives."""
    server.workers = 2
    server.start()
    workers = serving_workers(server)
    os.kill(workers[0].pid, signal.SIGINT)
    time.sleep(1)
    assert workers[0].is_running() and workers[0].status() != psutil.STATUS_ZOMBIE
    assert "starting another" not in server.stderr
    assert server.info("nothing.wav")[0] == 404  # still serving


def test_killing_the_supervisor_takes_the_workers_with_it(server):
    server.workers = 2
    server.start()
    workers = serving_workers(server)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    wait_for(lambda: gone(workers))


# `import`

def run_import(server, *paths) -> subprocess.CompletedProcess:
    return subprocess.run(server.command("import", *map(str, paths)), env=server.env,
                          capture_output=True, text=True, timeout=60)


def test_import_adds_files_from_folders(server, tmp_path):
    taken = tmp_path / "first" / "taken.wav"
    taken.parent.mkdir()
    taken.write_bytes(audiofiles.wav(1))
    result = run_import(server, taken)  # into a new data directory
    assert result.returncode == 0
    assert result.stdout.strip() == "added 1, skipped 0 (name taken), rejected 0"

    music = tmp_path / "music"
    (music / "deeper" / "still").mkdir(parents=True)
    files = {
        music / "one.wav": audiofiles.wav(1),
        music / "deeper" / "two.flac": audiofiles.encode(2, "FLAC"),
        music / "deeper" / "still" / "three.wav": audiofiles.wav(0.5, channels=2),
        music / "taken.wav": audiofiles.wav(3),
    }
    for path, data in files.items():
        path.write_bytes(data)
    (music / "deeper" / "still" / "notes.txt").write_text("not audio")
    result = run_import(server, music)
    assert result.returncode == 1  # something was rejected
    assert result.stdout.strip() == "added 3, skipped 1 (name taken), rejected 1 (1 not audio)"
    assert "notes.txt" in result.stderr and "taken.wav" in result.stderr
    assert listdir(server, "tmp") == []
    assert len(audio_files(server)) == 4

    server.start()
    assert server.names() == ["one.wav", "taken.wav", "three.wav", "two.flac"]
    assert server.info("taken.wav")[1]["duration"] == 1.0  # the first one, kept
    for path, data in files.items():
        if path.name != "taken.wav":
            assert server.download_sha256(path.name) == sha256(data)
    assert server.info("three.wav")[1]["channels"] == 2
    assert "removed" not in server.stderr  # the import left nothing stray
