"""`python -m audioserver check [--repair] [--deep]`, on the disk and on S3."""

import pytest

import audiofiles
from audioserver.library import Staged, open_library
from audioserver.storage.s3 import S3Storage
from serverprocess import command


@pytest.fixture(params=["sqlite", "postgresql+s3"])
def backend(request) -> str:
    return request.param


async def overwrite(storage, key: str, data: bytes) -> None:
    """Change a stored file behind the server's back."""
    if isinstance(storage, S3Storage):
        await storage._put(storage._name(key), data, "test")
        storage.cache.evict([key])
    else:
        storage.path(key).write_bytes(data)


async def test_check_reports_missing_damaged_and_extra_and_repair_marks_missing(
        config, db_rows, tmp_path):
    source = tmp_path / "a.wav"
    source.write_bytes(audiofiles.wav(1.0))
    async with open_library(config) as library:
        for name in ("a.wav", "b.wav", "c.wav"):
            await library.add([Staged(name, await library.storage.copy_in(source))])
    done = command(config, "check")
    assert done.returncode == 0, done.stderr
    assert "checked 3 files: 0 missing, 0 damaged, 0 extra" in done.stdout

    async with open_library(config, reconcile_storage=False) as library:
        keys = {name: (await library.db.get(name)).storage_key for name in ("b.wav", "c.wav")}
        await library.storage.remove([keys["b.wav"]])
        size = len(source.read_bytes())
        await overwrite(library.storage, keys["c.wav"], b"\0" * size)  # same size
        [extra] = await library.storage.publish([await library.storage.copy_in(source)],
                                                [b"{}"])
    done = command(config, "check")
    assert done.returncode == 1
    assert f"missing: 'b.wav' (key {keys['b.wav']})" in done.stderr
    assert f"extra: {extra}" in done.stderr and "c.wav" not in done.stderr
    assert "checked 3 files: 1 missing, 0 damaged, 1 extra" in done.stdout
    deep = command(config, "check", "--deep")
    assert deep.returncode == 1
    assert "damaged (sha256 differs): 'c.wav'" in deep.stderr
    assert db_rows("SELECT name FROM audio WHERE NOT available") == []  # only looked
    repaired = command(config, "check", "--repair")
    assert repaired.returncode == 1
    assert "1 marked unavailable" in repaired.stdout
    assert db_rows("SELECT name FROM audio WHERE NOT available") == [("b.wav",)]
