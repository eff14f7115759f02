"""Two instances on one machine sharing one storage directory (the README's
"Running several instances" on one machine): one that starts, or restarts,
must not take away the uploads the other is receiving, yet uploads that a
dead process left behind are still removed at the next start."""

import socket
import time

import audiofiles
from serverprocess import ServerProcess

STARTED = 20.0


def temp_files(data_dir) -> list:
    return sorted(path.name for path in (data_dir / "tmp").iterdir())


def test_a_starting_instance_leaves_the_others_uploads_alone(tmp_path):
    data_dir = tmp_path / "data"
    first = ServerProcess(data_dir, tmp_path / "first", workers=1)
    second = ServerProcess(data_dir, tmp_path / "second", workers=1)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    body = audiofiles.wav(2.0)
    half = len(body) // 2
    first.start()
    try:
        with socket.create_connection(("127.0.0.1", first.port), timeout=30) as conn:
            conn.sendall(f"PUT /upload?name=slow.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:half])
            deadline = time.monotonic() + STARTED
            while not any(name.endswith(".part") for name in temp_files(data_dir)):
                assert time.monotonic() < deadline, "the upload never reached the disk"
                time.sleep(0.02)
            second.start()  # its start-up clears what dead processes left behind
            assert any(name.endswith(".part") for name in temp_files(data_dir))
            conn.sendall(body[half:])
            answer = conn.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 201"), answer
        assert second.request("GET", "/info?name=slow.wav")[0] == 200
    finally:
        first.kill()
        second.kill()


def test_what_a_killed_instance_was_receiving_goes_at_the_next_start(tmp_path):
    data_dir = tmp_path / "data"
    (tmp_path / "logs").mkdir()
    server = ServerProcess(data_dir, tmp_path / "logs", workers=1)
    body = audiofiles.wav(2.0)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(f"PUT /upload?name=cut.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:1000])
            deadline = time.monotonic() + STARTED
            while not any(name.endswith(".part") for name in temp_files(data_dir)):
                assert time.monotonic() < deadline, "the upload never reached the disk"
                time.sleep(0.02)
            server.kill()
        server.start()
        assert not any(name.endswith(".part") for name in temp_files(data_dir))
    finally:
        server.kill()
