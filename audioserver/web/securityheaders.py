"""Security headers on every response: pages, JSON, problems, static files,
downloads, and the errors aiohttp answers by itself."""

from aiohttp import web

# Scripts, styles, images and media from this server only, and no inline
# script or style at all: a name full of markup that slipped past escaping
# still could not run. data: images are the browser's own (form controls).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Never guess a type: an uploaded "audio" file must not become a page.
    "X-Content-Type-Options": "nosniff",
    # Query strings hold file names; other sites need not learn them.
    "Referrer-Policy": "same-origin",
    # frame-ancestors for browsers that predate it.
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: web.StreamResponse) -> None:
    """As every answer is sent, whoever made it (web/app.py)."""
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
