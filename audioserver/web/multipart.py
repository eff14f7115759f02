"""A streaming multipart/form-data parser for uploads, over the raw body.

aiohttp's BodyPartReader copies every byte of a part several times (a window
of two chunks, slices, data pushed back into the stream) on the event loop:
a 500 MB form cost a quarter second more of the loop's time than the same
bytes sent raw. Here a part's bytes come out as memoryviews of the chunks
the connection received: the only search is one bytes.find of the delimiter
per chunk, and the only copies are of the few bytes that may hold the start
of a delimiter split across two chunks. Headers are parsed with aiohttp's
own helpers, so names and filenames read exactly as before.

Anything that is not a well-formed form raises MalformedMultipart (a
ValueError, which uploads.py answers with a 400).
"""

from typing import Awaitable, Callable

from aiohttp.helpers import parse_mimetype
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

# RFC 2046: a boundary is 1 to 70 characters.
MAX_BOUNDARY = 70
# A part's header block (its name, filename and type); a browser's is ~150 bytes.
MAX_HEADERS = 8 * 1024
# Bytes before the first boundary, which a form has none of but RFC 2046 allows.
MAX_PREAMBLE = 8 * 1024


class MalformedMultipart(ValueError):
    pass


def boundary_of(content_type: str) -> bytes:
    """The boundary a multipart Content-Type header names."""
    boundary = parse_mimetype(content_type).parameters.get("boundary", "")
    if not 0 < len(boundary) <= MAX_BOUNDARY:
        raise MalformedMultipart("its Content-Type names no boundary of 1 to 70 characters")
    return boundary.encode("latin-1", "replace")


class Part:
    """One part: its form field name, its filename, and its bytes as chunks."""

    def __init__(self, form: "MultipartForm", headers: dict[str, str]):
        self._form = form
        _, params = parse_content_disposition(headers.get("content-disposition"))
        self.name: str | None = params.get("name")
        self.filename: str | None = content_disposition_filename(params, "filename")

    async def read_chunk(self) -> memoryview | bytes:
        """The next bytes of this part; b'' at its end."""
        return await self._form.read_body()


class MultipartForm:
    """The parts of a multipart body read by `read()` (chunks; b'' at its end)."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], boundary: bytes):
        self._read = read
        # The first boundary may start the body: as if a line ended before it.
        self._buf = b"\r\n"
        self._pos = 0
        self._delimiter = b"\r\n--" + boundary
        self._in_body = False
        self._closed = False

    async def next(self) -> Part | None:
        """The next part, once the one before is read or skipped; None after the last."""
        while self._in_body:
            await self.read_body()
        if self._closed:
            return None
        # Each _find may read more, which moves what is kept to the buffer's
        # start: positions are taken from self._pos after it, never before.
        start = await self._find(self._delimiter, MAX_PREAMBLE, "before the first boundary")
        self._pos = start + len(self._delimiter)
        await self._have(2)
        if self._buf[self._pos:self._pos + 2] == b"--":
            self._closed = True  # what follows the closing boundary is ignored
            return None
        line_end = await self._find(b"\r\n", MAX_HEADERS, "after a boundary")
        if self._buf[self._pos:line_end].strip(b" \t"):
            raise MalformedMultipart("a boundary line has more after the boundary")
        self._pos = line_end  # the block ends with an empty line: CRLF CRLF
        headers_end = await self._find(b"\r\n\r\n", MAX_HEADERS, "in a part's headers")
        headers = _parse_headers(self._buf[self._pos + 2:headers_end])
        self._pos = headers_end + 4
        self._in_body = True
        return Part(self, headers)

    async def read_body(self) -> memoryview | bytes:
        """The next bytes of the current part; b'' at its end (then the
        delimiter that ends it is left for next())."""
        if not self._in_body:
            return b""
        while True:
            buf, pos = self._buf, self._pos
            found = buf.find(self._delimiter, pos)
            if found >= 0:
                self._pos = found
                if found == pos:
                    self._in_body = False
                    return b""
                return memoryview(buf)[pos:found]
            # Past this, the bytes may be the start of a delimiter.
            safe = len(buf) - len(self._delimiter) + 1
            if safe > pos:
                self._pos = safe
                return memoryview(buf)[pos:safe]
            chunk = await self._read()
            if not chunk:
                raise MalformedMultipart("the body ends inside a part, before its boundary")
            # The few bytes kept back, and the new chunk: copied together
            # only if a delimiter may start in the one and end in the other
            # (a chunk shorter than a delimiter may hold part of one).
            rest, size = buf[pos:], len(self._delimiter)
            if len(chunk) < size or (rest + chunk[:size]).find(self._delimiter) >= 0:
                self._buf, self._pos = rest + chunk, 0
            elif rest:
                self._buf, self._pos = chunk, 0
                return rest
            else:
                self._buf, self._pos = chunk, 0

    async def _find(self, what: bytes, limit: int, where: str) -> int:
        """The index of `what` in the buffer from the current position,
        reading more as needed, within `limit` bytes."""
        while True:
            found = self._buf.find(what, self._pos)
            if found >= 0:
                return found
            if len(self._buf) - self._pos > limit:
                raise MalformedMultipart(f"more than {limit} bytes {where}")
            await self._more()

    async def _have(self, count: int) -> None:
        while len(self._buf) - self._pos < count:
            await self._more()

    async def _more(self) -> None:
        """Append a chunk to what is left of the buffer (only headers and
        boundaries are read so: a few bytes)."""
        chunk = await self._read()
        if not chunk:
            raise MalformedMultipart("the body ends before its closing boundary")
        self._buf = self._buf[self._pos:] + chunk
        self._pos = 0


def _parse_headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.split(b"\r\n") if block else []:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MalformedMultipart("a part's header line has no name")
        headers[name.strip().decode("latin-1").lower()] = (
            value.strip().decode("utf-8", "surrogateescape"))
    return headers
