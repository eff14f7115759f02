"""What every request passes before its handler, in this order: the Host
is one of ours (hosts.py), who sent it (auth.py), what it costs them
(ratelimit.py), a small body read within its time and a form checked
(bodies.py), then CSRF (auth.py), which may need that form.

One middleware calling each in turn, not a middleware each: none of them
wraps the handler, they only look before it, and every middleware layer
costs a call and a coroutine on every request.
"""

from aiohttp import web

from .auth import check_csrf_of, identify
from .bodies import read_small_body
from .hosts import check_host
from .ratelimit import charge


@web.middleware
async def gate_middleware(request: web.Request, handler) -> web.StreamResponse:
    check_host(request)
    await identify(request)
    await charge(request)
    await read_small_body(request)
    await check_csrf_of(request)
    return await handler(request)
