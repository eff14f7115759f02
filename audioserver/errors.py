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


class NotFound(AudioServerError):
    status = HTTPStatus.NOT_FOUND


class Gone(AudioServerError):
    """The row exists but its file is missing from storage."""

    status = HTTPStatus.GONE


class NameTaken(AudioServerError):
    status = HTTPStatus.CONFLICT

    def __init__(self, name: str):
        super().__init__(
            f"the name {name!r} is taken; delete it first or choose another", name=name
        )


class TooLarge(AudioServerError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class RangeNotSatisfiable(AudioServerError):
    status = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE


class NotAudio(AudioServerError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class Undecodable(AudioServerError):
    """A stored file that libsndfile accepted but cannot decode to the end."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class StorageFull(AudioServerError):
    status = HTTPStatus.INSUFFICIENT_STORAGE


class StartupError(Exception):
    """The server must not start; the message tells the operator why."""
