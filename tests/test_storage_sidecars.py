"""The large sidecars of the Storage interface (a file's preview), as
callers use them, on the local disk and in an object store."""

import pytest

import audiofiles
from audioserver.config import Config
from audioserver.storage import open_storage
from audioserver.storage.local import LocalStorage


@pytest.fixture(params=["disk", "s3"])
async def storage(request, tmp_path):
    storage_url = request.getfixturevalue("s3_url") if request.param == "s3" else None
    config = Config(data_dir=tmp_path / "data", storage=storage_url, s3_path_style=True)
    async with open_storage(config) as storage:
        await storage.create()
        yield storage


async def stored(storage) -> str:
    upload = await storage.open_upload()
    await upload.write([audiofiles.wav()])
    await storage.finish(upload)
    (key,) = await storage.publish([upload], [b"{}"])
    return key


async def read_range(storage, key, suffix, start, end) -> bytes:
    async with storage.open_sidecar_range(key, suffix, start, end) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_a_large_sidecar_is_stored_read_by_ranges_and_removed_with_its_file(
        storage, tmp_path):
    key = await stored(storage)
    source = tmp_path / "preview.mp3"
    data = bytes(range(256)) * 4096  # 1 MiB
    source.write_bytes(data)
    assert await storage.sidecar_size(key, "preview1.mp3") is None
    with pytest.raises(FileNotFoundError):
        await read_range(storage, key, "preview1.mp3", 0, 10)
    await storage.write_sidecar_file(key, "preview1.mp3", source)
    assert source.read_bytes() == data  # the source stays the caller's
    assert await storage.sidecar_size(key, "preview1.mp3") == len(data)
    assert await read_range(storage, key, "preview1.mp3", 0, len(data)) == data
    assert await read_range(storage, key, "preview1.mp3", 1000, 5000) == data[1000:5000]
    local = storage.local_sidecar_path(key, "preview1.mp3")
    if isinstance(storage, LocalStorage):  # for sendfile
        assert local is not None and local.read_bytes() == data
    else:
        assert local is None  # streamed from the store
    # Replaced whole, never seen half written; no temporary file stays.
    source.write_bytes(b"shorter")
    await storage.write_sidecar_file(key, "preview1.mp3", source)
    assert await read_range(storage, key, "preview1.mp3", 0, 100) == b"shorter"
    assert list(storage.temp_dir.iterdir()) == []
    await storage.remove([key])
    assert await storage.sidecar_size(key, "preview1.mp3") is None
