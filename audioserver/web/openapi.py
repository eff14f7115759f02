"""The OpenAPI 3.1 description of the whole API, served at /openapi.json.

Written by hand, next to nothing generated: it is documentation first.
tests/test_openapi.py keeps it true: every route is in it and everything in
it is a route, it is a valid OpenAPI document, and schemathesis sends it
generated requests against a live server and checks every answer against it.
"""

from ..config import VISIBILITIES
from ..media.waveform import DEFAULT_POINTS, MAX_POINTS
from .bodies import FORM_TYPES
from ..models import DEFAULT_LIMIT, EDITABLE_FIELDS, MAX_TEXT, SORT_COLUMNS, TEXT_FIELDS
from .listing import MAX_LIMIT

PROBLEM = "application/problem+json"
HTML = "text/html"

# What each error means here, for the responses that may carry it.
ERRORS = {
    400: "A parameter or the body is wrong, or the Host is not a name this server answers "
         "to (--allowed-host); `detail` says which and how",
    401: "Not signed in, or a wrong, revoked or expired API token, or a wrong password "
         "(--auth users)",
    403: "Not allowed: another's file, a browser request without its CSRF token, an "
         "API token creating tokens or revoking another, or managing accounts without being "
         "an admin",
    404: "No such file or account, a private file of someone else's, or accounts on a "
         "server without them (--auth open)",
    408: "The request body arrived too slowly",
    409: "The name is in use: audio names are unique across the library (for a file "
         "private to someone else the answer says only that the name is not available), "
         "account names across the server",
    410: "The file's row is there but its file is missing from storage",
    413: "Larger than the server accepts",
    415: "Not audio this server can read",
    416: "The byte range is outside the file",
    422: "The stored file could not be decoded to the end",
    429: "Over a rate limit, or too many failed sign-ins: wait Retry-After seconds",
    503: "The server's storage refused the change (read-only or immutable), or an object "
         "store is not answering (then Retry-After says when to try again); nothing "
         "changed. On /readyz: a backend did not answer (`down` names it), or the server "
         "is stopping",
    507: "The server's disk is full; nothing was kept or changed",
}


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _problems(*codes: int) -> dict:
    # Every operation can meet the Host check, the rate limit, and a wrong API token.
    return {str(code): _ref("responses", f"Problem{code}")
            for code in sorted({*codes, 400, 401, 429})}


def _query(name: str, schema: dict, description: str, required: bool = False, **extra) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description, **extra}


def _or_empty(schema: dict) -> dict:
    """A filter that may also come empty, as an empty form field does: then
    it is not applied (or has its default)."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _page(description: str) -> dict:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def _redirect(description: str) -> dict:
    return {"description": description,
            "headers": {"Location": {"schema": {"type": "string"}}}}


def _form(properties: dict, required: tuple = ()) -> dict:
    """A small form, in either encoding; a field over 4 KiB, or a file, is a 400."""
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"required": False,
            "description": "Either encoding; no field over 4096 bytes, and no files",
            "content": {media_type: {"schema": schema} for media_type in FORM_TYPES}}


NAME = _query("name", _ref("schemas", "Name"), "The audio's name", required=True)
OPTIONAL_NAME = {**NAME, "required": False,
                 "description": "The audio's name; a browser without it is asked for it"}
REPRESENTATION = _query("format", {"type": "string"},
                        "json or html: overrides Accept (other values are ignored)")
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}
CSRF_FIELD = {"type": "string", "description": "The session's CSRF token, for browser sessions"}
TOKEN_LIFETIME = "When the token expires: 30d, 12h (at most 3650d), or empty for never"
RECORD = _ref("schemas", "AudioRecord")
STATUS = {"type": "object", "properties": {"status": {"type": "string"}},
          "required": ["status"]}
REVOKE_TOKENS = {"type": "string",
                 "description": "on (or 1, true, yes): also revoke every API token of the account"}
TAG_SOURCE = "read from the file's tags (ID3, Vorbis comment, RIFF INFO, AIFF/CAF chunks)"
TEXT_DESCRIPTIONS = {
    "title": f"The title, {TAG_SOURCE}, or as edited; null: none",
    "artist": f"The artist, {TAG_SOURCE}, or as edited; null: none",
    "album": f"The album, {TAG_SOURCE}, or as edited; null: none",
    "track": f"The track number as tagged (e.g. 3 or 3/12), {TAG_SOURCE}",
    "date": f"The date or year as tagged, {TAG_SOURCE}",
    "genre": f"The genre, {TAG_SOURCE}",
    "comment": f"The comment, {TAG_SOURCE}",
    "description": "Free text set by the owner with PATCH /info; null: none",
}


def _paths() -> dict:
    record_ok = _json(RECORD, "The file's metadata")
    # /info and /list (their JSON) answer If-None-Match.
    not_modified = {"304": {"description": "Nothing the answer shows has changed since "
                                           "the ETag given in If-None-Match",
                            "headers": {"ETag": _plain_header()}}}
    return {
        "/": {"get": {"summary": "The home page: the menu, the number of files and their "
                                 "total duration", "operationId": "index",
                      "responses": {"200": _page("The home page"), **_problems()}}},
        "/upload": {
            "get": {"summary": "The upload page", "operationId": "uploadForm",
                    "responses": {"200": _page("The upload form"),
                                  "303": _redirect("Not signed in (--auth users): to /login"),
                                  **_problems()}},
            "post": _upload_operation("uploadPost", multipart=True),
            "put": _upload_operation("uploadPut", multipart=False),
        },
        "/download": {"get": {
            "summary": "The file's bytes; ranges and conditional requests as HTTP says",
            "operationId": "download",
            "parameters": [
                OPTIONAL_NAME,
                _query("inline", {"type": "string"}, "1, true, yes or on: Content-Disposition "
                       "inline, for players; attachment otherwise"),
                {"name": "Range", "in": "header", "schema": {"type": "string"},
                 "description": "One range of bytes, e.g. bytes=0-999"},
                {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                {"name": "If-Modified-Since", "in": "header", "schema": {"type": "string"}},
                {"name": "If-Range", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _audio("The whole file"),
                "206": _audio("The range asked for", {"Content-Range": _plain_header()}),
                "302": _redirect("With --s3-redirect: to a link the object store serves "
                                 "for 5 minutes"),
                "304": {"description": "Not modified since the copy the client has"},
                **_problems(400, 404, 410, 416, 503),
            }}},
        "/preview": {"get": {
            "summary": "What a player plays: the file's own bytes where every current browser "
                       "plays them (WAV PCM 16/24-bit or float, FLAC, Ogg Vorbis or Opus, an "
                       "MP3 whose header gives its length; at most two channels), otherwise "
                       "a preview (MP3, or 16-bit FLAC at sample rates MPEG lacks) made on "
                       "the first request and kept; ranges and conditional requests as for "
                       "/download, always inline",
            "operationId": "preview",
            "parameters": [
                NAME,
                {"name": "Range", "in": "header", "schema": {"type": "string"},
                 "description": "One range of bytes, e.g. bytes=0-999"},
                {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                {"name": "If-Modified-Since", "in": "header", "schema": {"type": "string"}},
                {"name": "If-Range", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _audio("The whole preview"),
                "206": _audio("The range asked for", {"Content-Range": _plain_header()}),
                "304": {"description": "Not modified since the copy the client has"},
                **_problems(400, 404, 410, 416, 422, 503, 507),
            }}},
        "/cover": {"get": {
            "summary": "The cover art read from the file's tags (JPEG, PNG or WebP), when "
                       "its metadata's `cover` is not null",
            "operationId": "cover",
            "parameters": [NAME, {"name": "If-None-Match", "in": "header",
                                  "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The image", "headers": {"ETag": _plain_header()},
                        "content": {kind: {"schema": {"type": "string", "format": "binary"}}
                                    for kind in ("image/jpeg", "image/png", "image/webp")}},
                "304": {"description": "The image the client has is current"},
                **_problems(400, 404, 410),
            }}},
        "/list": {"get": {
            "summary": "Files matching every filter given, a page at a time",
            "operationId": "list",
            "parameters": [*_list_parameters(), IF_NONE_MATCH],
            "responses": {
                "200": {"description": "A page of metadata objects",
                        "headers": {"ETag": _plain_header(),
                                    "X-Total-Count": {"schema": {"type": "string"},
                                                      "description": "How many match in all"},
                                    "Link": {"schema": {"type": "string"},
                                             "description": 'rel="next": the next page, '
                                             "to be followed as it is"}},
                        "content": {"application/json": {"schema": {"type": "array",
                                                                    "items": RECORD}},
                                    HTML: {"schema": {"type": "string"}}}},
                **not_modified, **_problems(400)}}},
        "/info": {
            "get": {
                "summary": "One file's metadata; its page (player, waveform, tags) for a browser",
                "operationId": "info",
                "parameters": [OPTIONAL_NAME, REPRESENTATION, IF_NONE_MATCH],
                "responses": {"200": {**record_ok, "headers": {"ETag": _plain_header()},
                                      "content": {**record_ok["content"],
                                                  HTML: {"schema": {"type": "string"}}}},
                              **not_modified, **_problems(400, 404, 410)}},
            "patch": {
                "summary": "Rename the file or change its text fields (its owner or an admin; "
                           "anyone in --auth open): a JSON merge patch (RFC 7396). The stored "
                           "bytes, and so the download's ETag, never change",
                "operationId": "editInfo", "parameters": [NAME],
                "requestBody": {"required": True, "content": {
                    media_type: {"schema": _ref("schemas", "Edit")}
                    for media_type in ("application/merge-patch+json", "application/json")}},
                "responses": {"200": record_ok,
                              **_problems(400, 401, 403, 404, 408, 409, 410, 413, 415, 503,
                                          507)}},
            "post": {
                "summary": "The info page's edit form: the same changes as PATCH, every field "
                           "sent (an empty one removes its text)",
                "operationId": "editInfoForm", "parameters": [NAME],
                "requestBody": _form({"name": {"type": "string"}, "title": {"type": "string"},
                                      "artist": {"type": "string"},
                                      "album": {"type": "string"},
                                      "description": {"type": "string"},
                                      "csrf_token": CSRF_FIELD}),
                "responses": {"200": record_ok,
                              "303": _redirect("A browser: to the file's page, under its "
                                               "new name"),
                              **_problems(400, 401, 403, 404, 408, 409, 410, 413, 503, 507)}},
        },
        "/waveform": {"get": {
            "summary": "Peaks for drawing the waveform, in BBC audiowaveform's JSON layout",
            "operationId": "waveform",
            "parameters": [NAME, _query("points", _or_empty({"type": "integer", "minimum": 1,
                                                             "maximum": MAX_POINTS}),
                                        f"Min/max pairs to return (default {DEFAULT_POINTS})")],
            "responses": {"200": _json(_ref("schemas", "Waveform"), "The peaks"),
                          "304": {"description": "The peaks the client has are current"},
                          **_problems(400, 404, 410, 422, 503)}}},
        "/delete": {
            "get": {"summary": "A page asking which file to delete", "operationId": "deleteForm",
                    "parameters": [_query("name", {"type": "string"},
                                          "Filled in, to confirm; checked when it is sent")],
                    "responses": {"200": _page("The form"), **_problems()}},
            "post": _delete_operation("deletePost", form=True),
            "delete": _delete_operation("delete", form=False),
        },
        "/visibility": {"post": {
            "summary": "Make a file public or private (its owner or an admin)",
            "operationId": "setVisibility",
            "parameters": [{**NAME, "required": False},
                           _query("visibility", {"enum": list(VISIBILITIES)}, "What it becomes")],
            # Form fields, for the info page's button; the query string wins.
            "requestBody": _form({"name": {"type": "string"},
                                  "visibility": {"type": "string"},
                                  "csrf_token": CSRF_FIELD}),
            "responses": {"200": record_ok, "303": _redirect("A browser: to the file's page"),
                          **_problems(400, 401, 403, 404, 408, 410, 413, 503, 507)}}},
        "/login": {
            "get": {"summary": "The sign-in page (--auth users)", "operationId": "loginForm",
                    "parameters": [_query("next", {"type": "string"}, "Where to go after")],
                    "responses": {"200": _page("The form"),
                                  "303": _redirect("No account yet: to /setup"),
                                  **_problems(404)}},
            "post": {"summary": "Sign in: a session cookie for a browser",
                     "operationId": "login",
                     "requestBody": _form({"name": {"type": "string"},
                                           "password": {"type": "string"},
                                           "next": {"type": "string"},
                                           "csrf_token": CSRF_FIELD}),
                     "responses": {"200": _json(_ref("schemas", "Account"), "Signed in; "
                                                "Set-Cookie carries the session"),
                                   "303": _redirect("A browser: to `next`"),
                                   **_problems(400, 401, 403, 404, 408, 413)}},
        },
        "/logout": {"post": {"summary": "End this browser session", "operationId": "logout",
                             "requestBody": _form({"csrf_token": CSRF_FIELD}),
                             "responses": {"204": {"description": "Signed out"},
                                           "303": _redirect("A browser: to the home page"),
                                           **_problems(400, 403, 408, 413)}}},
        "/setup": {
            "get": {"summary": "Create the first admin, while there is no account",
                    "operationId": "setupForm",
                    "responses": {"200": _page("The form"), **_problems(404)}},
            "post": {"summary": "Create the first admin with the setup code the server printed",
                     "operationId": "setup",
                     "requestBody": _form({"code": {"type": "string"},
                                           "name": {"type": "string"},
                                           "password": {"type": "string"}}),
                     "responses": {"200": _json(_ref("schemas", "Account"), "Created, signed in"),
                                   "303": _redirect("A browser: to the home page"),
                                   **_problems(400, 401, 403, 404, 408, 409, 413)}},
        },
        "/account": {"get": {
            "summary": "Who is signed in, and their API tokens", "operationId": "account",
            "parameters": [REPRESENTATION],
            "responses": {"200": {"description": "The account",
                                  "content": {"application/json": {"schema": {
                                      "allOf": [_ref("schemas", "Account")],
                                      "properties": {"tokens": {"type": "array", "items": _ref(
                                          "schemas", "ApiToken")}}}},
                                      HTML: {"schema": {"type": "string"}}}},
                          **_problems(400, 401)}}},
        "/account/password": {"post": {
            "summary": "Change your own password, given the current one: every other session "
                       "of the account ends (a browser session continues under a new cookie)",
            "operationId": "changePassword",
            "requestBody": _form({"current_password": {"type": "string"},
                                  "password": {"type": "string", "description": "The new one"},
                                  "again": {"type": "string",
                                            "description": "The new one again (optional)"},
                                  "revoke_tokens": REVOKE_TOKENS, "csrf_token": CSRF_FIELD}),
            "responses": {"204": {"description": "Changed"},
                          "200": _page("A browser: the account page, saying so"),
                          **_problems(400, 401, 403, 408, 413)}}},
        "/users": {
            "get": {"summary": "Every account, its role and how many files it owns (admins)",
                    "operationId": "users", "parameters": [REPRESENTATION],
                    "responses": {"200": {"description": "The accounts", "content": {
                        "application/json": {"schema": {"type": "array", "items": _ref(
                            "schemas", "AccountSummary")}},
                        HTML: {"schema": {"type": "string"}}}},
                                  "303": _redirect("A browser nobody is signed in to: to "
                                                   "/login"),
                                  **_problems(401, 403, 404)}},
            "post": {"summary": "Create an account (admins)", "operationId": "createUser",
                     "requestBody": _form({"name": {"type": "string"},
                                           "password": {"type": "string"},
                                           "role": {"enum": ["user", "admin"],
                                                    "description": "user unless given"},
                                           "csrf_token": CSRF_FIELD}),
                     "responses": {"201": _json(_ref("schemas", "Account"), "Created"),
                                   "303": _redirect("A browser: back to /users"),
                                   **_problems(400, 401, 403, 404, 408, 409, 413)}},
            "delete": {"summary": "Remove an account (admins; not one's own): its sessions "
                                  "and tokens end, its files stay without an owner",
                       "operationId": "removeUser",
                       "parameters": [_query("name", {"type": "string"}, "The account",
                                             required=True)],
                       "responses": {"204": {"description": "Removed"},
                                     **_problems(400, 401, 403, 404)}},
        },
        "/users/remove": {"post": {
            "summary": "Remove an account from a form (admins)", "operationId": "removeUserForm",
            "requestBody": _form({"name": {"type": "string"}, "csrf_token": CSRF_FIELD}),
            "responses": {"204": {"description": "Removed"},
                          "303": _redirect("A browser: back to /users"),
                          **_problems(400, 401, 403, 404, 408, 413)}}},
        "/users/password": {"post": {
            "summary": "Set an account's password (admins): it is signed out everywhere",
            "operationId": "resetPassword",
            "requestBody": _form({"name": {"type": "string"}, "password": {"type": "string"},
                                  "revoke_tokens": REVOKE_TOKENS, "csrf_token": CSRF_FIELD}),
            "responses": {"204": {"description": "Set"},
                          "200": _page("A browser: the accounts page, saying so"),
                          **_problems(400, 401, 403, 404, 408, 413)}}},
        "/tokens": {
            "post": {"summary": "Create an API token, shown this once: from a browser session "
                                "with the account's current password (an API token gets 403)",
                     "operationId": "createToken",
                     "parameters": [_query("label", {"type": "string"}, "To tell tokens apart"),
                                    _query("expires", {"type": "string"}, TOKEN_LIFETIME)],
                     "requestBody": _form({"label": {"type": "string"},
                                           "expires": {"type": "string",
                                                       "description": TOKEN_LIFETIME},
                                           "password": {"type": "string", "description":
                                                        "The current password, checked like "
                                                        "a sign-in (never in the URL)"},
                                           "csrf_token": CSRF_FIELD}),
                     "responses": {"201": _json(_ref("schemas", "NewApiToken"), "The token"),
                                   **_problems(400, 401, 403, 408, 413)}},
            "delete": {"summary": "Revoke one of your API tokens: a browser session any of "
                                  "them, an API token only itself (403 otherwise)",
                       "operationId": "revokeToken",
                       "parameters": [_query("id", {"type": "integer", "minimum": 0},
                                             "The token's id, from /account", required=True)],
                       "responses": {"204": {"description": "Revoked"},
                                     **_problems(400, 401, 403, 404)}},
        },
        "/tokens/revoke": {"post": {
            "summary": "Revoke an API token from a form", "operationId": "revokeTokenForm",
            "requestBody": _form({"id": {"type": "integer"}, "csrf_token": CSRF_FIELD}),
            "responses": {"204": {"description": "Revoked"},
                          "303": _redirect("A browser: back to /account"),
                          **_problems(400, 401, 403, 404, 408, 413)}}},
        "/healthz": {"get": {
            "summary": "The process answers (for load balancers; no rate limit)",
            "operationId": "healthz",
            "responses": {"200": _json(STATUS, "Alive"), **_problems()}}},
        "/readyz": {"get": {
            "summary": "Ready for requests: the database, the storage and Redis (with "
                       "--redis) each answered within 2 s, and the server is not stopping",
            "operationId": "readyz",
            "responses": {"200": _json(STATUS, "Ready"), **_problems(503)}}},
        "/metrics": {"get": {
            "summary": "Prometheus's text format, summed over the workers: from this "
                       "machine, or with --metrics-token as a Bearer token",
            "operationId": "metrics",
            "responses": {"200": {"description": "The metrics",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_problems(403)}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"),
                                                **_problems()}}},
    }


def _upload_operation(operation_id: str, multipart: bool) -> dict:
    raw = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    body = raw
    if multipart:
        body = {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {"csrf_token": CSRF_FIELD,
                           "visibility": {"enum": list(VISIBILITIES)},
                           "file": {"type": "array", "items": {"type": "string",
                                                               "format": "binary"}}},
            "required": ["file"]}}, **raw}
    return {
        "summary": ("Store audio: multipart parts named `file` (each part's filename is its "
                    "name; several are stored all or none), or the raw bytes with ?name="),
        "operationId": operation_id,
        "parameters": [{**NAME, "required": False,
                        "description": "The name of a raw upload (the body is the file)"},
                       _query("visibility", {"enum": list(VISIBILITIES)},
                              "Who may see it (--auth users); the server's default otherwise")],
        "requestBody": {"required": True, "content": body},
        "responses": {
            "201": {"description": "Stored: one metadata object, or a list for several files",
                    "headers": {"Location": _plain_header()},
                    "content": {"application/json": {"schema": {
                        "oneOf": [RECORD, {"type": "array", "items": RECORD}]}}}},
            "303": _redirect("A browser's form: to the new file's page"),
            **_problems(400, 401, 403, 408, 409, 413, 415, 503, 507),
        },
    }


def _delete_operation(operation_id: str, form: bool) -> dict:
    operation = {
        "summary": "Delete a file and its row (its owner or an admin)",
        "operationId": operation_id,
        "parameters": [{**NAME, "required": not form}],
        "responses": {"204": {"description": "Deleted"},
                      **({"303": _redirect("A browser: to the library")} if form else {}),
                      **_problems(400, 401, 403, 404, 503, 507,
                                  *((408, 413) if form else ()))},
    }
    if form:
        # The ask-name form's field; ?name= wins when both are given.
        operation["requestBody"] = _form({"name": {"type": "string"},
                                          "csrf_token": CSRF_FIELD})
    return operation


def _list_parameters() -> list[dict]:
    seconds = _or_empty({"type": "number", "minimum": 0})
    positive = _or_empty({"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
    sorts = [*SORT_COLUMNS, *(f"-{column}" for column in SORT_COLUMNS), ""]
    return [
        _query("maxduration", seconds, "Seconds, inclusive"),
        _query("minduration", seconds, "Seconds, inclusive"),
        _query("format", {"type": "array", "items": {"type": "string"}},
               "libsndfile's major format, case-insensitive and repeatable (wav also finds "
               "WAVEX and RF64); json or html choose the representation instead",
               explode=True),
        _query("samplerate", positive, "Frames a second"),
        _query("channels", positive, "Channels"),
        _query("q", {"type": "string"}, "Part of the name or of a text field (title, "
               "artist, album, track, date, genre, comment, description), case-insensitive"),
        _query("artist", {"type": "string"}, "The artist, exactly as tagged; empty: any"),
        _query("album", {"type": "string"}, "The album, exactly as tagged; empty: any"),
        _query("owner", {"type": "string", "pattern": r"^[\w.@+-]{0,64}$"},
               "The owner's account name; empty, as an empty form field: any"),
        _query("visibility", {"enum": [*VISIBILITIES, ""]}, "public or private"),
        _query("sort", {"enum": sorts}, "The order (default name); a leading - for descending"),
        _query("limit", _or_empty({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
               f"Files a page (default {DEFAULT_LIMIT})"),
        _query("cursor", {"type": "string"}, "Where a page starts: only as a Link header gave it"),
        _query("before", {"type": "string"}, "The page before a page, as the library page's "
               "Previous link gives it (not with cursor)"),
    ]


def _audio(description: str, headers: dict | None = None) -> dict:
    return {"description": description,
            "headers": {"ETag": _plain_header(), "Last-Modified": _plain_header(),
                        "Content-Disposition": _plain_header(), **(headers or {})},
            "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}}}


def _plain_header() -> dict:
    return {"schema": {"type": "string"}}


def _components() -> dict:
    rate_headers = {header: {"schema": {"type": "string"}, "description": description}
                    for header, description in [
                        ("RateLimit-Limit", "The size of the budget this request spent from"),
                        ("RateLimit-Remaining", "What is left of it"),
                        ("RateLimit-Reset", "Seconds until it is full again")]}
    problem_content = {PROBLEM: {"schema": _ref("schemas", "Problem")},
                       HTML: {"schema": {"type": "string"}}}
    responses = {
        f"Problem{code}": {"description": text, "content": problem_content,
                           "headers": {**rate_headers,
                                       **({"Retry-After": _plain_header()} if code == 429
                                          else {})}}
        for code, text in ERRORS.items()
    }
    return {
        "schemas": {
            "Name": {"type": "string", "minLength": 1, "maxLength": 255,
                     "description": "1 to 255 UTF-8 bytes after NFC; no / \\ or control "
                                    "characters; not . or .."},
            "AudioRecord": {
                "type": "object",
                "required": ["name", "duration", "frames", "samplerate", "channels", "format",
                             "subtype", "content_type", "size", "sha256", "created_at",
                             "owner", "visibility", *TEXT_FIELDS, "cover"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "duration": {"type": "number", "minimum": 0,
                                 "description": "Seconds: frames / samplerate"},
                    "frames": {"type": "integer", "minimum": 0},
                    "samplerate": {"type": "integer", "minimum": 1},
                    "channels": {"type": "integer", "minimum": 1},
                    "format": {"type": "string", "examples": ["WAV", "FLAC", "OGG", "MP3"]},
                    "subtype": {"type": "string", "examples": ["PCM_16", "VORBIS"]},
                    "content_type": {"type": "string", "examples": ["audio/wav"]},
                    "size": {"type": "integer", "minimum": 0},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "owner": {"type": ["string", "null"]},
                    "visibility": {"enum": list(VISIBILITIES)},
                    **{field: {"type": ["string", "null"], "maxLength": MAX_TEXT,
                               "description": description}
                       for field, description in TEXT_DESCRIPTIONS.items()},
                    "cover": {"enum": ["image/jpeg", "image/png", "image/webp", None],
                              "description": "The media type of the cover art at /cover; "
                                             "null: none"},
                },
            },
            "Edit": {
                "type": "object", "additionalProperties": False,
                "description": "The fields to change; null removes a text field",
                "properties": {
                    "name": _ref("schemas", "Name"),
                    **{field: {"type": ["string", "null"], "maxLength": MAX_TEXT}
                       for field in EDITABLE_FIELDS},
                }},
            "Waveform": {
                "type": "object",
                "required": ["version", "channels", "sample_rate", "samples_per_pixel", "bits",
                             "length", "data"],
                "properties": {"version": {"const": 2}, "channels": {"const": 1},
                               "sample_rate": {"type": "integer"},
                               "samples_per_pixel": {"type": "integer"},
                               "bits": {"const": 16}, "length": {"type": "integer"},
                               "data": {"type": "array", "items": {"type": "integer"}}},
            },
            "Problem": {
                "type": "object", "required": ["type", "title", "status", "detail"],
                "description": "RFC 9457; extra members name what failed (e.g. `name`)",
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "detail": {"type": "string"}},
            },
            "Account": {"type": "object", "required": ["name", "role"],
                        "properties": {"name": {"type": "string"},
                                       "role": {"enum": ["admin", "user"]}}},
            "AccountSummary": {"type": "object",
                               "required": ["name", "role", "created_at", "files"],
                               "properties": {"name": {"type": "string"},
                                              "role": {"enum": ["admin", "user"]},
                                              "created_at": {"type": "string"},
                                              "files": {"type": "integer", "minimum": 0,
                                                        "description": "How many it owns"}}},
            "ApiToken": {"type": "object",
                         "required": ["id", "label", "created_at", "last_used_at",
                                      "expires_at"],
                         "properties": {"id": {"type": "integer"}, "label": {"type": "string"},
                                        "created_at": {"type": "string"},
                                        "last_used_at": {"type": ["string", "null"]},
                                        "expires_at": {"type": ["string", "null"],
                                                       "description": "null: until revoked"}}},
            "NewApiToken": {"allOf": [_ref("schemas", "ApiToken")],
                            "required": ["token"],
                            "properties": {"token": {"type": "string", "pattern": "^as_"}}},
        },
        "responses": responses,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An API token from /account or `python -m audioserver "
                                      "token create NAME`"},
            "session": {"type": "apiKey", "in": "cookie", "name": "audioserver_session",
                        "description": "A browser session from /login; unsafe requests also "
                                       "need the X-CSRF-Token header or csrf_token field"},
        },
    }


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "AudioServer", "version": "1",
                 "description": "A self-hosted audio file server. Every path is also a page "
                                "for a browser (Accept: text/html, or ?format=html)."},
        # Reads need nothing in --auth open, or for public files; see each error.
        "security": [{}, {"bearer": []}, {"session": []}],
        "paths": _paths(),
        "components": _components(),
    }
