"""What only the object storage has: its multipart uploads and checksums,
the local cache, sidecars as objects, a bucket shared between instances,
start-up refusals, and a store that goes away. Against a real SeaweedFS."""

import asyncio
import hashlib
import os
from dataclasses import replace

import aiohttp
import pytest
import yarl

import audiofiles
from audioserver.errors import StartupError, StorageUnavailable
from audioserver.library import Staged, open_library
from audioserver.storage import open_storage, s3 as s3module
from audioserver.web.app import create_app
from audioserver.web.keys import library_key
from serverprocess import ServerProcess, audioserver, command, free_port
from stored import stored_names


@pytest.fixture(params=["postgresql+s3", "sqlite+s3"])
def backend(request) -> str:
    """Every test here is on an object store, with PostgreSQL's rows or SQLite's."""
    return request.param


async def test_an_upload_is_sent_in_parts_each_checked_by_the_store(
        config, monkeypatch, s3):
    """Parts of PART_SIZE, each with its SHA256, which SeaweedFS checks: a
    part whose checksum is wrong is refused, and nothing is left."""
    monkeypatch.setattr(s3module, "PART_SIZE", 5 * 1024 * 1024)  # S3's smallest part
    data = audiofiles.wav(40.0, samplerate=48000, channels=2)  # 7.7 MB: two parts
    sent = []
    real = s3module._part_checksum

    def counted(whole, part):
        sent.append(len(part))
        return real(whole, part)
    monkeypatch.setattr(s3module, "_part_checksum", counted)
    async with open_library(config) as library:
        source = config.data_dir / "a.wav"
        source.write_bytes(data)
        staged = await library.storage.copy_in(source)
        keys = await library.storage.publish([staged], [b"{}"])
        assert sent == [5 * 1024 * 1024, len(data) - 5 * 1024 * 1024]
        assert await library.storage.hash_stored(keys[0]) == (
            hashlib.sha256(data).hexdigest(), len(data))

        monkeypatch.setattr(s3module, "_part_checksum", lambda whole, part: real(whole, b"x"))
        staged = await library.storage.copy_in(source)
        with pytest.raises(StorageUnavailable):
            await library.storage.publish([staged], [b"{}"])
        await library.storage.discard(staged)  # what Library.add does then
        assert await stored_names(library.storage) == [keys[0], keys[0] + ".meta"]
        assert _multipart_uploads(s3, config) == []


async def test_large_sidecars_streamed_sized_and_read_in_ranges(config, tmp_path):
    source = tmp_path / "preview.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024 + 17))
    data = source.read_bytes()
    async with open_storage(config) as storage:
        await storage.create()
        key = "0" * 32
        assert await storage.sidecar_size(key, "preview.opus") is None
        with pytest.raises(FileNotFoundError):
            async with storage.open_sidecar_range(key, "preview.opus", 0, 10):
                pass
        await storage.write_sidecar_file(key, "preview.opus", source)
        assert await storage.sidecar_size(key, "preview.opus") == len(data)
        start, end = 8 * 1024 * 1024 - 5, 8 * 1024 * 1024 + 5
        async with storage.open_sidecar_range(key, "preview.opus", start, end) as chunks:
            assert b"".join([chunk async for chunk in chunks]) == data[start:end]
        assert storage.local_sidecar_path(key, "preview.opus") is None
        await storage.remove([key])
        assert await storage.sidecar_size(key, "preview.opus") is None


@pytest.mark.parametrize("backend", ["postgresql+s3"])
async def test_a_played_file_is_cached_then_served_from_disk_and_a_delete_evicts_it(
        client, upload, library):
    data = audiofiles.wav(2.0)
    assert (await upload("a.wav", data)).status == 201
    key = (await library.db.get("a.wav")).storage_key
    # Uploading filled the cache: the first play is a local file already.
    assert library.storage.local_path(key).read_bytes() == data
    await asyncio.to_thread(library.storage.cache.evict, [key])
    assert library.storage.local_path(key) is None
    # A play from the store fills it again, checked against the row's sha256.
    response = await client.get("/download", params={"name": "a.wav"})
    assert await response.read() == data
    await _until(lambda: library.storage.local_path(key) is not None)
    assert library.storage.local_path(key).read_bytes() == data
    response = await client.get("/download", params={"name": "a.wav"},
                                headers={"Range": "bytes=10-19"})
    assert response.status == 206 and await response.read() == data[10:20]
    assert (await client.delete("/delete", params={"name": "a.wav"})).status == 204
    assert library.storage.local_path(key) is None
    assert (await client.get("/download", params={"name": "a.wav"})).status == 404


@pytest.mark.parametrize("backend", ["postgresql+s3"])
async def test_a_copy_whose_sha256_differs_from_the_row_is_not_cached(
        client, upload, library, s3):
    data = audiofiles.wav(1.0)
    assert (await upload("a.wav", data)).status == 201
    record = await library.db.get("a.wav")
    await asyncio.to_thread(library.storage.cache.evict, [record.storage_key])
    # The object changed behind the server's back.
    s3.client().put_object(Bucket=library.storage.bucket,
                           Key=library.storage._name(record.storage_key), Body=b"x" * 100)
    response = await client.get("/download", params={"name": "a.wav"})
    assert response.status == 200
    await asyncio.sleep(0.5)
    await asyncio.gather(*library.storage._fills.values())
    assert library.storage.local_path(record.storage_key) is None


@pytest.mark.parametrize("backend", ["postgresql+s3"])
async def test_the_cache_keeps_to_its_size_least_recently_used_out(config, aiohttp_client):
    client = await aiohttp_client(create_app(replace(config, cache_size=200_000)))
    library = client.app[library_key]
    keys = []
    for name in ("a.wav", "b.wav", "c.wav"):  # 88,244 bytes each
        await client.put("/upload", params={"name": name}, data=audiofiles.wav(1.0))
        keys.append((await library.db.get(name)).storage_key)
        await asyncio.sleep(0.05)  # distinct mtimes
    cached = [library.storage.local_path(key) is not None for key in keys]
    assert cached == [False, True, True]
    assert library.storage.cache.total() <= 200_000
    # Using b makes c the least recently used: the next upload pushes c out.
    assert library.storage.local_path(keys[1]) is not None
    await asyncio.sleep(0.05)
    await client.put("/upload", params={"name": "d.wav"}, data=audiofiles.wav(1.0))
    assert library.storage.local_path(keys[2]) is None
    assert library.storage.local_path(keys[1]) is not None


async def _until(condition, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


# Starting: the unmounted-disk rule, applied to a bucket.

@pytest.mark.parametrize("backend", ["sqlite+s3"])
@pytest.mark.parametrize("variable, value, says", [
    ("AWS_SECRET_ACCESS_KEY", "not-the-secret", "refused the credentials"),
    ("AWS_ACCESS_KEY_ID", "nobody", "refused the credentials"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:{free_port}", "cannot be reached"),
])
def test_a_store_that_refuses_or_is_away_stops_the_server_saying_why(
        config, monkeypatch, variable, value, says):
    # The port is chosen here, not in the test's id: every collection must agree.
    monkeypatch.setenv(variable, value.format(free_port=free_port()))
    done = audioserver(config.data_dir, "--storage", config.storage, "--s3-path-style",
                       "--port", str(free_port()))
    assert done.returncode == 1
    assert "not starting" in done.stderr and says in done.stderr
    assert "Nothing was changed" in done.stderr
    assert not config.data_dir.exists()


@pytest.mark.parametrize("backend", ["sqlite+s3"])
async def test_a_missing_bucket_is_named(config, s3):
    missing = replace(config, storage="s3://no-such-bucket/library")
    with pytest.raises(StartupError, match="the bucket 'no-such-bucket' does not exist"):
        async with open_library(missing, parsers=False):
            pass


async def test_an_empty_bucket_while_rows_exist_changes_nothing(config, s3, db_rows):
    async with open_library(config) as library:
        staged = await library.storage.copy_in(_wav(config.data_dir))
        await library.add([Staged("a.wav", staged)])
    _empty(s3, config)
    before = db_rows("SELECT name, available FROM audio")
    with pytest.raises(StartupError, match="none of the 1 files"):
        async with open_library(config):
            pass
    assert db_rows("SELECT name, available FROM audio") == before == [("a.wav", 1)]


# Reconcile with a shared bucket: what another instance is writing is left alone.

async def test_what_no_row_names_is_removed_only_after_the_grace_period(
        config, s3, monkeypatch):
    async with open_library(config) as library:
        staged = await library.storage.copy_in(_wav(config.data_dir))
        await library.add([Staged("a.wav", staged)])
        storage = library.storage
        # Another instance publishing: its sidecar is there, its row not yet.
        publishing = "1" * 32
        await storage.write_meta(publishing, b"{}")
        # A delete that committed its row but crashed before removing the object.
        deleted = "2" * 32
        await storage._put(storage._name(deleted), b"audio", "test")
        await storage._put(storage._name(deleted, s3module.TRASH_SUFFIX), b"", "test")
        # A complete file no row names: kept for `recover --merge`, as on the disk.
        [orphan] = await storage.publish([await storage.copy_in(_wav(config.data_dir))],
                                         [b"{}"])
        # An upload to the store another instance is still sending.
        s3.client().create_multipart_upload(Bucket=storage.bucket,
                                            Key=storage._name("3" * 32))
        kept = await stored_names(storage)
    async with open_library(config):
        pass
    assert await _names(config) == kept
    assert len(_multipart_uploads(s3, config)) == 1
    monkeypatch.setattr(s3module, "UNREFERENCED_GRACE", 0.0)
    async with open_library(config) as library:
        key = (await library.db.get("a.wav")).storage_key
    assert await _names(config) == sorted([key, key + ".meta", orphan, orphan + ".meta"])
    assert _multipart_uploads(s3, config) == []


# A store that goes away, and comes back.

@pytest.fixture
def own_s3():
    """A store of its own, which the test may kill and restart."""
    from s3server import S3Server
    server = S3Server()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("backend", ["sqlite+s3"])
async def test_a_store_killed_mid_upload_is_a_503_and_cached_files_are_still_served(
        config, own_s3, monkeypatch, aiohttp_client):
    for name, value in own_s3.environ().items():
        monkeypatch.setenv(name, value)
    config = replace(config, storage=own_s3.new_library(),
                     cache_size=10 * 1024 * 1024)
    client = await aiohttp_client(create_app(config))
    library = client.app[library_key]
    kept = audiofiles.wav(1.0)
    assert (await client.put("/upload", params={"name": "kept.wav"}, data=kept)).status == 201
    data = audiofiles.wav(3.0)

    async def body():
        yield data[:100_000]
        await asyncio.to_thread(own_s3.kill)
        yield data[100_000:]
    response = await client.put("/upload", params={"name": "b.wav"}, data=body())
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert "storage is not answering" in (await response.json())["detail"]
    assert os.listdir(library.storage.temp_dir) == []
    # The database and the cache still serve what they hold.
    response = await client.get("/download", params={"name": "kept.wav"})
    assert response.status == 200 and await response.read() == kept
    assert [item["name"] for item in await (await client.get("/list")).json()] == ["kept.wav"]
    # A delete needs the store: refused, and the file stays.
    response = await client.delete("/delete", params={"name": "kept.wav"})
    assert response.status == 503 and "Retry-After" in response.headers
    # A load balancer asking sends clients elsewhere meanwhile.
    response = await client.get("/readyz")
    assert response.status == 503 and (await response.json())["down"] == ["storage"]
    await asyncio.to_thread(own_s3.start)
    assert (await client.get("/readyz")).status == 200
    response = await client.get("/download", params={"name": "kept.wav"})
    assert response.status == 200 and await response.read() == kept
    assert (await client.put("/upload", params={"name": "b.wav"}, data=data)).status == 201
    names = await stored_names(library.storage)
    assert len(names) == 4  # kept.wav and b.wav, each with its .meta: nothing else
    response = await client.get("/download", params={"name": "b.wav"})
    assert await response.read() == data


def _wav(directory):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "source.wav"
    path.write_bytes(audiofiles.wav(1.0))
    return path


def _empty(s3, config) -> None:
    client = s3.client()
    bucket, prefix = s3module.parse_url(config.storage)
    for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])


async def _names(config) -> list[str]:
    async with open_storage(config) as storage:
        return await storage.names()


def _multipart_uploads(s3, config) -> list:
    bucket, prefix = s3module.parse_url(config.storage)
    return s3.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])


@pytest.mark.parametrize("backend", ["sqlite+s3"])
async def test_s3_redirect_sends_downloads_to_a_presigned_link(config, aiohttp_client):
    client = await aiohttp_client(create_app(replace(config, s3_redirect=True)))
    data = audiofiles.wav(1.0)
    assert (await client.put("/upload", params={"name": "a b.wav"}, data=data)).status == 201
    response = await client.get("/download", params={"name": "a b.wav"},
                                allow_redirects=False)
    assert response.status == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    location = response.headers["Location"]
    assert location.startswith(os.environ["AWS_ENDPOINT_URL"]) and "X-Amz-Signature" in location
    location = yarl.URL(location, encoded=True)  # exactly as signed
    async with aiohttp.ClientSession() as session:
        async with session.get(location) as stored:
            assert stored.status == 200 and await stored.read() == data
            assert stored.headers["Content-Type"] == "audio/wav"
            assert "a%20b.wav" in stored.headers["Content-Disposition"]
        async with session.get(location, headers={"Range": "bytes=4-11"}) as part:
            assert part.status == 206 and await part.read() == data[4:12]


def test_s3_redirect_without_a_bucket_is_refused(tmp_path):
    done = audioserver(tmp_path / "data", "--s3-redirect")
    assert done.returncode == 2 and "--s3-redirect needs" in done.stderr


@pytest.mark.parametrize("backend", ["sqlite+s3"])
async def test_a_cache_size_of_0_keeps_nothing_on_the_local_disk(config, client, upload,
                                                                 library):
    assert config.cache_size == 0
    assert (await upload("a.wav")).status == 201
    assert (await client.get("/download", params={"name": "a.wav"})).status == 200
    await asyncio.sleep(0.2)
    assert library.storage.local_path((await library.db.get("a.wav")).storage_key) is None
    assert os.listdir(config.cache_path) == []


@pytest.mark.parametrize("backend", ["postgresql+s3"])
def test_a_server_with_two_workers_shares_the_bucket_and_the_cache(config, tmp_path):
    server = ServerProcess(config.data_dir, tmp_path, workers=2)
    server.start(server.command("--database", config.database, "--storage", config.storage,
                                "--s3-path-style"))
    try:
        datas = {f"{n}.wav": audiofiles.wav(0.5 + n / 10) for n in range(4)}
        for name, data in datas.items():
            assert server.put(name, data)[0] == 201
        # Whichever worker answers, every file plays, from the cache or the store.
        for _ in range(3):
            for name, data in datas.items():
                assert server.download(name) == (200, data)
        # One cache for both workers: each file in it once, by its key.
        cached = [name for name in os.listdir(config.cache_path) if "." not in name]
        assert len(cached) == len(datas)
    finally:
        server.stop()


@pytest.mark.parametrize("backend", ["sqlite+s3"])
async def test_a_lost_database_is_refused_then_recovered_from_the_bucket(config, tmp_path):
    datas = {"a.wav": audiofiles.wav(1.0), "b.wav": audiofiles.wav(2.0)}
    async with open_library(config) as library:
        for name, data in datas.items():
            (tmp_path / name).write_bytes(data)
            await library.add([Staged(name, await library.storage.copy_in(tmp_path / name))])
    config.db_path.unlink()
    refused = command(config, "user", "list")
    assert refused.returncode == 1 and "holds 2 stored audio files" in refused.stderr
    done = command(config, "recover")
    assert done.returncode == 0, done.stderr
    assert "recovered 2" in done.stdout + done.stderr
    async with open_library(config) as library:
        assert sorted(record.name for record in await library.db.records()) == sorted(datas)
