"""The real server process: signals, restarts, kill -9, concurrent uploads."""

import hashlib
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
from serverprocess import ServerProcess, query


@pytest.fixture
def server(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path)
    yield server
    server.kill()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def listdir(server, sub: str) -> list[str]:
    return sorted(os.listdir(server.data_dir / sub))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_its_url_and_stops_cleanly_on_a_signal(server, sig, workers):
    server.workers = workers
    server.start()
    assert f"http://127.0.0.1:{server.port}/" in server.stdout
    assert server.put("a.wav", audiofiles.wav())[0] == 201  # a probe worker is running
    workers = psutil.Process(server.process.pid).children(recursive=True)
    assert workers
    assert server.stop(sig) == 0
    wait_for(lambda: not any(worker.is_running() and worker.status() != "zombie"
                             for worker in workers))
    assert "Traceback" not in server.stderr


def test_files_survive_a_restart_and_a_kill(server):
    server.start()
    status, first = server.put("one.wav", audiofiles.wav(1))
    assert status == 201
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="two.flac"\r\n\r\n'
            + audiofiles.encode(2, "FLAC") + b"\r\n--b--\r\n")
    status, _, _ = server.request("POST", "/upload", body,
                                  {"Content-Type": "multipart/form-data; boundary=b"})
    assert status == 201
    server.stop()
    server.start()
    assert server.names() == ["one.wav", "two.flac"]
    server.kill()  # no clean shutdown: a 201 was already durable
    server.start()
    assert server.names() == ["one.wav", "two.flac"]
    assert server.download_sha256("one.wav") == first["sha256"]
    assert server.info("two.flac")[1]["duration"] == 2.0


def send_half_an_upload(server, name: str, size: int = 8 * 1024**2) -> socket.socket:
    data = audiofiles.wav(1)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(f"PUT /upload?{query(name)} HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {size}\r\n\r\n".encode() + data
                 + b"\0" * (size // 2 - len(data)))
    return sock


def test_kill_9_in_the_middle_of_an_upload_leaves_nothing(server):
    server.start()
    sock = send_half_an_upload(server, "half.wav")
    wait_for(lambda: listdir(server, "tmp"))  # the upload is being written
    server.kill()
    sock.close()
    assert listdir(server, "tmp")  # the leftover is there until the next start
    server.start()
    assert listdir(server, "tmp") == [] and listdir(server, "audio") == []
    assert server.info("half.wav")[0] == 404
    assert server.names() == []
    assert "removed the unfinished upload" in server.stderr


def test_a_client_gone_in_the_middle_leaves_nothing(server):
    server.start()
    sock = send_half_an_upload(server, "gone.wav")
    wait_for(lambda: listdir(server, "tmp"))
    sock.close()
    wait_for(lambda: listdir(server, "tmp") == [])
    assert listdir(server, "audio") == []
    assert server.info("gone.wav")[0] == 404
    assert server.put("next.wav", audiofiles.wav())[0] == 201


def test_concurrent_uploads_of_one_name_one_wins(server):
    server.start()
    bodies = [audiofiles.wav(1 + i / 10) for i in range(8)]
    results = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def upload(index):
        start.wait()
        results[index] = server.request("PUT", "/upload?name=same.wav", bodies[index])

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] + [409] * 7
    for status, headers, _ in results:
        if status == 409:
            assert headers["Content-Type"].startswith("application/problem+json")
    winner = next(i for i, (status, _, _) in enumerate(results) if status == 201)
    assert server.download_sha256("same.wav") == hashlib.sha256(bodies[winner]).hexdigest()
    assert len(listdir(server, "audio")) == 1 and listdir(server, "tmp") == []


def test_start_reconciles_disk_and_database(server):
    server.start()
    server.put("kept.wav", audiofiles.wav())
    server.put("lost.wav", audiofiles.wav(2))
    server.stop()
    audio = server.data_dir / "audio"
    (audio / "stray").write_bytes(b"no row refers to me")
    (server.data_dir / "tmp" / "left.part").write_bytes(b"half an upload")
    with sqlite3.connect(server.data_dir / "audioserver.sqlite3") as db:
        (key,) = db.execute("SELECT storage_key FROM audio WHERE name = 'lost.wav'").fetchone()
    db.close()
    shutil.move(audio / key, server.data_dir / "elsewhere")
    server.start()
    assert listdir(server, "tmp") == [] and not (audio / "stray").exists()
    assert "stray" in server.stderr and "left.part" in server.stderr
    assert "'lost.wav'" in server.stderr
    status, problem = server.info("lost.wav")
    assert status == 410 and "missing" in problem["detail"]
    assert server.names() == ["kept.wav"]
    server.stop()
    shutil.move(server.data_dir / "elsewhere", audio / key)  # the file is back
    server.start()
    assert server.info("lost.wav")[0] == 200
    assert server.names() == ["kept.wav", "lost.wav"]


def database_state(server) -> list[str]:
    """Every row and the schema (a checkpoint may move bytes between files)."""
    db = sqlite3.connect(server.data_dir / "audioserver.sqlite3")
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_refuses_to_start_when_the_storage_is_missing(server):
    server.start()
    server.put("a.wav", audiofiles.wav())
    server.stop()
    shutil.move(server.data_dir / "audio", server.data_dir / "unmounted")
    before = database_state(server)
    assert server.run_until_exit() == 1
    assert "storage directory" in server.stderr and "missing" in server.stderr
    assert database_state(server) == before
    assert not (server.data_dir / "audio").exists()


def test_refuses_to_start_when_none_of_the_files_is_there(server):
    server.start()
    server.put("a.wav", audiofiles.wav())
    server.put("b.wav", audiofiles.wav())
    server.stop()
    for path in (server.data_dir / "audio").iterdir():
        path.unlink()
    before = database_state(server)
    assert server.run_until_exit() == 1
    assert "none of the 2 files" in server.stderr
    assert database_state(server) == before


def test_settings_from_environment_variables(tmp_path):
    server = ServerProcess(tmp_path / "unused", tmp_path, env={
        "AUDIOSERVER_DATA_DIR": str(tmp_path / "from-env"),
        "AUDIOSERVER_MAX_UPLOAD_SIZE": "100K",
    })
    server.env["AUDIOSERVER_PORT"] = str(server.port)
    try:
        server.start([sys.executable, "-m", "audioserver"])
        assert (tmp_path / "from-env" / "audioserver.sqlite3").exists()
        status, problem = server.put("big.wav", audiofiles.wav(2))  # 176 KB
        assert status == 413 and problem["max_upload_size"] == 100 * 1024
    finally:
        server.kill()
    env = {**os.environ, "AUDIOSERVER_MAX_UPLOAD_SIZE": "lots"}
    result = subprocess.run([sys.executable, "-m", "audioserver"], env=env,
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "AUDIOSERVER_MAX_UPLOAD_SIZE='lots'" in result.stderr


def serving_workers(server) -> list[psutil.Process]:
    workers = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.ZombieProcess:
            pass  # a dead worker not yet collected
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


def test_killing_the_supervisor_takes_the_workers_with_it(server):
    server.start()
    workers = serving_workers(server)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    wait_for(lambda: not any(w.is_running() and w.status() != "zombie" for w in workers))


def test_import_adds_files_from_folders(server, tmp_path):
    music = tmp_path / "music"
    (music / "deeper" / "still").mkdir(parents=True)
    (music / "one.wav").write_bytes(audiofiles.wav(1))
    (music / "deeper" / "two.flac").write_bytes(audiofiles.encode(2, "FLAC"))
    (music / "deeper" / "still" / "notes.txt").write_text("not audio")
    (music / "taken.wav").write_bytes(audiofiles.wav(3))
    server.start()
    server.put("taken.wav", audiofiles.wav(1))
    server.stop()
    result = subprocess.run(server.command("import", str(music)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1  # something was rejected
    assert result.stdout.strip() == "added 2, skipped 1 (name taken), rejected 1 (1 not audio)"
    assert "notes.txt" in result.stderr
    server.start()
    assert server.names() == ["one.wav", "taken.wav", "two.flac"]
    assert server.info("taken.wav")[1]["duration"] == 1.0
