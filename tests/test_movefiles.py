"""`migrate --to-storage`: a library's files from a directory to a bucket and back."""

from dataclasses import replace

import pytest

import audiofiles
from audioserver.library import COVER_SUFFIX, Staged, open_library
from serverprocess import command


@pytest.fixture
def backend() -> str:
    return "sqlite"  # a library on the local disk, to move


async def test_files_move_to_a_bucket_and_back_verified_and_resumable(config, s3_url, tmp_path):
    datas = {f"{n}.wav": audiofiles.wav(0.5 + n / 10) for n in range(3)}
    async with open_library(config) as library:
        for name, data in datas.items():
            source = tmp_path / name
            source.write_bytes(data)
            await library.add([Staged(name, await library.storage.copy_in(source))])
    moved = command(config, "migrate", "--to-storage", s3_url, "--s3-path-style")
    assert moved.returncode == 0, moved.stderr
    assert f"copied 3 files to {s3_url}/, verified by sha256; 0 already there" in moved.stdout
    on_s3 = replace(config, storage=s3_url, s3_path_style=True)
    async with open_library(on_s3) as library:
        for name, data in datas.items():
            async with library.storage.local_copy((await library.db.get(name)).storage_key) \
                    as path:
                assert path.read_bytes() == data
        # An interrupted run left one behind: the next copies only that one.
        await library.storage.remove([(await library.db.get("1.wav")).storage_key])
    again = command(config, "migrate", "--to-storage", s3_url, "--s3-path-style")
    assert again.returncode == 0, again.stderr
    assert "copied 1 file to" in again.stdout and "2 already there" in again.stdout
    assert command(on_s3, "check", "--deep").returncode == 0

    # And back, from the bucket to another directory.
    back = tmp_path / "elsewhere"
    done = command(on_s3, "migrate", "--to-storage", str(back))
    assert done.returncode == 0, done.stderr
    assert "copied 3 files" in done.stdout
    checked = command(replace(config, storage=str(back)), "check", "--deep")
    assert checked.returncode == 0, checked.stderr
    assert sorted(path.read_bytes() for path in (back / "audio").iterdir()
                  if "." not in path.name) == sorted(datas.values())


async def test_a_new_library_may_keep_its_files_in_another_directory(tmp_path, config):
    elsewhere = replace(config, storage=str(tmp_path / "files"))
    async with open_library(elsewhere) as library:
        source = tmp_path / "a.wav"
        source.write_bytes(audiofiles.wav(1.0))
        [record] = await library.add([Staged("a.wav", await library.storage.copy_in(source))])
    assert (tmp_path / "files" / "audio" / record.storage_key).read_bytes() == \
        source.read_bytes()
    assert config.db_path.exists() and not (config.data_dir / "audio").exists()


async def test_the_cover_art_moves_with_its_file(config, s3_url, tmp_path):
    cover = audiofiles.png(4, 4)
    source = tmp_path / "covered.mp3"
    source.write_bytes(audiofiles.with_id3(audiofiles.encode(1.0, "MP3"), cover=cover,
                                           title="Covered"))
    async with open_library(config) as library:
        await library.add([Staged("covered.mp3", await library.storage.copy_in(source))])
    moved = command(config, "migrate", "--to-storage", s3_url, "--s3-path-style")
    assert moved.returncode == 0, moved.stderr
    async with open_library(replace(config, storage=s3_url, s3_path_style=True)) as library:
        record = await library.db.get("covered.mp3")
        assert record.cover == "image/png"
        assert await library.storage.read_sidecar(record.storage_key, COVER_SUFFIX) == cover
