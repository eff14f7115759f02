"""The parser runs in worker processes: a hang or a crash costs one 415."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import audiofiles
from audioserver.errors import NotAudio
from audioserver.media.probe import ProbePool


@pytest.fixture
async def pool():
    pool = ProbePool(size=1, timeout=2.0)
    yield pool
    await pool.close()


def workers() -> list[psutil.Process]:
    return [child for child in psutil.Process().children(recursive=True)
            if "audioserver.media.probe" in " ".join(child.cmdline())]


async def test_reads_audio_metadata(pool, tmp_path):
    path = tmp_path / "a.flac"
    path.write_bytes(audiofiles.encode(1.5, "FLAC", samplerate=22050, channels=2))
    info = await pool.probe(path, "a.flac")
    assert (info.format, info.frames, info.samplerate, info.channels) == ("FLAC", 33075, 22050, 2)


async def test_a_hung_parser_is_killed_and_replaced(pool, tmp_path):
    # Opening a FIFO with no writer blocks forever: a real hang in the worker.
    fifo = tmp_path / "hang.wav"
    os.mkfifo(fifo)
    with pytest.raises(NotAudio, match="longer than 2 s"):
        await pool.probe(fifo, "hang.wav")
    assert workers() == []
    path = tmp_path / "fine.wav"
    path.write_bytes(audiofiles.wav())
    assert (await pool.probe(path, "fine.wav")).frames == 44100


async def test_a_timeout_is_logged_with_its_reason(pool, tmp_path, caplog):
    fifo = tmp_path / "hang.wav"
    os.mkfifo(fifo)
    with pytest.raises(NotAudio):
        await pool.probe(fifo, "hang.wav")
    [record] = [r for r in caplog.records if "the worker is replaced" in r.getMessage()]
    assert "failed: ;" not in record.getMessage()
    assert "no answer within 2 s" in record.getMessage()


async def test_a_crashed_parser_costs_one_415(pool, tmp_path):
    fifo = tmp_path / "crash.wav"
    os.mkfifo(fifo)
    probing = asyncio.create_task(pool.probe(fifo, "crash.wav"))
    while not workers():
        await asyncio.sleep(0.05)
    [worker] = workers()
    await asyncio.sleep(0.2)  # let it block inside the parser
    worker.kill()  # as a segfault in libsndfile would end it
    with pytest.raises(NotAudio, match="crashed"):
        await probing
    path = tmp_path / "fine.wav"
    path.write_bytes(audiofiles.wav())
    assert (await pool.probe(path, "fine.wav")).samplerate == 44100
    assert [w.pid for w in workers()] != [worker.pid]


async def test_not_audio_keeps_the_worker(pool, tmp_path):
    path = tmp_path / "text.wav"
    path.write_text("hello")
    with pytest.raises(NotAudio, match="not audio this server can read"):
        await pool.probe(path, "text.wav")
    before = [w.pid for w in workers()]
    with pytest.raises(NotAudio):
        await pool.probe(path, "text.wav")
    assert [w.pid for w in workers()] == before


async def test_a_cancelled_probe_leaves_the_pool_usable(pool, tmp_path):
    fifo = tmp_path / "slow.wav"
    os.mkfifo(fifo)
    probing = asyncio.create_task(pool.probe(fifo, "slow.wav"))
    await asyncio.sleep(0.5)
    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probing
    path = tmp_path / "fine.wav"
    path.write_bytes(audiofiles.wav())
    assert (await pool.probe(path, "fine.wav")).channels == 1


async def test_an_mp3_followed_by_junk_is_measured_without_a_timeout(tmp_path):
    # 64 MB of 0xFF: every byte a sync byte, none a header. Walked byte by
    # byte in Python this outlasted the parser's time limit.
    pool = ProbePool(size=1, timeout=20.0)
    try:
        path = tmp_path / "junk.mp3"
        with open(path, "wb") as file:
            file.write(audiofiles.lame_mp3(1.0, vbr=False))
            for _ in range(64):
                file.write(b"\xff" * (1 << 20))
        info = await pool.probe(path, "junk.mp3")
        assert info.format == "MP3"
        assert info.frames / info.samplerate == pytest.approx(1.0, abs=0.1)
        [worker] = workers()
        path.write_bytes(audiofiles.wav())
        await pool.probe(path, "fine.wav")
        assert [w.pid for w in workers()] == [worker.pid]  # never killed
    finally:
        await pool.close()


# Orphans: a parser outlives neither its owner nor its time limit.

OWNER = """
import asyncio, sys
from audioserver.media.probe import ProbePool

async def main():
    pool = ProbePool(size=1, timeout=600)
    await pool.probe(sys.argv[1], "hang.wav")

asyncio.run(main())
"""


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_parser_dies_with_its_owner(tmp_path):
    """kill -9 of a serving process must not leave its parser decoding on."""
    fifo = tmp_path / "hang.wav"
    os.mkfifo(fifo)
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(fifo)])
    wait_for(lambda: psutil.Process(owner.pid).children(), timeout=20)
    [parser] = psutil.Process(owner.pid).children()
    try:
        time.sleep(0.3)  # blocked in the parser now
        owner.kill()
        owner.wait()
        wait_for(lambda: not parser.is_running() or parser.status() == psutil.STATUS_ZOMBIE,
                 timeout=10)
    finally:
        owner.kill()
        with contextlib.suppress(psutil.NoSuchProcess):
            parser.kill()


def test_a_parser_keeps_its_time_limit_on_its_own(tmp_path):
    """Even with nobody left to kill it, a parser stops at its time limit."""
    fifo = tmp_path / "hang.wav"
    os.mkfifo(fifo)
    with subprocess.Popen([sys.executable, "-m", "audioserver.media.probe", "--time-limit", "1"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as parser:
        try:
            parser.stdin.write(json.dumps({"job": "probe", "path": str(fifo)}).encode() + b"\n")
            parser.stdin.flush()
            assert parser.wait(timeout=20) == -signal.SIGALRM
        finally:
            parser.kill()


async def test_started_workers_are_ready_before_the_first_probe(tmp_path):
    pool = ProbePool(size=2, timeout=5.0)
    try:
        await pool.start()
        started = {process.pid for process in workers()}
        assert len(started) == 2
        path = tmp_path / "a.wav"
        path.write_bytes(audiofiles.wav(0.5))
        await asyncio.gather(pool.probe(path, "a.wav"), pool.probe(path, "a.wav"))
        assert {process.pid for process in workers()} == started  # none started late
    finally:
        await pool.close()


def parsers_of(server) -> dict[str, int]:
    """How many parser processes of each pool (--pool NAME) the server runs."""
    pools = {}
    for process in server.descendants():
        command = process.cmdline()
        if "audioserver.media.probe" in command:
            pool = command[command.index("--pool") + 1]
            pools[pool] = pools.get(pool, 0) + 1
    return pools


def test_a_server_starts_its_parsers_before_it_serves(tmp_path):
    from serverprocess import ServerProcess
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2).start()
    try:
        # One warm upload parser in each serving worker, nothing for the rarer jobs.
        assert parsers_of(server) == {"probe": 2}
    finally:
        server.kill()


def test_a_ready_worker_has_loaded_what_the_first_probe_needs():
    # A ready worker answered its first upload 25-50 ms slower than the next,
    # importing the tag readers (mutagen's format modules) only then.
    script = """
import io, json, sys
from audioserver.media.probe import serve_requests
out = io.StringIO()
serve_requests(stdin=io.StringIO(json.dumps({"job": "ready"}) + "\\n"), stdout=out)
print(json.dumps({"answer": out.getvalue(),
                  "loaded": sorted(name for name in sys.modules if name.startswith("mutagen"))}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["answer"] == "{}\n"
    assert {"mutagen.wave", "mutagen.flac", "mutagen.mp3", "mutagen.id3",
            "mutagen.oggvorbis", "mutagen.aiff"} <= set(result["loaded"])


def test_waveform_and_preview_parsers_start_on_their_first_job(tmp_path):
    from serverprocess import ServerProcess
    server = ServerProcess(tmp_path / "data", tmp_path, workers=1).start()
    try:
        server.put("a.aiff", audiofiles.encode(2.0, "AIFF", channels=2))
        assert parsers_of(server) == {"probe": 1}
        status, headers, body = server.request("GET", "/preview?name=a.aiff")
        assert (status, headers["Content-Type"]) == (200, "audio/mpeg")
        assert body[:3] == b"ID3" or body[0] == 0xFF  # an MP3's first bytes
        assert parsers_of(server) == {"probe": 1, "preview": 1}
        status, headers, body = server.request("GET", "/waveform?name=a.aiff&points=10")
        assert status == 200 and json.loads(body)["length"] == 10
        assert parsers_of(server) == {"probe": 1, "preview": 1, "waveform": 1}
    finally:
        server.kill()


async def test_a_burst_of_quick_probes_needs_no_second_worker(tmp_path):
    pool = ProbePool(size=2, timeout=5.0, warm=1)
    try:
        await pool.start()
        [warm] = workers()
        path = tmp_path / "a.wav"
        path.write_bytes(audiofiles.wav(0.5))
        await asyncio.gather(*(pool.probe(path, "a.wav") for _ in range(20)))
        assert [process.pid for process in workers()] == [warm.pid]
    finally:
        await pool.close()


async def test_a_stuck_parser_holds_nobody_up(tmp_path):
    pool = ProbePool(size=2, timeout=10.0, warm=1)
    try:
        await pool.start()
        fifo = tmp_path / "hang.wav"
        os.mkfifo(fifo)
        stuck = asyncio.create_task(pool.probe(fifo, "hang.wav"))
        await asyncio.sleep(0.2)  # the warm worker is now blocked on it
        path = tmp_path / "a.wav"
        path.write_bytes(audiofiles.wav(0.5))
        assert (await pool.probe(path, "a.wav")).frames == 22050
        assert not stuck.done()  # answered by a second worker, not after the first's timeout
        assert len(workers()) == 2
        stuck.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stuck
    finally:
        await pool.close()


async def test_workers_beyond_the_warm_ones_stop_when_idle(tmp_path):
    pool = ProbePool(size=1, timeout=5.0, warm=0, idle_stop=0.5)
    try:
        await pool.start()
        assert workers() == []  # nothing until the first job
        path = tmp_path / "a.wav"
        path.write_bytes(audiofiles.wav(0.5))
        await pool.probe(path, "a.wav")
        [first] = workers()
        deadline = time.monotonic() + 30
        while workers() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert workers() == []
        assert not first.is_running()
        assert (await pool.probe(path, "a.wav")).channels == 1  # started again
        assert len(workers()) == 1
    finally:
        await pool.close()
    assert workers() == []
