"""Who is at the other end: the client's address and scheme, through trusted proxies."""

from aiohttp import web

from .keys import config_key


def client_address(request: web.Request) -> str:
    """The peer's address; behind a proxy named by --trusted-proxy, the
    right-most X-Forwarded-For entry that is not itself a trusted proxy.
    Entries left of that were written by the client and prove nothing."""
    peer = request.remote or ""
    trusted = request.app[config_key].trusted_proxies
    if peer not in trusted:
        return peer
    for entry in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        entry = entry.strip()
        if entry and entry not in trusted:
            return entry
    return peer


def is_https(request: web.Request) -> bool:
    """Whether the client reached us over HTTPS: directly, or through a
    trusted proxy that says so in X-Forwarded-Proto (anyone else's say-so
    counts for nothing)."""
    if request.secure:
        return True
    if (request.remote or "") not in request.app[config_key].trusted_proxies:
        return False
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return proto == "https"


def requested_host(request: web.Request) -> str | None:
    """The Host the client asked for, port and all: behind a trusted proxy
    its X-Forwarded-Host (the right-most entry, the one it wrote) when it
    sends one, else the Host header; None without either (HTTP/1.0)."""
    if (request.remote or "") in request.app[config_key].trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.headers.get("Host")
