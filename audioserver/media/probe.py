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


class ProbePool:
    """Up to `size` worker processes, started on first use."""

    def __init__(self, size: int, timeout: float):
        self.timeout = timeout
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        for _ in range(size):
            self._idle.put_nowait(None)  # a slot whose worker is not started yet

    async def start(self) -> None:
        """Start every worker now and wait until each has loaded its parser,
        so that no upload waits for that (the first one did, 200 ms)."""
        slots = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        try:
            started = await asyncio.gather(*(self._start_ready() for slot in slots
                                              if slot is None))
            slots = [slot for slot in slots if slot is not None] + started
        finally:
            for slot in slots:
                self._idle.put_nowait(slot)

    async def _start_ready(self) -> "_Worker":
        worker = await self._start_worker(self.timeout + OWN_LIMIT_MARGIN)
        await asyncio.wait_for(worker.ask({"job": "ready"}), self.timeout)
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
        worker = await self._idle.get()
        try:
            if worker is None:
                worker = await self._start_worker(self.timeout + OWN_LIMIT_MARGIN)
            return await asyncio.wait_for(worker.ask(request), timeout)
        except (asyncio.TimeoutError, _WorkerDied) as exc:
            # A timeout's message is empty: say what happened instead.
            reason = str(exc) or f"no answer within {timeout:g} s"
            log.warning("reading %r failed: %s; the worker is replaced", label, reason)
            worker = await self._retire(worker)
            raise error(
                f"{label!r} could not be read as audio: the parser crashed or took "
                f"longer than {timeout:g} s on it",
                name=label,
            ) from None
        except BaseException:
            # Cancelled mid-question: its answer would confuse the next caller.
            worker = await self._retire(worker)
            raise
        finally:
            self._idle.put_nowait(worker)

    async def _start_worker(self, time_limit: float) -> "_Worker":
        worker = await _Worker.start(time_limit)
        self._workers.add(worker)
        return worker

    async def _retire(self, worker: "_Worker | None") -> None:
        if worker is not None:
            self._workers.discard(worker)
            await worker.kill()
        return None

    async def close(self) -> None:
        for worker in list(self._workers):
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

    @classmethod
    async def start(cls, time_limit: float) -> "_Worker":
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "audioserver.media.probe", "--time-limit", str(time_limit),
            "--parent", str(os.getpid()),
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
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse_arguments()
    if arguments.parent is not None:
        # Holds nothing worth a clean exit: SIGKILL cannot be caught or delayed.
        die_with_parent(arguments.parent, signal.SIGKILL)
    _limit_memory()
    serve_requests(stdout=_private_answer_channel(), time_limit=arguments.time_limit)
