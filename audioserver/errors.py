"""Errors the client can act on, each with the HTTP status it maps to.

Domain modules raise these; the error middleware renders them as
application/problem+json (RFC 9457) or as a page, so no module below the
handlers needs to know about responses.
"""

from http import HTTPStatus


class AudioServerError(Exception):
    status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        # Extension members of the problem object, e.g. which file failed.
        self.extra = extra

    @property
    def title(self) -> str:
        return self.status.phrase


class BadRequest(AudioServerError):
    status = HTTPStatus.BAD_REQUEST


class Unauthorized(AudioServerError):
    """Nobody is signed in, or the credentials are wrong."""

    status = HTTPStatus.UNAUTHORIZED

    def __init__(self, detail: str, **extra):
        # Bearer: curl users sign in with an API token; browsers get a page.
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="audioserver"'},
                         **extra)


class Forbidden(AudioServerError):
    status = HTTPStatus.FORBIDDEN


class NotFound(AudioServerError):
    status = HTTPStatus.NOT_FOUND


class Gone(AudioServerError):
    """The row exists but its file is missing from storage."""

    status = HTTPStatus.GONE


class NameTaken(AudioServerError):
    """Names are unique across the library. Only who may see the file that
    holds the name (`visible`) is told it is taken: to anyone else a private
    file's name is merely not available, which confirms no file."""

    status = HTTPStatus.CONFLICT

    def __init__(self, name: str, visible: bool = False):
        if visible:
            detail = f"the name {name!r} is taken; delete it first or choose another"
        else:
            detail = f"the name {name!r} is not available; choose another name"
        super().__init__(detail, name=name)


class UserExists(AudioServerError):
    status = HTTPStatus.CONFLICT

    def __init__(self, name: str):
        super().__init__(f"there is already an account called {name!r}", user=name)


class TooLarge(AudioServerError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class RangeNotSatisfiable(AudioServerError):
    status = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE


class NotAudio(AudioServerError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class UnsupportedMediaType(AudioServerError):
    """A body in a type this request does not take."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class Undecodable(AudioServerError):
    """A stored file that libsndfile accepted but cannot decode to the end."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class RequestTimeout(AudioServerError):
    status = HTTPStatus.REQUEST_TIMEOUT


class TooManyRequests(AudioServerError):
    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, detail: str, retry_after: int, headers: dict | None = None, **extra):
        super().__init__(detail, headers={"Retry-After": str(retry_after), **(headers or {})},
                         retry_after=retry_after, **extra)


class StorageFull(AudioServerError):
    status = HTTPStatus.INSUFFICIENT_STORAGE


class StorageRefused(AudioServerError):
    """The storage would not take a change: read-only, immutable, or not ours
    to write. The operator must act; until then the change cannot be made."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class StartupError(Exception):
    """The server must not start; the message tells the operator why."""


class NotReady(AudioServerError):
    """A backend this server needs does not answer, or the server is stopping:
    a load balancer should send the request elsewhere for now."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, detail: str, retry_after: int, **extra):
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)


class StorageUnavailable(AudioServerError):
    """The storage did not answer (an object store down, unreachable or too
    slow): nothing was changed, and the same request may work later."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)},
                         retry_after=retry_after)
