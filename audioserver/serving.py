"""Serving: one process, or a supervisor and N workers sharing the port.

The workers bind the same port with SO_REUSEPORT, so the kernel spreads
connections over them. They share nothing in memory: every piece of state
lives in the database or the data directory, so any worker can answer any
request. The supervisor reconciles storage once before they start, restarts
a worker that dies, and stops them all on SIGINT or SIGTERM.
"""

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import time
from dataclasses import replace

from aiohttp import web

from .accountdb import Accounts
from .db import Database
from .errors import StartupError
from .library import open_library
from .main import create_app
from .parentage import die_with_parent
from .settings import Config

log = logging.getLogger(__name__)

# Let in-flight requests finish on SIGTERM, but not forever.
SHUTDOWN_TIMEOUT = 10.0
WORKER_START_TIMEOUT = 30.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(config: Config) -> None:
    if asyncio.run(_needs_an_admin(config)):
        config = replace(config, setup_code=secrets.token_hex(6))
    if config.workers == 1:
        _run(config, announce=lambda: _print_url(config))
    else:
        Supervisor(config).run()


class AccessLogger(web.AbstractAccessLogger):
    """One line per request. aiohttp's own logger parses a format string on
    every request, a tenth of the cost of a small answer."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %d %d %.1f ms', request.remote, request.method,
                         request.path_qs, response.status, response.body_length, time * 1000)


def _run(config: Config, announce, ignore_sigint: bool = False) -> None:
    app = create_app(config)
    if ignore_sigint:
        app.on_startup.append(_leave_sigint_to_the_supervisor)
    web.run_app(
        app, host=config.host, port=config.port,
        reuse_port=config.workers > 1, shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log_class=AccessLogger, print=lambda _: announce(),
    )


def _print_url(config: Config) -> None:
    host = f"[{config.host}]" if ":" in config.host else config.host
    workers = f" with {config.workers} workers" if config.workers > 1 else ""
    mode = "no accounts" if config.auth_mode == "open" else "accounts"
    print(f"AudioServer is serving http://{host}:{config.port}/{workers} "
          f"(data in {config.data_dir.resolve()}; {mode}); press Ctrl-C to stop", flush=True)
    if config.setup_code is not None:
        print(f"There is no account yet: open http://{host}:{config.port}/setup and enter "
              f"the setup code {config.setup_code}, or run "
              "`python -m audioserver user add NAME --admin`", flush=True)


class Supervisor:
    def __init__(self, config: Config):
        self.config = config
        self.worker_config = replace(config, reconcile=False)
        self.context = multiprocessing.get_context("spawn")
        self.ready = self.context.Queue()
        self.workers: list[multiprocessing.Process] = []

    def run(self) -> None:
        asyncio.run(_reconcile(self.config))
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.workers = [self._start() for _ in range(self.config.workers)]
            self._wait_until_ready()
            _print_url(self.config)
            self._watch()
        except KeyboardInterrupt:
            pass
        finally:
            self._stop_all()

    def _start(self) -> multiprocessing.Process:
        process = self.context.Process(target=_worker_main,
                                       args=(self.worker_config, self.ready, os.getpid()),
                                       name="audioserver-worker")
        process.start()
        return process

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        started = 0
        while started < len(self.workers):
            if any(not worker.is_alive() for worker in self.workers):
                raise StartupError("a worker process failed to start; its error is above")
            if time.monotonic() > deadline:
                raise StartupError(f"the workers did not start within {WORKER_START_TIMEOUT:g} s")
            try:
                self.ready.get(timeout=0.1)
                started += 1
            except Exception:  # queue.Empty: look at the workers again
                continue

    def _watch(self) -> None:
        """Replace any worker that dies, until we are told to stop."""
        while True:
            sentinels = {worker.sentinel: worker for worker in self.workers}
            for sentinel in multiprocessing.connection.wait(list(sentinels)):
                dead = sentinels[sentinel]
                log.error("worker %d exited with %s; starting another", dead.pid, dead.exitcode)
                self.workers[self.workers.index(dead)] = self._start()
                time.sleep(1)  # do not spin if every start fails

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            worker.join(SHUTDOWN_TIMEOUT + 5)
            if worker.is_alive():
                worker.kill()


async def _needs_an_admin(config: Config) -> bool:
    """Users mode with no account yet: then /setup makes the first admin."""
    if config.auth_mode != "users":
        return False
    if not config.db_path.exists():
        return True
    db = Database(config.db_path)
    try:
        await db.open()
        return await Accounts(db).count_users() == 0
    finally:
        await db.close()


async def _reconcile(config: Config) -> None:
    async with open_library(config):
        pass


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _worker_main(config: Config, ready, supervisor_pid: int) -> None:
    """A worker process: serve until told to stop, or until the supervisor dies
    (even by kill -9: then no orphan keeps the port)."""
    die_with_parent(supervisor_pid)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    _run(config, announce=lambda: ready.put(os.getpid()), ignore_sigint=True)


async def _leave_sigint_to_the_supervisor(app: web.Application) -> None:
    """Ctrl-C reaches the whole process group; the supervisor decides, and
    stops each worker with SIGTERM. run_app installs its own SIGINT handler
    before the app starts, so it is taken back out here."""
    asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
