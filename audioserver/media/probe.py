"""A pool of worker processes that parse and decode untrusted audio, with a time limit.

No release of libsndfile carries every published parser fix, so parsing
happens in child processes: one that crashes or runs past the time limit is
killed and replaced, and the upload that caused it gets a 415. Each worker
answers one JSON line per request on its stdout. A worker also enforces the
time limit itself and dies with the process that started it, so none keeps
decoding after a kill -9 of the server.

Run as `python -m audioserver.media.probe` it is the worker itself.
"""

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import logging
import os
import signal
import sys

from ..errors import AudioServerError, NotAudio, Undecodable
from ..models import AudioInfo
from ..parentage import die_with_parent

log = logging.getLogger(__name__)

# Bounds what a crafted file can make the parser allocate.
WORKER_MEMORY_LIMIT = 4 * 1024**3
# The longest answer line: 10,000 waveform points are about 120 KB of JSON.
ANSWER_LIMIT = 4 * 1024**2
# A worker's own limit runs this much past the pool's, which normally acts
# first (and says why); the worker's is for when nobody is left to act.
OWN_LIMIT_MARGIN = 2.0
# A worker beyond a pool's warm ones stops after this many seconds unused.
IDLE_STOP = 60.0
# A request waits for a busy worker unless every one has been on its job
# this long (a probe takes milliseconds): then it starts another.
OVERFLOW_WAIT = 0.5


class ProbePool:
    """Up to `size` worker processes: `warm` of them started by start() and
    kept, the others started when needed and stopped after `idle_stop`
    seconds without work.

    A worker costs some 37 MiB of RSS at rest (numpy and libsndfile), in each
    serving worker: a pool needed rarely (waveforms, previews) costs nothing
    until needed. A request waits for a busy worker rather than start
    another, unless every busy one has been on its job for OVERFLOW_WAIT: a
    burst of quick probes is served by the warm one, and a parser stuck on a
    hostile file holds nobody up for long.
    """

    def __init__(self, size: int, timeout: float, warm: int | None = None,
                 idle_stop: float = IDLE_STOP, name: str = "probe"):
        self.size = size
        self.timeout = timeout
        self.warm = size if warm is None else warm
        self.idle_stop = idle_stop
        self.name = name  # on the workers' command line: which pool, for ps and the tests
        self._idle: list[_Worker] = []  # the most recently used last
        self._busy: dict[_Worker, float] = {}  # since when
        self._starting = 0
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the warm workers now and wait until each has loaded its parser,
        so that no upload waits for that (the first one did, 200 ms)."""
        count = max(0, self.warm - self._live())
        self._starting += count
        results = await asyncio.gather(*(self._start_ready() for _ in range(count)),
                                       return_exceptions=True)
        self._starting -= count
        for result in results:
            if isinstance(result, _Worker):
                self._give(result)
        self._notify()
        for result in results:
            if isinstance(result, BaseException):
                await self.close()
                raise result

    async def _start_ready(self) -> "_Worker":
        worker = await _Worker.start(self.timeout + OWN_LIMIT_MARGIN, self.name)
        try:
            await asyncio.wait_for(worker.ask({"job": "ready"}), self.timeout)
        except BaseException:
            await worker.kill()
            raise
        return worker

    async def probe(self, path: os.PathLike, label: str) -> AudioInfo:
        """The audio metadata of `path`, or NotAudio naming `label`."""
        answer = await self._ask({"job": "probe", "path": os.fspath(path)}, label)
        if "error" in answer:
            raise NotAudio(
                f"{label!r} is not audio this server can read ({answer['error']}); "
                "send WAV, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF or AU",
                name=label,
            )
        cover = answer.get("cover")
        return AudioInfo(**answer["info"], tags=answer.get("tags", {}),
                         cover=cover and (cover[0], base64.b64decode(cover[1])))

    async def peaks(self, path: os.PathLike, label: str, points: int, frames: int,
                    format: str) -> dict:
        """Waveform peaks of `path` (see sndfile.peaks): decoding is parsing too."""
        answer = await self._ask({"job": "peaks", "path": os.fspath(path), "points": points,
                                  "frames": frames, "format": format}, label, Undecodable)
        if "error" in answer:
            raise Undecodable(undecodable(label, answer["error"]), name=label)
        return answer["peaks"]

    async def preview(self, path: os.PathLike, target: os.PathLike, label: str, format: str,
                      frames: int, time_limit: float) -> bool:
        """Write the preview of `path` to `target` (see encode.make_preview),
        within `time_limit` seconds; False when the original plays as it is."""
        request = {"job": "preview", "path": os.fspath(path), "target": os.fspath(target),
                   "format": format, "frames": frames, "time_limit": time_limit}
        answer = await self._ask(request, label, Undecodable, max(time_limit, self.timeout))
        if "error" in answer:
            raise Undecodable(undecodable(label, answer["error"]), name=label)
        return not answer["native"]

    async def _ask(self, request: dict, label: str,
                   error: type[AudioServerError] = NotAudio,
                   timeout: float | None = None) -> dict:
        timeout = timeout or self.timeout
        worker = await self._take()
        try:
            answer = await asyncio.wait_for(worker.ask(request), timeout)
        except (asyncio.TimeoutError, _WorkerDied) as exc:
            # A timeout's message is empty: say what happened instead.
            reason = str(exc) or f"no answer within {timeout:g} s"
            log.warning("reading %r failed: %s; the worker is replaced", label, reason)
            await self._retire(worker)
            raise error(
                f"{label!r} could not be read as audio: the parser crashed or took "
                f"longer than {timeout:g} s on it",
                name=label,
            ) from None
        except BaseException:
            # Cancelled mid-question: its answer would confuse the next caller.
            await self._retire(worker)
            raise
        self._give(worker)
        return answer

    async def _take(self) -> "_Worker":
        """An idle worker, or a new one (see the class's docstring), marked busy."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self._idle:
                worker = self._idle.pop()
                break
            if self._live() < self.size and (self._live() == 0 or self._all_stuck(now)):
                self._starting += 1
                try:
                    worker = await _Worker.start(self.timeout + OWN_LIMIT_MARGIN, self.name)
                finally:
                    self._starting -= 1
                    self._notify()
                break
            changed = self._changed.wait()
            wait = OVERFLOW_WAIT if self._live() < self.size else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed, wait)
        self._busy[worker] = loop.time()
        return worker

    def _all_stuck(self, now: float) -> bool:
        return self._starting == 0 and all(now - since >= OVERFLOW_WAIT
                                           for since in self._busy.values())

    def _live(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    def _give(self, worker: "_Worker") -> None:
        """Back to the idle ones, and a waiting request told."""
        self._busy.pop(worker, None)
        worker.last_used = asyncio.get_running_loop().time()
        self._idle.append(worker)
        self._notify()
        if self._live() > self.warm and (self._reaper is None or self._reaper.done()):
            self._reaper = asyncio.create_task(self._stop_idle())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _stop_idle(self) -> None:
        """Stop the workers beyond the warm ones once idle for `idle_stop`."""
        loop = asyncio.get_running_loop()
        while self._live() > self.warm:
            await asyncio.sleep(self.idle_stop / 4)
            while (self._idle and self._live() > self.warm
                   and loop.time() - self._idle[0].last_used >= self.idle_stop):
                await self._retire(self._idle[0])

    async def _retire(self, worker: "_Worker") -> None:
        self._busy.pop(worker, None)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        self._notify()  # a waiting request may start another
        await worker.kill()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for worker in [*self._idle, *self._busy]:
            await self._retire(worker)


def undecodable(label: str, reason: str) -> str:
    """What a stored file that cannot be decoded means, and what to do."""
    return (f"{label!r} could not be decoded: {reason}. Download it to check it in an "
            "audio program, and upload a sound copy if it is damaged")


class _WorkerDied(Exception):
    pass


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.last_used = 0.0

    @classmethod
    async def start(cls, time_limit: float, pool: str) -> "_Worker":
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "audioserver.media.probe", "--time-limit", str(time_limit),
            "--parent", str(os.getpid()), "--pool", pool,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            limit=ANSWER_LIMIT,
            # Keep the worker out of the server's process group, so a Ctrl-C
            # in the terminal reaches the server, which then stops the worker.
            start_new_session=True,
        )
        return cls(process)

    async def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        try:
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            raise _WorkerDied(f"the parser process exited with {await self.process.wait()}")
        return json.loads(line)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


def serve_requests(stdin=sys.stdin, stdout=sys.stdout, time_limit: float = 0) -> None:
    """The worker's loop: a JSON request per line in, a JSON answer per line out.

    Each request runs under an alarm of `time_limit` seconds (0: none). SIGALRM
    is left at its default, which ends the process even inside libsndfile.
    """
    from . import encode, sndfile

    jobs = {
        "ready": lambda r: _warm(),
        "probe": lambda r: _probe(r["path"]),
        "peaks": lambda r: {"peaks": sndfile.peaks(r["path"], r["points"], r["frames"],
                                                   r["format"])},
        "preview": lambda r: encode.make_preview(r["path"], r["target"], r["format"],
                                                 r["frames"]),
    }
    for line in stdin:
        request = json.loads(line)
        # A job may bring a longer limit of its own (a long file's preview).
        limit = max(time_limit, request.get("time_limit", 0) + OWN_LIMIT_MARGIN)
        signal.setitimer(signal.ITIMER_REAL, limit if time_limit else 0)
        try:
            answer = jobs[request["job"]](request)
        except sndfile.ProbeFailed as exc:
            answer = {"error": str(exc)}
        except Exception:  # our own parsing (MP3 frames) met bytes it did not expect
            log.exception("%s of %s failed", request["job"], request["path"])
            answer = {"error": "its structure could not be read: it may be damaged"}
        signal.setitimer(signal.ITIMER_REAL, 0)
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()


def _warm() -> dict:
    """The ready job: load now what the first probe would load, so the first
    upload is as quick as the rest. mutagen imports its format modules on the
    first File() call (25-50 ms); a few bytes that are no format do that."""
    import mutagen

    from . import tags  # noqa: F401

    mutagen.File(io.BytesIO(b"\0" * 128))
    return {}


def _probe(path: str) -> dict:
    """The probe job: the audio's metadata, then its tags and cover art."""
    from . import sndfile, tags

    info = dataclasses.asdict(sndfile.probe(path))
    del info["tags"], info["cover"]  # sndfile reads none: they come from tags.py
    texts, cover = tags.read_tags(path)
    if cover is not None:
        cover = [cover[0], base64.b64encode(cover[1]).decode()]
    return {"info": info, "tags": texts, "cover": cover}


def _limit_memory() -> None:
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))


def _private_answer_channel():
    """Answers get their own copy of stdout; stray C-level prints go to stderr."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return answers


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m audioserver.media.probe")
    parser.add_argument("--time-limit", type=float, default=0.0,
                        help="seconds a request may take before this process ends itself")
    parser.add_argument("--parent", type=int, default=None,
                        help="the process this one dies with")
    parser.add_argument("--pool", default="probe",
                        help="the pool it belongs to (only shown, by ps)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse_arguments()
    if arguments.parent is not None:
        # Holds nothing worth a clean exit: SIGKILL cannot be caught or delayed.
        die_with_parent(arguments.parent, signal.SIGKILL)
    _limit_memory()
    serve_requests(stdout=_private_answer_channel(), time_limit=arguments.time_limit)
