"""A full disk is the server's fault, not the client's: 507, and nothing kept."""

import io
import os
import subprocess

import pytest

import audiofiles
from audioserver.config import Config
from audioserver.web.app import create_app
from serverprocess import ServerProcess

CLIENTS = 64


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a real ENOSPC, not a mocked one. Needs root, as CI has."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount_point],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", mount_point], check=True)


async def test_a_full_disk_is_507_and_leaves_nothing(aiohttp_client, small_disk):
    config = Config(data_dir=small_disk / "data", max_upload_size=8 * 1024**2, probe_workers=1)
    client = await aiohttp_client(create_app(config))
    response = await client.put("/upload", params={"name": "big.wav"},
                                data=io.BytesIO(audiofiles.wav(30.0)))  # 2.6 MB
    assert response.status == 507
    assert response.content_type == "application/problem+json"
    assert "disk is full" in (await response.json())["detail"]
    assert os.listdir(small_disk / "data" / "tmp") == []
    assert os.listdir(small_disk / "data" / "audio") == []
    # The space is back, and the server goes on.
    response = await client.put("/upload", params={"name": "small.wav"}, data=audiofiles.wav(1))
    assert response.status == 201


PAGE = 4096


def fill(disk, leave: int) -> None:
    """Fill `disk` with a file of its own until only `leave` bytes are free."""
    stat = os.statvfs(disk)
    with open(disk / "filler", "wb") as file:
        file.write(b"\0" * (stat.f_bavail * stat.f_frsize - leave))


def free_bytes(disk) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def wav_of_size(size: int) -> bytes:
    """A mono 16-bit WAV of exactly `size` bytes (give or take one)."""
    header = len(audiofiles.wav(0))
    data = audiofiles.wav((size - header) // 2 / audiofiles.RATE)
    assert size - 1 <= len(data) <= size
    return data


async def test_a_full_disk_at_the_database_commit_is_507_and_keeps_nothing(
        aiohttp_client, small_disk):
    config = Config(data_dir=small_disk / "data", probe_workers=1)
    client = await aiohttp_client(create_app(config))
    # The first upload gives the database, its log and the rate limits the
    # pages they touch on every upload.
    assert (await client.put("/upload", params={"name": "first.wav"},
                             data=audiofiles.wav(0.1))).status == 201
    stored = os.listdir(small_disk / "data" / "audio")
    fill(small_disk, leave=256 * 1024)
    # The next file takes all but one free block: it is received and stored
    # with room to spare, and then SQLite has too little to log the row (one
    # row touches the table and each of its indexes: a dozen pages).
    data = wav_of_size(free_bytes(small_disk) - PAGE - 100)
    response = await client.put("/upload", params={"name": "fills.wav"}, data=data)
    assert response.status == 507
    assert response.content_type == "application/problem+json"
    assert "disk is full" in (await response.json())["detail"]
    assert os.listdir(small_disk / "data" / "tmp") == []
    assert os.listdir(small_disk / "data" / "audio") == stored
    assert [item["name"] for item in await (await client.get("/list")).json()] == ["first.wav"]
    # The file's space is back, and the database takes writes again.
    response = await client.put("/upload", params={"name": "small.wav"}, data=audiofiles.wav(0.1))
    assert response.status == 201


async def test_a_delete_the_full_disk_cannot_commit_is_507_and_keeps_both(
        aiohttp_client, small_disk):
    config = Config(data_dir=small_disk / "data", probe_workers=1)
    client = await aiohttp_client(create_app(config))
    data = audiofiles.wav(0.1)
    for name in ("a.wav", "b.wav"):
        assert (await client.put("/upload", params={"name": name}, data=data)).status == 201
    # A delete and a read first give the rate limits the pages they touch.
    assert (await client.delete("/delete", params={"name": "b.wav"})).status == 204
    assert (await client.get("/list")).status == 200
    stored = sorted(os.listdir(small_disk / "data" / "audio"))
    fill(small_disk, leave=0)
    response = await client.delete("/delete", params={"name": "a.wav"})
    assert response.status == 507
    assert response.content_type == "application/problem+json"
    assert "disk is full" in (await response.json())["detail"]
    # The file, set aside for the delete, is back under its name, and its row stays.
    assert sorted(os.listdir(small_disk / "data" / "audio")) == stored
    response = await client.get("/download", params={"name": "a.wav"})
    assert response.status == 200 and await response.read() == data
    os.unlink(small_disk / "filler")
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204
    assert os.listdir(small_disk / "data" / "audio") == []


def test_new_clients_on_a_full_disk_do_not_bring_the_server_down(tmp_path, small_disk):
    """The rate limits live in a mapped file: a first write to a page the
    file system never allocated is a SIGBUS when the disk is full."""
    server = ServerProcess(small_disk / "data", tmp_path, workers=1)
    try:
        server.start(server.command("--trusted-proxy", "127.0.0.1"))
        assert server.put("a.wav", audiofiles.wav(0.1))[0] == 201
        fill(small_disk, leave=0)
        # Each address has a bucket of its own, spread over the whole file.
        for client in range(CLIENTS):
            status, _, _ = server.request("GET", "/list", headers={
                "X-Forwarded-For": f"10.0.{client // 256}.{client % 256}"})
            assert status == 200, server.stderr
        assert server.process.poll() is None
    finally:
        server.kill()
