"""Serving: one process, or a supervisor and N workers sharing the port.

The workers bind the same port with SO_REUSEPORT, so the kernel spreads
connections over them. They share nothing in memory: every piece of state
lives in the database or the data directory, so any worker can answer any
request. The data directory is checked once before anything serves; the
supervisor starts the workers, restarts a worker that dies, and stops them
all on SIGINT or SIGTERM.

Stopping, in one process or in each worker: stop listening, let the requests
in flight finish (up to Config.shutdown_timeout), then close. SIGTERM may
come twice to a worker (from `kill -TERM -PGID`, then from the supervisor):
the second changes nothing.

The supervisor imports nothing that serving needs (aiohttp, numpy, the
database drivers, even asyncio...: about 55 MiB): the library is checked in
a short-lived child, and each worker imports the application itself. Hence
the imports inside functions below.
"""

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace

from ..config import Config
from ..errors import StartupError
from ..parentage import die_with_parent

log = logging.getLogger(__name__)

# Requests still running after the shutdown timeout are cancelled, and get
# this long to clean up (a half-received upload is deleted).
CANCEL_GRACE = 1.0
# How long the supervisor waits for a stopping worker beyond those two.
WORKER_STOP_MARGIN = 5.0
WORKER_START_TIMEOUT = 30.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# prometheus-client's own name (web/measures.py's MULTIPROC_VARIABLE), written
# out: importing it from there would load prometheus-client (10 MiB) here.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Fork, not spawn: a spawned (or forkserver) child makes multiprocessing start
# its resource tracker, one more process (13 MiB) for nothing we use. Forking
# is safe here because the supervisor runs no thread and has imported nothing
# but this module; each child imports what it needs after the fork.
FORK = multiprocessing.get_context("fork")


def serve(config: Config) -> None:
    # The data directory is checked once, here, whatever serves it next
    # (and first of all, a lost database: see reconcile.check_not_lost).
    if config.workers == 1:
        needs_an_admin = _run(_prepare(config))  # this process serves next
    else:
        needs_an_admin = _prepare_in_a_child(config)
    config = replace(config, reconcile=False)
    if needs_an_admin:
        import secrets  # only then: it loads OpenSSL's libcrypto (4 MiB)
        config = replace(config, setup_code=secrets.token_hex(6))
    if config.workers == 1:
        stop_signals = (signal.SIGINT, signal.SIGTERM)
        _run(_serve(config, lambda: _print_url(config), stop_signals))
    else:
        Supervisor(config).run()


async def _serve(config: Config, announce, stop_signals: tuple[int, ...]) -> None:
    """Serve until one of `stop_signals`, then drain and close.

    Not web.run_app: its shutdown drops the rest of a body still arriving,
    and a second SIGTERM raises in the middle of its cleanup.
    """
    # Here, not at the top: the supervisor imports this module too.
    from aiohttp import web

    from ..web.accesslog import AccessLog, AccessLogger
    from ..web.app import create_app
    from ..web.draining import InFlight, inflight_middleware
    from ..web.keys import inflight_key

    inflight = InFlight()
    app = create_app(config)
    app.middlewares.insert(0, inflight_middleware(inflight))
    app[inflight_key] = inflight  # /readyz says no once it is stopping
    access_log = AccessLog()
    runner = web.AppRunner(app, shutdown_timeout=CANCEL_GRACE, access_log_class=AccessLogger,
                           access_log=access_log)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, reuse_port=config.workers > 1)
        await site.start()
        announce()
        await _signalled(stop_signals)
        inflight.stopping = True  # /readyz answers 503 on connections kept alive
        await site.stop()  # no new connections
        await inflight.drain(config.shutdown_timeout)
    finally:
        await runner.cleanup()
        access_log.flush()


async def _signalled(signals: tuple[int, ...]) -> None:
    """Return at the first of `signals`; any later one is ignored, up to the
    process's exit (the loop, once closed, would restore the default: die)."""
    import asyncio

    loop = asyncio.get_running_loop()
    received = asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, received.set)
    await received.wait()
    for sig in signals:
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)


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
        # Each worker sends its pid when it serves: a pipe, written whole
        # (a few bytes are one write), so the workers may share its end.
        self.ready, self.ready_sender = FORK.Pipe(duplex=False)
        self.workers: list[multiprocessing.Process] = []

    def run(self) -> None:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
        # The workers' metrics, summed by whichever answers a scrape: a
        # directory of this instance's own, made empty and removed at exit
        # (a shared or reused one would add up other processes' counts).
        metrics_dir = tempfile.mkdtemp(prefix="audioserver-metrics-")
        os.environ[METRICS_DIR_VARIABLE] = metrics_dir  # the workers inherit it
        try:
            self.workers = [self._start() for _ in range(self.config.workers)]
            self._wait_until_ready()
            _print_url(self.config)
            self._watch()
        except KeyboardInterrupt:
            pass
        finally:
            self._stop_all()
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _start(self) -> multiprocessing.Process:
        process = FORK.Process(target=_worker_main,
                               args=(self.config, self.ready_sender, os.getpid()),
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
            if self.ready.poll(0.1):
                self.ready.recv()
                started += 1

    def _watch(self) -> None:
        """Replace any worker that dies, until we are told to stop."""
        while True:
            sentinels = {worker.sentinel: worker for worker in self.workers}
            for sentinel in multiprocessing.connection.wait(list(sentinels)):
                dead = sentinels[sentinel]
                log.error("worker %d exited with %s; starting another", dead.pid, dead.exitcode)
                # Its uploads in flight are no longer in flight. (Imported
                # only now: most supervisors never need prometheus-client.)
                from prometheus_client import multiprocess
                multiprocess.mark_process_dead(dead.pid)
                self.workers[self.workers.index(dead)] = self._start()
                time.sleep(1)  # do not spin if every start fails

    def _stop_all(self) -> None:
        # A second signal (Ctrl-C twice, or the supervisor's own SIGTERM
        # coming after the group's) must not interrupt the waiting below.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for worker in self.workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)
        deadline = (time.monotonic() + self.config.shutdown_timeout + 2 * CANCEL_GRACE
                    + WORKER_STOP_MARGIN)
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.error("worker %d did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.join()


async def _prepare(config: Config) -> bool:
    """Reconcile the data directory; and is this users mode with no account
    yet? Then /setup makes the first admin."""
    from ..library import open_library  # here: the supervisor never calls this

    async with open_library(config, parsers=False) as library:
        return config.auth_mode == "users" and await library.accounts.count_users() == 0


def _prepare_in_a_child(config: Config) -> bool:
    """_prepare in a child that exits before the workers start, so that what
    it imports (the library, its drivers) never weighs on the supervisor. Its
    StartupError is raised here, with the same message; a child that dies of
    anything else has printed its traceback: exit 1, as that exception would
    have made this process do."""
    answer, sender = FORK.Pipe(duplex=False)
    child = FORK.Process(target=_prepare_main, args=(config, sender, os.getpid()),
                         name="audioserver-prepare")
    child.start()
    sender.close()  # then recv() ends (EOFError) if the child dies without answering
    try:
        outcome, value = answer.recv()
    except EOFError:
        outcome, value = None, None
    finally:
        child.join()  # also on Ctrl-C: the child, in the same group, stops too
        answer.close()
    if outcome == "error":
        raise StartupError(value)
    if outcome is None:
        raise SystemExit(1)
    return value


def _prepare_main(config: Config, sender, supervisor_pid: int) -> None:
    """The child of _prepare_in_a_child."""
    die_with_parent(supervisor_pid)
    try:
        sender.send(("prepared", _run(_prepare(config))))
    except StartupError as exc:
        sender.send(("error", str(exc)))
    except KeyboardInterrupt:
        pass  # the supervisor, in the same process group, stops with 130


def _run(coroutine):
    """asyncio.run, with asyncio (8 MiB) imported only by a process that runs a loop."""
    import asyncio

    return asyncio.run(coroutine)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _worker_main(config: Config, ready, supervisor_pid: int) -> None:
    """A worker process: serve until told to stop, or until the supervisor dies
    (even by kill -9: then no orphan keeps the port)."""
    # Ctrl-C reaches the whole process group; the supervisor decides, and
    # stops each worker with SIGTERM, which, until _serve handles it, does
    # what it does by default (not the supervisor's handler, forked with us).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(supervisor_pid)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    _run(_serve(config, lambda: ready.send(os.getpid()), (signal.SIGTERM,)))
