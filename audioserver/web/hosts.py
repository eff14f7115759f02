"""DNS rebinding: answer only to the host names this server is meant to serve.

A page on evil.example can make its own name resolve to 127.0.0.1 and then
use a server here as if it were its own origin: the browser's same-origin
rules see evil.example on both sides. Only the Host header still says
evil.example, so a request whose Host is not one of ours is refused before
anything else looks at it. See Config.host_names for which names are ours.
"""

import functools
import ipaddress

from aiohttp import web

from ..config import ANY_HOST, Config, parse_host_name
from ..errors import BadRequest
from .clients import requested_host
from .keys import config_key


def check_host(request: web.Request) -> None:
    """BadRequest unless the request names a host this server answers to."""
    host = requested_host(request)
    # No Host at all is HTTP/1.0 (or a hand-made request): never a browser.
    if host is not None:
        _check_host(request.app[config_key], host)


def _check_host(config: Config, host: str) -> None:
    name = host_name(host)
    if name is None:
        raise BadRequest(f"the host asked for, {host!r}, is not a host name and port",
                         host=host)
    if not is_served(config, name):
        raise BadRequest(
            f"this server does not answer to the name {name!r}: a page on another site may "
            f"be trying to reach it through DNS rebinding. If that is this server's name, "
            f"start it with --allowed-host {name} (or AUDIOSERVER_ALLOWED_HOSTS={name})",
            host=name)


def is_served(config: Config, name: str) -> bool:
    """Whether `name` (as host_name gives it) is one this server answers to."""
    names = config.host_names
    if ANY_HOST in names or name in names:
        return True
    return config.listens_everywhere and _is_address(name)


# Clients send a handful of Host values, each thousands of times: parsing
# one (an ipaddress attempt, IDNA) was 4% of an /info.
@functools.lru_cache(maxsize=256)
def host_name(host: str) -> str | None:
    """The name in a Host value without its port, made comparable as
    parse_host_name does; None if the value is not a name and a port."""
    if host.startswith("["):  # an IPv6 address: [::1]:8080
        address, bracket, rest = host[1:].partition("]")
        name = f"[{address}]" if bracket else ""
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
    if not name or (rest and not (rest.startswith(":") and _is_port(rest[1:]))):
        return None
    try:
        return parse_host_name(name)
    except ValueError:
        return None


def _is_port(text: str) -> bool:
    # It may be empty ("localhost:"), as RFC 3986 allows.
    return text == "" or (text.isascii() and text.isdigit())


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
