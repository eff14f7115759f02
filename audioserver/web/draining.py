"""Requests in flight, so that a stopping server can let them finish.

aiohttp's own shutdown first marks every connection closing, and from then
on drops what arrives on them: an upload whose body is still coming could
never finish. So the server stops listening, waits here for the requests it
has (up to --shutdown-timeout), and only then hands over to aiohttp's
shutdown, which cancels whatever is left.
"""

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)


class InFlight:
    """The tasks answering requests now, each until its answer is sent."""

    def __init__(self):
        self.stopping = False
        self._tasks: set[asyncio.Task] = set()

    def track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Wait until no request is left, or `timeout` seconds have passed."""
        self.stopping = True
        try:
            async with asyncio.timeout(timeout):
                while self._tasks:  # keep-alive connections may still bring one
                    await asyncio.wait(set(self._tasks))
        except TimeoutError:
            log.warning("%d requests did not finish within %g s; they are cut off",
                        len(self._tasks), timeout)


def inflight_middleware(inflight: InFlight):
    """A middleware reporting each request to `inflight`; the serving code
    that will wait for them adds it, outermost."""
    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        # aiohttp runs each request in a task of its own, which also sends
        # the answer (a file, say) after the handler returns.
        inflight.track(asyncio.current_task())
        response = await handler(request)
        if inflight.stopping and not response.prepared:
            response.force_close()  # no further request on this connection
        return response
    return middleware
