"""The access log: one line per request, cheap enough to keep on.

Through the logging module a line costs a LogRecord, a formatter and a
locked write and flush of its own, a tenth of the cost of a small answer.
Here a line is one f-string, with the time formatted once a second, and
the lines go to the log's stream together: one write when LINES_A_WRITE
have gathered or FLUSH_AFTER seconds after the first of them, and at the
end. They look like the other lines of the log (LOG_FORMAT in cli/serve.py).
"""

import asyncio
import logging
import sys
import time
from typing import TextIO

from aiohttp import web

from .health import HEALTH_PATHS

LOGGER_NAME = "aiohttp.access"
LINES_A_WRITE = 256
FLUSH_AFTER = 0.5


class AccessLog:
    """The lines of one process, gathered for its stream (stderr, as logging's)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._logger = logging.getLogger(LOGGER_NAME)
        self._lines: list[str] = []
        self._flush_later: asyncio.TimerHandle | None = None
        self._second = -1
        self._second_text = ""

    def __bool__(self) -> bool:
        # aiohttp logs nothing when its access_log is false: off below INFO.
        # Asked before every line: getLogger() takes the logging lock.
        return self._logger.isEnabledFor(logging.INFO)

    def add(self, message: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        self._lines.append(f"{self._second_text},{int((now - second) * 1000):03d} INFO "
                           f"{LOGGER_NAME}: {message}\n")
        if len(self._lines) >= LINES_A_WRITE:
            self.flush()
        elif self._flush_later is None:
            self._flush_later = asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        if self._flush_later is not None:
            self._flush_later.cancel()
            self._flush_later = None
        if self._lines:
            lines, self._lines = self._lines, []
            self.stream.write("".join(lines))
            self.stream.flush()


class AccessLogger(web.AbstractAccessLogger):
    """What aiohttp calls after each answer; `logger` is the process's AccessLog."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        line = (f'{request.remote} "{request.method} {request.path_qs}" '
                f"{response.status} {response.body_length} {time * 1000:.1f} ms")
        if request.path in HEALTH_PATHS:
            # Health checks come every few seconds from every balancer: debug only.
            logging.getLogger(LOGGER_NAME).debug(line)
        else:
            self.logger.add(line)
