"""/healthz and /readyz, for load balancers and supervisors.

/healthz says only that the process answers. /readyz also asks each backend
(the database, the storage, the rate-limit buckets) for a sign of life, each
within READY_TIMEOUT, all at once; and it says no while the server stops, so
a balancer moves on before the instance is gone. Neither spends a rate
limit, and the access log keeps them at debug level: balancers ask every
few seconds.
"""

import asyncio
import logging

from aiohttp import web

from ..errors import NotReady
from .keys import config_key, inflight_key, library_key, metrics_key, ratelimiter_key

log = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/readyz")
READY_TIMEOUT = 2.0
RETRY_AFTER = 5  # seconds; about a balancer's interval between checks
# A name no file can have ("/" is refused in names): the lookup is a point
# read on the unique index, whatever the library's size.
PROBE_NAME = "/readyz"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    inflight = request.app.get(inflight_key)
    if inflight is not None and inflight.stopping:
        raise NotReady("the server is stopping; send requests to another instance",
                       RETRY_AFTER, down=[])
    library = request.app[library_key]
    checks = {"database": library.db.exists(PROBE_NAME),
              "storage": library.storage.check_present()}
    if request.app[config_key].redis is not None:
        checks["redis"] = request.app[ratelimiter_key].buckets.ping()
    results = await asyncio.gather(*(_within(check) for check in checks.values()))
    down = [name for name, error in zip(checks, results) if error is not None]
    for name, error in zip(checks, results):
        if error is not None:
            request.app[metrics_key].backend_error(name)
            # The log gets what went wrong; the answer names only the backend.
            log.warning("readiness: the %s does not answer: %s", name, error)
    if down:
        raise NotReady(f"not ready: the {' and the '.join(down)} did not answer within "
                       f"{READY_TIMEOUT:g} s; see the server's log", RETRY_AFTER, down=down)
    return web.json_response({"status": "ready"})


async def _within(check) -> str | None:
    """None if `check` finishes in time, else what went wrong."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await check
    except Exception as exc:  # anything at all means not ready
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None
