"""Serving a stored file or a large sidecar of it (a preview): conditional
requests, one byte range, sendfile.

A storage with the file on this machine gives its path, and the kernel
sends it (sendfile); any other streams the range from the storage.

aiohttp's FileResponse derives its ETag from mtime and size and honours
If-Range only as a date; here the ETag is the content's SHA-256 (strong and
stable across restores) and If-Range takes either form, as RFC 9110 says.
"""

import asyncio
import functools
import re
import unicodedata
import urllib.parse
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, NamedTuple

from aiohttp import web

from ..errors import NotFound, RangeNotSatisfiable
from ..models import AudioRecord
from ..storage import Storage
from .caching import file_cache_control

# [0-9], not \d: HTTP's DIGIT is ASCII, and \d would take "bytes=٠-٩" for 0-9.
_RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")


class Body(NamedTuple):
    """What is sent: the stored file or one of its large sidecars."""

    etag: str
    size: int
    content_type: str
    filename: str
    local_path: Callable[[], Path | None]
    open_range: Callable[[int, int], AbstractAsyncContextManager[AsyncIterator[bytes]]]
    # --s3-redirect: a short-lived link from which the store serves the
    # bytes, given the type and disposition; None to send them ourselves.
    presigned_url: Callable[[str, str], Awaitable[str]] | None = None


def stored_file(record: AudioRecord, storage: Storage, redirect: bool = False) -> Body:
    key = record.storage_key
    # Only an object store has links to give (config.py checks --s3-redirect).
    presigned_url = functools.partial(storage.presigned_url, key) if redirect else None
    return Body(f'"{record.sha256}"', record.size, record.content_type, record.name,
                lambda: storage.local_path(key),
                lambda start, end: storage.open_range(key, start, end), presigned_url)


def stored_sidecar(record: AudioRecord, storage: Storage, suffix: str, etag: str, size: int,
                   content_type: str, filename: str) -> Body:
    key = record.storage_key
    return Body(etag, size, content_type, filename,
                lambda: storage.local_sidecar_path(key, suffix),
                lambda start, end: storage.open_sidecar_range(key, suffix, start, end))


async def file_response(request: web.Request, record: AudioRecord, body: Body, inline: bool
                        ) -> web.StreamResponse:
    """`body`, a file of `record`, with conditional requests and ranges."""
    modified = datetime.fromisoformat(record.created_at).replace(microsecond=0)
    headers = {
        "ETag": body.etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": file_cache_control(record),
        "Accept-Ranges": "bytes",
    }
    if _not_modified(request, body.etag, modified):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = body.content_type
    headers["Content-Disposition"] = content_disposition(body.filename, inline)
    if body.presigned_url is not None:
        return await _redirect(body, headers)
    byte_range = None
    if _range_applies(request, body.etag, modified):
        byte_range = parse_range(request.headers.get("Range", ""), body.size)
    return await _send(request, body, byte_range, headers)


async def _redirect(body: Body, headers: dict) -> web.Response:
    """--s3-redirect: the store serves the bytes (ranges included) from a
    short-lived presigned URL, which only we make: nothing of the request
    goes into it but the record's own name and type."""
    url = await body.presigned_url(headers["Content-Type"], headers["Content-Disposition"])
    # The link expires: no cache may keep the redirect.
    return web.Response(status=302, headers={
        "Location": url, "Cache-Control": "private, no-store", "ETag": headers["ETag"]})


async def _send(request, body: Body, byte_range, headers: dict) -> web.StreamResponse:
    start, count, status = 0, body.size, 200
    if byte_range is not None:
        start, end = byte_range
        count, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{body.size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    # Opened before the headers go, so a file deleted meanwhile is still a 404.
    async with AsyncExitStack() as stack:
        file = None
        try:
            file = await _open_local(body)
            if file is not None:
                # Read-only: closing does not wait for the disk.
                stack.callback(file.close)
            else:
                chunks = await stack.enter_async_context(body.open_range(start, start + count))
        except FileNotFoundError:
            raise NotFound("the file was deleted while it was being requested") from None
        await response.prepare(request)
        if request.method != "HEAD" and count:
            if file is not None:
                await asyncio.get_running_loop().sendfile(request.transport, file, start, count)
            else:
                async for chunk in chunks:
                    await response.write(chunk)
        await response.write_eof()
        return response


async def _open_local(body: Body):
    """The file opened on this machine, for sendfile; None when there is
    none. A cached copy evicted meanwhile is only a miss: open_range asks
    the storage again (and on the local disk, finds the file gone too)."""
    path = body.local_path()
    if path is None:
        return None
    try:
        return await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        return None


def etag_matches(request: web.Request, etag: str) -> bool | None:
    """Whether If-None-Match names `etag`; None when the header is absent."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is None:
        return None
    # Weak comparison, as RFC 9110 requires for If-None-Match.
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _not_modified(request: web.Request, etag: str, modified: datetime) -> bool:
    matches = etag_matches(request, etag)
    if matches is not None:
        return matches
    since = _http_date(request.headers.get("If-Modified-Since"))
    return since is not None and modified <= since


def _range_applies(request: web.Request, etag: str, modified: datetime) -> bool:
    """A Range counts unless an If-Range says the client's copy is stale."""
    if "Range" not in request.headers:
        return False
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"'):
        return if_range == etag  # strong comparison
    return _http_date(if_range) == modified


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single range; None to send the whole file.

    Several ranges, or a header that does not parse, are ignored (the whole
    file is sent), which RFC 9110 allows; a range past the end is a 416.
    """
    match = _RANGE_RE.match(header.strip().replace(" ", ""))
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"the range starts past the end of the file, which is {size} bytes long",
        headers={"Content-Range": f"bytes */{size}"},
    )


def _http_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    # HTTP dates are GMT; asctime's form, which RFC 9110 says to accept,
    # names no zone and parses naive, which cannot be compared with ours.
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def content_disposition(name: str, inline: bool) -> str:
    """RFC 6266: an ASCII fallback for old clients, and the exact name in UTF-8."""
    # Accents come off (é -> e); what has no ASCII form becomes '_'.
    decomposed = unicodedata.normalize("NFKD", name)
    fallback = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    fallback = re.sub(r'[^\x20-\x7e]|["\\%]', "_", fallback)
    quoted = urllib.parse.quote(name, safe="")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"
