"""Stored audio files in an S3-compatible object store, with a local cache.

Objects live under `s3://BUCKET/PREFIX/`: the audio as `<key>`, each
sidecar as `<key>.<suffix>`. Anything else in the bucket is not ours and is
never touched. Uploads are staged locally (staging.py), then published with
a multipart upload, parts read one at a time from the staged file (memory
stays flat) and each sent with its SHA256, which the store checks. The
`.meta` sidecar is written before the audio object is completed, so an
audio object always has one.

Trash: an object store has no rename, so trash() writes an empty
`<key>.deleting` marker beside the object. exists() is false while it is
there; untrash() removes it; remove() deletes the object, its sidecars and
then the marker. After a crash, a marker whose row stayed is removed
(restore_trashed), and one whose row went marks an object reconcile may
delete.

Several instances may share a bucket: an object written a moment ago may
belong to an upload another instance has not committed yet. What reconcile
may remove (sidecar_keys) therefore leaves out anything younger than
UNREFERENCED_GRACE.

Every call has a timeout and a bounded retry: a store that is down or slow
is a StorageUnavailable (503 with Retry-After), never a hang; at start, a
missing bucket or refused credentials are a StartupError saying which.
"""

import asyncio
import base64
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
import urllib.parse
from contextlib import (AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager,
                        contextmanager)
from pathlib import Path
from typing import AsyncIterator

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from ..config import Config
from ..errors import StartupError, StorageUnavailable
from .cache import Cache
from .meta import META_SUFFIX, decode
from .staging import Staging, Upload

log = logging.getLogger(__name__)

# S3 takes parts of 5 MiB or more (but the last); larger parts, fewer trips.
PART_SIZE = 8 * 1024 * 1024
READ_CHUNK = 256 * 1024
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
# Attempts per call, the first included: a dead store answers 503 in
# seconds, never after minutes of retries.
ATTEMPTS = 2
RETRY_AFTER = 10
# How long an object no row names is left alone: another instance sharing
# the bucket may be about to commit its row. Tests lower it.
UNREFERENCED_GRACE = 3600.0
# A presigned download link (--s3-redirect) works this long.
PRESIGNED_SECONDS = 300
# Parallel requests when every sidecar is compared at start.
SYNC_CONCURRENCY = 16
TRASH_SUFFIX = "deleting"
# Our object names: a key (32 hex digits), and maybe a sidecar's suffix.
_NAME_RE = re.compile(r"^([0-9a-f]{32})(?:\.(.+))?$")
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_REFUSED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


def parse_url(url: str) -> tuple[str, str]:
    """s3://BUCKET/PREFIX as (bucket, prefix), the prefix '' or ending in '/'."""
    parts = urllib.parse.urlsplit(url)
    prefix = parts.path.strip("/")
    return parts.netloc, prefix + "/" if prefix else ""


class S3Storage(Staging):
    """Audio files as objects in one bucket, under one prefix."""

    def __init__(self, config: Config):
        super().__init__(config.data_dir / "tmp")
        self.bucket, self.prefix = parse_url(config.storage)
        self.label = f"s3://{self.bucket}/{self.prefix}"
        self.path_style = config.s3_path_style
        self.cache = Cache(config.cache_path, config.cache_size)
        self.client = None
        self._stack = AsyncExitStack()
        self._fills: dict[str, asyncio.Task] = {}

    # Lifecycle: one client per process, opened once (open_storage).

    async def open(self) -> None:
        config = AioConfig(
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path" if self.path_style else "auto"},
            # SigV4 everywhere, presigned links too (botocore's default for
            # those is still the old query signature some stores refuse).
            signature_version="s3v4",
            # We send each part's SHA256 ourselves; botocore's own default
            # (a CRC trailer in aws-chunked encoding) is not every store's.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is the SDKs' other name.
        region = os.environ.get("AWS_REGION") or None
        self.client = await self._stack.enter_async_context(
            get_session().create_client("s3", region_name=region, config=config))

    async def close(self) -> None:
        for task in list(self._fills.values()):
            task.cancel()
        await asyncio.gather(*self._fills.values(), return_exceptions=True)
        await self._stack.aclose()

    # Start-up checks.

    async def create(self) -> None:
        await self.check_present()

    async def check_present(self) -> None:
        """StartupError when the bucket is missing or refuses us."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket"):
                raise StartupError(f"the bucket {self.bucket!r} does not exist at "
                                   f"{self._endpoint()}: create it, or check --storage. "
                                   "Nothing was changed.") from None
            if code in _REFUSED:
                raise StartupError(f"the store at {self._endpoint()} refused the credentials "
                                   f"for the bucket {self.bucket!r} ({code}): check "
                                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the "
                                   "profile). Nothing was changed.") from None
            raise StartupError(f"the store at {self._endpoint()} answered {code} for the "
                               f"bucket {self.bucket!r}. Nothing was changed.") from None
        except (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise StartupError(f"the store at {self._endpoint()} cannot be reached ({exc}). "
                               "Nothing was changed.") from None
        await asyncio.to_thread(self._create_local)

    def _create_local(self) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.cache.create()

    def _endpoint(self) -> str:
        return self.client.meta.endpoint_url

    async def count_stored(self) -> int:
        await self.check_present()  # a wrong bucket is not an empty one
        return len(await self.stored_keys())

    # Names and listing.

    def _name(self, key: str, suffix: str | None = None) -> str:
        return self.prefix + key + ("" if suffix is None else "." + suffix)

    async def _list(self) -> dict[tuple[str, str | None], tuple[float, int]]:
        """(key, suffix or None) of each of our objects: its age in seconds, its size."""
        found = {}
        now = time.time()
        with _store_errors("list the stored files"):
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", ()):
                    match = _NAME_RE.match(item["Key"][len(self.prefix):])
                    if match:
                        found[match.groups()] = (now - item["LastModified"].timestamp(),
                                                 item["Size"])
        return found

    async def names(self) -> list[str]:
        """Every object of ours, as `<key>` or `<key>.<suffix>` (for check
        and the tests)."""
        return sorted(key + ("" if suffix is None else "." + suffix)
                      for key, suffix in await self._list())

    async def stored_keys(self) -> set[str]:
        listed = await self._list()
        return {key for key, suffix in listed if suffix is None
                and (key, TRASH_SUFFIX) not in listed}

    async def stored_sizes(self) -> dict[str, int]:
        listed = await self._list()
        return {key: size for (key, suffix), (_, size) in listed.items()
                if suffix is None and (key, TRASH_SUFFIX) not in listed}

    async def sidecar_keys(self) -> set[str]:
        """Keys that have sidecars (the trash marker included), but none
        written within UNREFERENCED_GRACE: reconcile removes those no row
        names, and a younger one may be another instance's upload."""
        ages: dict[str, float] = {}
        for (key, suffix), (age, _) in (await self._list()).items():
            if suffix is not None:
                ages[key] = min(age, ages.get(key, age))
        return {key for key, age in ages.items() if age >= UNREFERENCED_GRACE}

    async def remove_sidecars(self, keys: set[str]) -> None:
        """Remove every sidecar of `keys`, and an object a trash marker says
        was being deleted."""
        await self.remove(sorted(keys))

    # Publishing.

    async def publish(self, uploads: list[Upload], metas: list[bytes]) -> list[str]:
        keys = []
        try:
            for upload, meta in zip(uploads, metas, strict=True):
                key = secrets.token_hex(16)
                keys.append(key)
                await self._put(self._name(key, META_SUFFIX), meta, "store the file")
                sha256 = await self._upload_file(self._name(key), upload.path, "store the file")
                if sha256 != upload.sha256:
                    raise OSError(errno.EIO, "the staged file changed while it was stored")
        except BaseException:
            await asyncio.shield(self._forget(keys))
            raise
        for upload, key in zip(uploads, keys):
            await asyncio.to_thread(self._keep_staged, key, upload)
        return keys

    async def store_as(self, key: str, source: Path, meta: bytes) -> str:
        """Store the local file `source` under `key` with its `.meta`, for
        migrate; the sha256 of the bytes sent."""
        await self._put(self._name(key, META_SUFFIX), meta, "store the file")
        return await self._upload_file(self._name(key), source, "store the file")

    def _keep_staged(self, key: str, upload: Upload) -> None:
        """The staged file becomes the cached copy (its sha256, checked as it
        was sent, is the row's), or goes. The object is stored by now: a
        copy that cannot be kept only costs the next play a trip."""
        try:
            if self.cache.fits(upload.size):
                temp = self.cache.temp_path()
                _link_or_copy(upload.path, temp)
                self.cache.adopt(key, temp, upload.sha256, upload.sha256)
        except OSError as exc:
            log.warning("could not cache %s: %s", key, exc)
        finally:
            upload.path.unlink(missing_ok=True)
            upload.close()

    async def _forget(self, keys: list[str]) -> None:
        """Undo a publish that failed; with the store down, log what stays."""
        try:
            await self.remove(keys)
        except Exception as exc:
            log.error("could not remove the objects of a failed upload (%s); the next "
                      "start removes them: %s", ", ".join(keys), exc)

    async def _upload_file(self, name: str, path: Path, doing: str) -> str:
        """Multipart upload of the local file `path` as `name`, part by part,
        each with its SHA256; the whole file's sha256. Aborted on any failure."""
        with _store_errors(doing):
            created = await self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, ChecksumAlgorithm="SHA256")
        upload_id = created["UploadId"]
        try:
            with _store_errors(doing):
                parts, digest = await self._send_parts(name, upload_id, path)
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
        except BaseException:
            await asyncio.shield(self._abort(name, upload_id))
            raise
        return digest

    async def _send_parts(self, name: str, upload_id: str, path: Path) -> tuple[list, str]:
        parts, whole = [], hashlib.sha256()
        with await asyncio.to_thread(open, path, "rb") as file:
            for number in range(1, 10_001):
                data = await asyncio.to_thread(file.read, PART_SIZE)
                if not data and number > 1:
                    break
                checksum = await asyncio.to_thread(_part_checksum, whole, data)
                sent = await self.client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number,
                    Body=data, ChecksumSHA256=checksum)
                parts.append({"PartNumber": number, "ETag": sent["ETag"],
                              "ChecksumSHA256": checksum})
                if len(data) < PART_SIZE:
                    break
        return parts, whole.hexdigest()

    async def _abort(self, name: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                     UploadId=upload_id)
        except Exception as exc:
            log.error("could not abort the upload of %s (%s); the next start aborts it",
                      name, exc)

    async def remove_temp_leftovers(self) -> list[str]:
        """Local unfinished uploads, and multipart uploads to the store older
        than UNREFERENCED_GRACE (younger ones may be another instance's)."""
        removed = await super().remove_temp_leftovers()
        with _store_errors("list unfinished uploads"):
            listed = await self.client.list_multipart_uploads(Bucket=self.bucket,
                                                              Prefix=self.prefix)
            now = time.time()
            for item in listed.get("Uploads", ()):
                if now - item["Initiated"].timestamp() >= UNREFERENCED_GRACE:
                    await self._abort(item["Key"], item["UploadId"])
                    removed.append(item["Key"][len(self.prefix):])
        return removed

    # Deleting.

    async def trash(self, key: str) -> bool:
        if not await self._object_exists(self._name(key)):
            return False
        await self._put(self._name(key, TRASH_SUFFIX), b"", "delete the file; nothing was deleted")
        return True

    async def untrash(self, key: str) -> None:
        await self._delete([self._name(key, TRASH_SUFFIX)])

    async def restore_trashed(self, rows: set[str]) -> list[str]:
        restored = [key for key, suffix in await self._list()
                    if suffix == TRASH_SUFFIX and key in rows]
        await self._delete([self._name(key, TRASH_SUFFIX) for key in restored])
        return restored

    async def remove(self, keys: list[str]) -> None:
        await asyncio.to_thread(self.cache.evict, keys)
        for key in keys:
            # The marker last: while it is there, what is left is known deleted.
            names = set()
            with _store_errors("delete the file"):
                paginator = self.client.get_paginator("list_objects_v2")
                async for page in paginator.paginate(Bucket=self.bucket,
                                                     Prefix=self._name(key)):
                    names.update(item["Key"] for item in page.get("Contents", ()))
            marker = self._name(key, TRASH_SUFFIX)
            await self._delete(sorted(names - {marker}))
            if marker in names:
                await self._delete([marker])

    async def _delete(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            batch = [{"Key": name} for name in names[start:start + 1000]]
            with _store_errors("delete the file"):
                await self.client.delete_objects(Bucket=self.bucket,
                                                 Delete={"Objects": batch, "Quiet": True})

    # Sidecars.

    async def read_sidecar(self, key: str, suffix: str) -> bytes | None:
        try:
            with _store_errors("read the file's data"):
                got = await self.client.get_object(Bucket=self.bucket,
                                                   Key=self._name(key, suffix))
                async with got["Body"] as body:
                    return await body.read()
        except FileNotFoundError:
            return None

    async def write_sidecar(self, key: str, suffix: str, data: bytes) -> None:
        await self._put(self._name(key, suffix), data, "keep the waveform")

    async def remove_sidecar(self, key: str, suffix: str) -> None:
        await self._delete([self._name(key, suffix)])

    async def read_meta(self, key: str) -> bytes | None:
        return await self.read_sidecar(key, META_SUFFIX)

    async def write_meta(self, key: str, data: bytes) -> None:
        await self._put(self._name(key, META_SUFFIX), data,
                        "change the file's record; nothing was changed")

    async def sync_metas(self, metas: dict[str, bytes]) -> list[str]:
        limit = asyncio.Semaphore(SYNC_CONCURRENCY)

        async def sync(key: str, data: bytes) -> str | None:
            async with limit:
                if await self.read_meta(key) == data:
                    return None
                await self.write_meta(key, data)
                return key
        done = await asyncio.gather(*(sync(key, data) for key, data in metas.items()))
        return [key for key in done if key is not None]

    async def write_sidecar_file(self, key: str, suffix: str, source: Path) -> None:
        """A possibly large local file as a sidecar: streamed in parts, and
        seen whole or not at all (a multipart upload appears when completed)."""
        await self._upload_file(self._name(key, suffix), source, "keep the file's data")

    async def sidecar_size(self, key: str, suffix: str) -> int | None:
        try:
            with _store_errors("read the file's data"):
                head = await self.client.head_object(Bucket=self.bucket,
                                                     Key=self._name(key, suffix))
        except FileNotFoundError:
            return None
        return head["ContentLength"]

    def open_sidecar_range(self, key: str, suffix: str, start: int, end: int
                           ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._ranged_get(self._name(key, suffix), start, end)

    def local_sidecar_path(self, key: str, suffix: str) -> Path | None:
        return None  # sidecars are not cached: every read goes to the store

    async def _put(self, name: str, data: bytes, doing: str) -> None:
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        with _store_errors(doing):
            await self.client.put_object(Bucket=self.bucket, Key=name, Body=data,
                                         ChecksumSHA256=checksum)

    async def _object_exists(self, name: str) -> bool:
        try:
            with _store_errors("look for the file"):
                await self.client.head_object(Bucket=self.bucket, Key=name)
        except FileNotFoundError:
            return False
        return True

    # Reading.

    async def exists(self, key: str) -> bool:
        stored, trashed = await asyncio.gather(
            self._object_exists(self._name(key)),
            self._object_exists(self._name(key, TRASH_SUFFIX)))
        return stored and not trashed

    async def hash_stored(self, key: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        async with self._ranged_get(self._name(key), 0, None) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def open_range(self, key: str, start: int, end: int
                   ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self._start_fill(key)
        return self._ranged_get(self._name(key), start, end)

    @asynccontextmanager
    async def _ranged_get(self, name: str, start: int, end: int | None
                          ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The bytes from `start` to `end` (None: the end) of the object `name`."""
        if end is not None and end <= start:
            yield _nothing()
            return
        wanted = f"bytes={start}-{'' if end is None else end - 1}"
        with _store_errors("read the file"):
            got = await self.client.get_object(Bucket=self.bucket, Key=name, Range=wanted)
        async with got["Body"] as body:
            yield _chunks(body)

    def local_path(self, key: str) -> Path | None:
        """The cached copy, for sendfile; None when it is not cached."""
        return self.cache.get(key)

    @asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """A private link to (or copy of) the cached file, which eviction
        cannot take away from the probe worker; fetched into the cache first
        when it is not there."""
        temp = self.temp_path()
        try:
            cached = self.cache.get(key)
            if cached is None:
                await self._fetch(key, temp)
            else:
                await asyncio.to_thread(_link_or_copy, cached, temp)
            yield temp
        finally:
            temp.unlink(missing_ok=True)

    async def _fetch(self, key: str, dest: Path) -> None:
        """Download `key` into the local file `dest`, and keep a copy in the
        cache when its sha256 is the one its `.meta` (its row's) says."""
        digest = hashlib.sha256()
        with await asyncio.to_thread(open, dest, "xb") as file:
            async with self._ranged_get(self._name(key), 0, None) as chunks:
                async for chunk in chunks:
                    await asyncio.to_thread(_write_hashed, file, digest, chunk)
        expected = await self._meta_sha256(key)
        if expected is not None:
            temp = self.cache.temp_path()
            await asyncio.to_thread(_link_or_copy, dest, temp)
            await asyncio.to_thread(self.cache.adopt, key, temp, digest.hexdigest(), expected)

    async def _meta_sha256(self, key: str) -> str | None:
        try:
            return decode(await self.read_meta(key) or b"")["sha256"]
        except ValueError:
            return None

    def _start_fill(self, key: str) -> None:
        """Fill the cache with `key` in the background, once: the next play
        is served from the local disk."""
        if key in self._fills or self.cache.size <= 0:
            return
        task = asyncio.ensure_future(self._fill(key))
        self._fills[key] = task
        task.add_done_callback(lambda _: self._fills.pop(key, None))

    async def _fill(self, key: str) -> None:
        temp = self.temp_path()
        try:
            if await asyncio.to_thread(self.cache.get, key) is None:
                await self._fetch(key, temp)
        except Exception as exc:  # the play itself is answered regardless
            log.warning("could not cache %s: %s", key, exc)
        finally:
            temp.unlink(missing_ok=True)

    async def presigned_url(self, key: str, content_type: str, disposition: str) -> str:
        """A link the store answers without us, for PRESIGNED_SECONDS."""
        return await self.client.generate_presigned_url(
            "get_object", ExpiresIn=PRESIGNED_SECONDS,
            Params={"Bucket": self.bucket, "Key": self._name(key),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition,
                    "ResponseCacheControl": "private, no-store"})


@contextmanager
def _store_errors(doing: str):
    """What the store answered, as our errors: a missing object is a
    FileNotFoundError; anything else a 503 telling the client to retry."""
    try:
        yield
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            raise FileNotFoundError(errno.ENOENT, "no such object") from None
        log.error("the object store refused to %s: %s", doing, exc)
        raise _unavailable(doing) from None
    except (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
        log.error("the object store did not answer (%s): %s", doing, exc)
        raise _unavailable(doing) from None


def _unavailable(doing: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"the server's storage is not answering, so it could not {doing}; nothing was "
        f"changed. Try again in {RETRY_AFTER} seconds, or ask the operator to check "
        "the object store", retry_after=RETRY_AFTER)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _part_checksum(whole, data: bytes) -> str:
    whole.update(data)
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _write_hashed(file, digest, chunk: bytes) -> None:
    digest.update(chunk)
    file.write(chunk)


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(source, dest)


async def _chunks(body) -> AsyncIterator[bytes]:
    with _store_errors("read the file"):
        async for chunk in body.iter_chunks(READ_CHUNK):
            yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield
