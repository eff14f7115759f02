"""Receiving uploads: a raw body (?name=) or multipart `file` parts.

Bytes stream to temporary files chunk by chunk, so memory does not grow
with the file; sizes are counted as they arrive because a streamed part has
no length aiohttp could check for us. Anything that goes wrong discards
every file of the request: several files are stored all or none.
"""

from http import HTTPStatus

import aiohttp
from aiohttp import web

from ..auth import SESSION_COOKIE, require_uploader, viewer
from ..errors import AudioServerError, BadRequest, NameTaken, TooLarge
from ..library import Staged
from ..names import validate_name
from .auth import CSRF_FIELD, check_csrf
from .bodies import MALFORMED_BODY, Pace, check_field_size
from .keys import auth_key, config_key, csrf_pending_key, library_key, user_key
from .middlewares import problem
from .multipart import MultipartForm, boundary_of

CHUNK_SIZE = 256 * 1024
# Parts of one multipart upload: a folder's worth of files, not a flood of
# tiny parts that each cost a temporary file.
MAX_PARTS = 1000
# What a cut-off body looks like to the handler, depending on how it ended.
CUT_OFF = (aiohttp.ClientPayloadError, ConnectionResetError, EOFError)


async def receive(request: web.Request) -> tuple[list[Staged], dict[str, str]]:
    """Stream the request's files to temporary storage; check name and size.
    Also the form's other fields (a raw upload's query string)."""
    if "name" in request.query:
        return [await _receive_raw(request)], dict(request.query)
    if request.content_type.startswith("multipart/"):
        return await _receive_multipart(request)
    raise BadRequest(
        "send the file as multipart/form-data parts named 'file', "
        "or send its bytes as the body with ?name=NAME"
    )


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """Answer `Expect: 100-continue` with a final error when the headers
    already show one, so curl does not send a body we would refuse."""
    if request.headers.get("Expect", "").lower() != "100-continue":
        return problem(request, HTTPStatus.EXPECTATION_FAILED,
                       "the only Expect this server understands is 100-continue")
    try:
        if not _has_credentials(request):
            # This runs before the middlewares: with no credentials at all,
            # whether an upload is refused is known before its body comes.
            require_uploader(request.app[auth_key], None)
        if "name" in request.query:
            await _check_raw_headers(request)
    except AudioServerError as exc:
        return problem(request, exc.status, exc.detail, exc.extra, exc.headers)
    if request.version >= aiohttp.HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


def _has_credentials(request: web.Request) -> bool:
    return "Authorization" in request.headers or SESSION_COOKIE in request.cookies


async def _check_raw_headers(request: web.Request) -> str:
    name = validate_name(request.query.get("name"))
    limit = request.app[config_key].max_upload_size
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(name, limit)
    await _check_free(request, name)
    return name


async def _receive_raw(request: web.Request) -> Staged:
    name = await _check_raw_headers(request)
    pace = Pace(request)
    return await _stream(request, name, lambda: pace.read(request.content.readany))


async def _receive_multipart(request: web.Request) -> tuple[list[Staged], dict[str, str]]:
    staged: list[Staged] = []
    fields = dict(request.query)
    pace = Pace(request)
    try:
        reader = MultipartForm(lambda: pace.read(request.content.readany),
                               boundary_of(request.headers.get("Content-Type", "")))
        parts = 0
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS:
                raise TooLarge(f"the form has more than {MAX_PARTS} parts; send the files "
                               "in several uploads")
            if part.name != "file":
                # Small fields (visibility, csrf_token) come before the files.
                fields[part.name or ""] = await _field_value(part)
                continue
            if csrf_token := request.get(csrf_pending_key):
                check_csrf(csrf_token, fields.get(CSRF_FIELD))
            if not part.filename:
                if await part.read_chunk():
                    raise BadRequest("a 'file' part has no filename; its filename is "
                                     "the audio's name")
                continue  # a form submitted with no file chosen
            name = validate_name(part.filename)
            if any(item.name == name for item in staged):
                raise BadRequest(f"{name!r} is sent twice in this upload", name=name)
            await _check_free(request, name)
            staged.append(await _stream(request, name, part.read_chunk))
    except BaseException as exc:
        await request.app[library_key].discard(staged)
        if isinstance(exc, MALFORMED_BODY):
            raise BadRequest(f"the multipart body is malformed: {exc}") from None
        raise
    if not staged:
        raise BadRequest("the form has no file: send at least one part named 'file'")
    return staged, fields


async def _field_value(part) -> str:
    """A form field that is not a file (a visibility, a CSRF token), read
    whole: so it must be small."""
    value = b""
    while chunk := await part.read_chunk():
        value += chunk
        check_field_size(part.name, len(value))
    return value.decode("utf-8", "replace")


async def _stream(request: web.Request, name: str, read) -> Staged:
    """Copy chunks from `read()` into a new temporary file until it gives b''."""
    library = request.app[library_key]
    limit = request.app[config_key].max_upload_size
    upload = await library.storage.open_upload()
    try:
        received, batch, batched = 0, [], 0
        while chunk := await read():
            received += len(chunk)
            if received > limit:
                raise _too_large(name, limit)
            batch.append(chunk)
            batched += len(chunk)
            # Fewer, larger writes: each one is a trip to a thread.
            if batched >= CHUNK_SIZE:
                await upload.write(batch)
                batch, batched = [], 0
        await upload.write(batch)
        await library.storage.finish(upload)
    except CUT_OFF:
        await library.storage.discard(upload)
        raise BadRequest(f"the upload of {name!r} was cut off; nothing was stored",
                         name=name) from None
    except BaseException:
        await library.storage.discard(upload)
        raise
    return Staged(name, upload)


async def _check_free(request: web.Request, name: str) -> None:
    """Refuse early what the UNIQUE constraint would refuse at the end. The
    answer says the name is taken only to who may see the file holding it.
    (An Expect: 100-continue check runs before sign-in is known: it speaks
    as to someone signed out.)"""
    db = request.app[library_key].db
    if await db.exists(name):
        me = viewer(request.app[auth_key], request.get(user_key))
        raise NameTaken(name, visible=await db.exists(name, me))


def _too_large(name: str, limit: int) -> TooLarge:
    return TooLarge(
        f"{name!r} is larger than this server accepts ({limit} bytes); "
        "the operator sets the limit with --max-upload-size",
        name=name, max_upload_size=limit,
    )
