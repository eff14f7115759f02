"""Receiving a file into the staging directory (storage/staging.py)."""

import hashlib
import os

from audioserver.storage.staging import SYNC_EVERY, Staging

CHUNK = 256 * 1024


async def write_all(upload, data: bytes) -> None:
    for start in range(0, len(data), CHUNK):
        await upload.write([data[start:start + CHUNK]])


async def test_a_large_upload_is_synced_as_it_arrives_and_stored_whole(tmp_path):
    staging = Staging(tmp_path)
    data = os.urandom(3 * SYNC_EVERY + 12345)
    upload = await staging.open_upload()
    await write_all(upload, data)
    await staging.finish(upload)
    # Most of the bytes reached the disk before finish() fsynced the rest.
    assert upload.background_syncs >= 2
    assert upload.size == len(data)
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.path.read_bytes() == data
    upload.close()


async def test_a_small_upload_needs_no_background_sync(tmp_path):
    staging = Staging(tmp_path)
    upload = await staging.open_upload()
    await write_all(upload, b"x" * (SYNC_EVERY - 1))
    await staging.finish(upload)
    assert upload.background_syncs == 0
    upload.close()


async def test_a_discard_while_a_sync_runs_leaves_nothing(tmp_path):
    staging = Staging(tmp_path)
    upload = await staging.open_upload()
    await write_all(upload, os.urandom(2 * SYNC_EVERY))
    await staging.discard(upload)
    assert os.listdir(tmp_path) == []
