"""A full disk is the server's fault, not the client's: 507, and nothing kept."""

import io
import os
import subprocess

import pytest

import audiofiles
from audioserver.main import create_app
from audioserver.settings import Config


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
