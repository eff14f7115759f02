"""The uploads' multipart parser (audioserver/web/multipart.py), fed real
bodies cut into chunks of every size, so each boundary, header and CRLF
falls across two chunks somewhere."""

import os

import pytest

from audioserver.web.multipart import MalformedMultipart, MultipartForm, boundary_of

BOUNDARY = b"----formboundary7MA4YWxk"
# Bytes that look like the start of the delimiter without being it.
TRICKY = b"\r\n--" + BOUNDARY[:-1] + b"X\r\n-\r\n--\r\n" + BOUNDARY + b"\n--"
SIZES = [1, 2, 3, 5, 7, 13, 29, 64, 1000, 10**9]


def body(*parts: tuple[bytes, bytes], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = preamble
    for headers, data in parts:
        out += b"--" + BOUNDARY + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n" + epilogue


def field(name: str, filename: str | None = None) -> bytes:
    value = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return b"Content-Disposition: " + value.encode()


def reader(data: bytes, size: int):
    chunks = [data[i:i + size] for i in range(0, len(data), size)]

    async def read() -> bytes:
        return chunks.pop(0) if chunks else b""
    return read


async def whole(part) -> bytes:
    content = b""
    while chunk := await part.read_chunk():
        content += chunk
    return content


async def parse(data: bytes, size: int) -> list[tuple[str | None, str | None, bytes]]:
    form = MultipartForm(reader(data, size), BOUNDARY)
    parts = []
    while (part := await form.next()) is not None:
        parts.append((part.name, part.filename, await whole(part)))
    return parts


@pytest.mark.parametrize("size", SIZES)
async def test_parts_are_read_whole_however_the_body_is_cut(size):
    audio = os.urandom(3000) + TRICKY + os.urandom(100)
    data = body((field("csrf_token"), b"t0ken"),
                (field("file", "a song.wav") + b"\r\nContent-Type: audio/wav", audio),
                (field("file", "empty.wav"), b""),
                (field("file", "tricky.wav"), TRICKY),
                preamble=b"ignored preamble\r\n", epilogue=b"ignored epilogue")
    assert await parse(data, size) == [
        ("csrf_token", None, b"t0ken"), ("file", "a song.wav", audio),
        ("file", "empty.wav", b""), ("file", "tricky.wav", TRICKY)]


@pytest.mark.parametrize("size", SIZES)
async def test_an_unread_part_is_skipped(size):
    data = body((field("file", "a.wav"), b"x" * 500), (field("visibility"), b"private"))
    form = MultipartForm(reader(data, size), BOUNDARY)
    first = await form.next()
    assert first.filename == "a.wav"
    second = await form.next()
    assert (second.name, await whole(second)) == ("visibility", b"private")
    assert await form.next() is None


async def test_filenames_read_as_aiohttp_reads_them():
    headers = (b"Content-Disposition: form-data; name=\"file\"; "
               b"filename*=UTF-8''Caf%C3%A9%20no%201.wav")
    assert await parse(body((headers, b"1")), 7) == [("file", "Caf\u00e9 no 1.wav", b"1")]
    raw = 'form-data; name="file"; filename="Café.wav"'.encode()
    assert await parse(body((b"Content-Disposition: " + raw, b"1")), 7) == [
        ("file", "Caf\u00e9.wav", b"1")]


@pytest.mark.parametrize("data", [
    body((field("file", "a.wav"), b"123"))[:-12],  # no closing boundary
    b"no boundary at all",
    b"--" + BOUNDARY + b"\r\n" + field("file", "a.wav"),  # headers never end
    b"--" + BOUNDARY + b"junk\r\n\r\n\r\n--" + BOUNDARY + b"--",  # a longer boundary
    b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\nx\r\n--" + BOUNDARY + b"--",
    b"--" + BOUNDARY + b"\r\n" + b"X-Long: " + b"a" * 10000 + b"\r\n\r\n",
    b"x" * 10_000,  # a preamble that never ends
])
@pytest.mark.parametrize("size", [1, 7, 10**9])
async def test_a_malformed_body_raises_a_value_error(data, size):
    with pytest.raises(MalformedMultipart):
        await parse(data, size)


def test_the_boundary_comes_from_the_content_type():
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of("multipart/form-data; boundary=xyz") == b"xyz"
    for header in ("multipart/form-data", "multipart/form-data; boundary=" + "x" * 71):
        with pytest.raises(MalformedMultipart):
            boundary_of(header)
