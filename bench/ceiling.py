"""The ceiling of our stack on this machine: aiohttp answering one constant
JSON object, nothing else.

The same number of worker processes as the server, sharing the port with
SO_REUSEPORT as ours do, with no middlewares, no signals and no access log:
what Python and aiohttp cost a small answer, before any code of ours runs.
bench.py reports every small-request figure as a ratio to this one.

    python bench/ceiling.py PORT WORKERS
"""

import asyncio
import multiprocessing
import os
import socket
import sys

from aiohttp import web

from audioserver.parentage import die_with_parent

# About the size of an /info answer.
BODY = (b'{"name": "small007.wav", "duration": 2.0, "frames": 88200, "samplerate": 44100,'
        b' "channels": 2, "format": "WAV", "subtype": "PCM_16", "content_type": "audio/wav",'
        b' "size": 352844, "sha256": "' + b"0" * 64 + b'", "created_at":'
        b' "2026-11-26T02:00:00.000000Z", "owner": null, "visibility": "public"}')
READY_LINE = "ceiling serving"


async def constant(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def serve(port: int, ready) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", constant)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    ready.put(True)
    await asyncio.Event().wait()  # until the bench terminates us


def worker(port: int, ready, parent: int) -> None:
    die_with_parent(parent)  # terminate() of ours ends the workers too
    asyncio.run(serve(port, ready))


def main() -> None:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    assert hasattr(socket, "SO_REUSEPORT")
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    processes = [context.Process(target=worker, args=(port, ready, os.getpid()))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=30)
    print(READY_LINE, flush=True)
    for process in processes:
        process.join()


if __name__ == "__main__":
    main()
