"""Request handlers: thin, each one JSON for machines and a page for people."""

import json
from dataclasses import replace

from aiohttp import web
from yarl import URL

from .. import auth, edits
from ..errors import BadRequest, NameTaken, NotFound, TooLarge, UnsupportedMediaType
from ..library import COVER_SUFFIX
from ..media import preview as previews
from ..media import waveform
from ..media.tags import image_type
from ..models import SORT_COLUMNS, AudioRecord, ListQuery
from ..names import validate_name
from . import librarypage, openapi, uploads
from .answers import InfoAnswer, ListAnswer, etag, record_etag
from .caching import file_cache_control
from .downloads import etag_matches, file_response, stored_file, stored_sidecar
from .keys import answers_key, auth_key, config_key, library_key, user_key
from .listing import parse_list_query, query_params
from .negotiation import wants_html
from .templating import render

TRUE_WORDS = ("1", "true", "yes", "on")
# RFC 7396's type first; plain JSON means the same here.
PATCH_TYPES = ("application/merge-patch+json", "application/json")
# Every editable field at its longest, four bytes a character, fits.
MAX_PATCH_BYTES = 64 * 1024
REPRESENTATIONS = ("html", "json")


async def index(request: web.Request) -> web.Response:
    count, duration = await request.app[library_key].db.summary(_viewer(request))
    setup_pending = await request.app[auth_key].setup_pending()
    return render(request, "index.html", {"count": count, "duration": duration,
                                          "setup_pending": setup_pending})


async def upload_form(request: web.Request) -> web.Response:
    rules = request.app[auth_key]
    if not rules.open and request[user_key] is None:
        # Only accounts upload: sign in first, then come back here.
        login = _url(request, "login").with_query(next=str(request.rel_url))
        raise web.HTTPSeeOther(login)
    config = request.app[config_key]
    return render(request, "upload.html", {"max_size": config.max_upload_size,
                                           "default_visibility": config.default_visibility})


async def upload(request: web.Request) -> web.StreamResponse:
    rules = request.app[auth_key]
    owner = auth.require_uploader(rules, request[user_key])
    # A wrong ?visibility= fails before the body is read, not after.
    auth.parse_visibility(rules, request.query.get("visibility"))
    staged, fields = await uploads.receive(request)
    try:
        visibility = auth.parse_visibility(rules, fields.get("visibility"))
    except BadRequest:
        await request.app[library_key].discard(staged)
        raise
    records = await request.app[library_key].add(staged, owner, visibility)
    location = _info_url(request, records[0].name)
    if wants_html(request):
        raise web.HTTPSeeOther(location if len(records) == 1 else _url(request, "list"))
    body = records[0].public() if len(records) == 1 else [r.public() for r in records]
    return web.json_response(body, status=201, headers={"Location": str(location)})


async def download(request: web.Request) -> web.StreamResponse:
    name = _name_param(request, "download")
    if name is None:
        return _ask_name(request, "download")
    library = request.app[library_key]
    record = await library.db.get(name, _viewer(request))
    inline = request.query.get("inline", "").lower() in TRUE_WORDS
    redirect = request.app[config_key].s3_redirect
    return await file_response(request, record, stored_file(record, library.storage, redirect),
                               inline)


async def preview(request: web.Request) -> web.StreamResponse:
    """What a player plays: the file itself where every browser plays it,
    otherwise its preview (media/preview.py), made on the first request."""
    library = request.app[library_key]
    record = await library.db.get(_name_param(request, "preview", ask=False), _viewer(request))
    etag = previews.etag(record)
    made = await library.previews.preview(record)
    if made is None:
        body = stored_file(record, library.storage)._replace(etag=etag)
    else:
        stem = record.name.rsplit(".", 1)[0] or record.name
        filename = f"{stem}.{made.suffix.rsplit('.', 1)[1]}"
        body = stored_sidecar(record, library.storage, made.suffix, etag, made.size,
                              made.content_type, filename)
    return await file_response(request, record, body, inline=True)


async def cover(request: web.Request) -> web.StreamResponse:
    """The cover art read from the file's tags: a JPEG, PNG or WebP, checked
    by its bytes again as it is served (nosniff comes with every answer)."""
    library = request.app[library_key]
    record = await library.db.get(_name_param(request, "cover", ask=False), _viewer(request))
    data = None
    if record.cover is not None:
        data = await library.storage.read_sidecar(record.storage_key, COVER_SUFFIX)
    if data is None or image_type(data) != record.cover:
        raise NotFound(f"{record.name!r} has no cover art", name=record.name)
    headers = {"ETag": f'"cover-{record.sha256}"', "Cache-Control": file_cache_control(record)}
    if etag_matches(request, headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type=record.cover, headers=headers)


async def list_audio(request: web.Request) -> web.StreamResponse:
    if not wants_html(request):
        return await _list_json(request)
    query = parse_list_query(request.query)
    db, viewer = request.app[library_key].db, _viewer(request)
    records, total, more = await db.search(query, viewer)
    more = librarypage.next_exists(query, more) and bool(records)
    next_url = request.url.join(_next_page(request, query, records)) if more else None
    headers = {"X-Total-Count": str(total)}
    if next_url is not None:
        headers["Link"] = f'<{next_url}>; rel="next"'
    context = {"records": records, "total": total, "query": query, "next_url": next_url,
               "first_url": _first_page_url(request, query),
               "sort_urls": _sort_urls(request, query),
               **await librarypage.page_context(request, db, viewer, query, records)}
    return _page(request, "list.html", context, headers)


async def _list_json(request: web.Request) -> web.StreamResponse:
    """The JSON of a page, kept (answers.py) until the library changes."""
    db, answers, viewer = request.app[library_key].db, request.app[answers_key], \
        _viewer(request)
    version = await db.data_version()  # first: see answers.py
    # Keyed by the query string exactly as sent: the same bytes parse to the
    # same query, and a kept answer's query was parsed (so checked) before.
    key = ("list", request.rel_url.raw_query_string, viewer)

    async def make() -> ListAnswer:
        query = parse_list_query(request.query)
        records, total, more = await db.search(query, viewer)
        more = librarypage.next_exists(query, more) and bool(records)
        body = json.dumps([r.public() for r in records]).encode()
        next_page = _next_page(request, query, records) if more else None
        return ListAnswer(body, etag(body, str(total).encode(), str(next_page).encode()),
                          total, next_page)

    answer = await answers.answer(version, key, make)
    if etag_matches(request, answer.etag):
        return web.Response(status=304, headers={"ETag": answer.etag})
    headers = {"X-Total-Count": str(answer.total), "ETag": answer.etag}
    if answer.next_page is not None:
        headers["Link"] = f'<{request.url.join(answer.next_page)}>; rel="next"'
    return web.Response(body=answer.body, content_type="application/json", headers=headers)


async def info(request: web.Request) -> web.StreamResponse:
    name = _name_param(request, "info")
    if name is None:
        return _ask_name(request, "info")
    if not wants_html(request):
        return await _info_json(request, name)
    record = await request.app[library_key].db.get(name, _viewer(request))
    may_change = auth.may_change(request.app[auth_key], request[user_key], record)
    return _page(request, "info.html", {"record": record, "may_change": may_change,
                                        "previewed": not previews.plays_natively(record)})


async def _info_json(request: web.Request, name: str) -> web.StreamResponse:
    """A file's JSON, kept (answers.py) until the library changes."""
    db, answers, viewer = request.app[library_key].db, request.app[answers_key], \
        _viewer(request)
    version = await db.data_version()  # first: see answers.py

    async def make() -> InfoAnswer:
        record = await db.get(name, viewer)
        return InfoAnswer(json.dumps(record.public()).encode(), record_etag(record))

    answer = await answers.answer(version, ("info", name, viewer), make)
    if etag_matches(request, answer.etag):
        return web.Response(status=304, headers={"ETag": answer.etag})
    return web.Response(body=answer.body, content_type="application/json", charset="utf-8",
                        headers={"ETag": answer.etag})


async def patch_info(request: web.Request) -> web.StreamResponse:
    """PATCH /info?name=: a JSON merge patch of the name and text fields."""
    if request.content_type not in PATCH_TYPES:
        raise UnsupportedMediaType(f"send the changes as {PATCH_TYPES[0]} (a JSON object of "
                                   "the fields to change, null to remove one)")
    record = await _changeable(request, request.query.get("name"))
    try:
        patch = json.loads(await _small_body(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not JSON ({exc})") from None
    record = await _edit(request, record, edits.from_merge_patch(patch))
    return web.json_response(record.public())


async def edit_info(request: web.Request) -> web.StreamResponse:
    """POST /info?name=: the info page's edit form, the same changes as PATCH."""
    fields = await request.post()
    record = await _changeable(request, request.query.get("name"))
    record = await _edit(request, record, edits.from_form(fields))
    if wants_html(request):
        raise web.HTTPSeeOther(_info_url(request, record.name))
    return web.json_response(record.public())


async def _changeable(request: web.Request, raw: str | None) -> AudioRecord:
    if raw is None:
        raise BadRequest("say which file to change: /info?name=NAME", name=None)
    record = await request.app[library_key].db.get(validate_name(raw), _viewer(request))
    auth.check_may_change(request.app[auth_key], request[user_key], record)
    return record


async def _edit(request: web.Request, record: AudioRecord, changes: dict) -> AudioRecord:
    library = request.app[library_key]
    try:
        return await library.edit(record.name, changes)
    except NameTaken as exc:
        # Only who may see the file holding the name learns it is taken.
        visible = await library.db.exists(changes["name"], _viewer(request))
        raise NameTaken(changes["name"], visible=visible) from exc


async def _small_body(request: web.Request) -> bytes:
    # Read already, within its time (bodies.read_small_body): here it is checked.
    body = await request.read()
    if len(body) > MAX_PATCH_BYTES:
        raise TooLarge(f"an edit is at most {MAX_PATCH_BYTES} bytes")
    return body


async def waveform_peaks(request: web.Request) -> web.StreamResponse:
    library = request.app[library_key]
    record = await library.db.get(_name_param(request, "waveform", ask=False), _viewer(request))
    points = waveform.parse_points(request.query.get("points"))
    headers = {"ETag": waveform.etag(record, points), "Cache-Control": "no-cache"}
    if etag_matches(request, headers["ETag"]):
        return web.Response(status=304, headers=headers)
    body = await library.waveforms.peaks_json(record, points)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def delete_form(request: web.Request) -> web.StreamResponse:
    return _ask_name(request, "delete")


async def delete(request: web.Request) -> web.StreamResponse:
    raw = request.query.get("name")
    if raw is None and request.method == "POST":
        raw = (await request.post()).get("name")  # the ask-name form's field
    if raw is None:
        raise BadRequest("say which file to delete: /delete?name=NAME", name=None)
    library = request.app[library_key]
    record = await library.db.get(validate_name(raw), _viewer(request))
    auth.check_may_change(request.app[auth_key], request[user_key], record)
    await library.remove(record.name)
    if wants_html(request):
        # The library page says what went (librarypage.deleted_notice).
        raise web.HTTPSeeOther(_url(request, "list").with_query(deleted=record.name))
    return web.Response(status=204)


async def set_visibility(request: web.Request) -> web.StreamResponse:
    """POST /visibility?name=…&visibility=public|private (or the same as form fields)."""
    fields = {**(await request.post()), **request.query}
    if not fields.get("name") or not fields.get("visibility"):
        raise BadRequest("say which file and what it becomes: "
                         "/visibility?name=NAME&visibility=public|private")
    rules = request.app[auth_key]
    library = request.app[library_key]
    record = await library.db.get(validate_name(fields["name"]), _viewer(request))
    auth.check_may_change(rules, request[user_key], record)
    visibility = auth.parse_visibility(rules, fields["visibility"])
    record = await library.set_visibility(record.name, visibility)
    if wants_html(request):
        raise web.HTTPSeeOther(_info_url(request, record.name))
    return web.json_response(record.public())


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def _viewer(request: web.Request):
    return auth.viewer(request.app[auth_key], request[user_key])


def _info_url(request: web.Request, name: str) -> URL:
    return _url(request, "info").with_query(name=name)


def _url(request: web.Request, route: str) -> URL:
    return request.app.router[route].url_for()


def _page(request: web.Request, template: str, context: dict,
          headers: dict | None = None) -> web.Response:
    """A page, pointing at its JSON twin: the same URL with ?format=json."""
    response = render(request, template, context)
    response.headers.update(headers or {})
    response.headers.add("Link", f'<{_json_twin(request)}>; rel="alternate"; type="application/json"')
    return response


def _json_twin(request: web.Request) -> URL:
    """This URL asking for JSON. Only the format=html|json override goes:
    format=wav and the like filter the list and must stay."""
    params = [(key, value) for key, value in request.rel_url.query.items()
              if key != "format" or value.lower() not in REPRESENTATIONS]
    return request.rel_url.with_query(params + [("format", "json")])


def _name_param(request: web.Request, route: str, ask: bool = True) -> str | None:
    """The validated ?name=, or None when a browser should be asked for it."""
    raw = request.query.get("name")
    if raw is None and ask and wants_html(request):
        return None
    if raw is None:
        raise BadRequest(f"say which file: /{route}?name=NAME", name=None)
    return validate_name(raw)


def _ask_name(request: web.Request, route: str) -> web.StreamResponse:
    """The form asking for a name; /delete?name=X fills it in, to confirm."""
    context = {"action": route, "name": request.query.get("name")}
    return render(request, "ask_name.html", context)


def _next_page(request: web.Request, query: ListQuery, records: list[AudioRecord]) -> URL:
    """The next page's URL, relative to this server."""
    last = records[-1]
    page = query.next_page(getattr(last, SORT_COLUMNS[query.sort]), last.name)
    return _url(request, "list").with_query(query_params(page))


def _first_page_url(request: web.Request, query: ListQuery) -> URL | None:
    """The same filters and order from the top, when this is a later page."""
    if query.after is None:
        return None
    return _url(request, "list").with_query(
        query_params(replace(query, after=None, backward=False)))


def _sort_urls(request: web.Request, query: ListQuery) -> dict[str, URL]:
    """For each sortable column, this list sorted by it: descending when it
    already is ascending. Paging starts again from the top."""
    urls = {}
    for column in SORT_COLUMNS:
        toggled = "-" + column if query.sort == column and not query.descending else column
        params = [(k, v) for k, v in query_params(replace(query, after=None, backward=False))
                  if k != "sort"]
        urls[column] = _url(request, "list").with_query(params + [("sort", toggled)])
    return urls
