"""Content negotiation: does this client want a page or JSON?"""

import functools

from aiohttp import web

HTML = "text/html"
# application/* covers JSON too: "text/html;q=0.5, application/*" prefers JSON.
JSON_TYPES = ("application/json", "application/problem+json", "application/*")


def wants_html(request: web.Request) -> bool:
    """True when ?format=html, or when Accept names text/html and ranks it
    above JSON. A bare */* (curl, fetch) keeps JSON."""
    for override in request.query.getall("format", []):
        if override.lower() in ("html", "json"):
            return override.lower() == "html"
    return _prefers_html(request.headers.get("Accept", ""))


# Clients send a handful of Accept values, each thousands of times.
@functools.lru_cache(maxsize=256)
def _prefers_html(accept: str) -> bool:
    ranks = _accept_ranks(accept)
    html = ranks.get(HTML, ranks.get("text/*"))
    if not html:
        return False
    json_rank = max([ranks.get(t, 0.0) for t in JSON_TYPES] + [ranks.get("*/*", 0.0)])
    return html >= json_rank


def _accept_ranks(header: str) -> dict[str, float]:
    ranks = {}
    for item in header.split(","):
        media_type, *params = [piece.strip() for piece in item.split(";")]
        if not media_type:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks[media_type.lower()] = quality
    return ranks
