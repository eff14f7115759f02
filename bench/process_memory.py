"""What each of the server's processes costs at rest, and the peak of all of
them during 200 concurrent 5 MiB uploads.

bench.py's memory() counts the supervisor and the serving workers (RSS);
this counts every process of the server, the parsers included, by kind:
RSS, USS (pages the process alone holds) and PSS (each shared page split
among the processes sharing it, the honest sum for processes that share
libraries). The server runs with 2 workers, as in bench.py; the peak is
RSS, sampled every 20 ms, as bench.py samples it. Medians of --runs.

    .venv/bin/python bench/process_memory.py [--runs 3]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from bench import NO_LIMITS, PeakSampler, many_uploads  # noqa: E402
from serverprocess import ServerProcess  # noqa: E402

MiB = 2**20
# The parsers start before the server says it serves; give stragglers time.
SETTLE_SECONDS = 5


def processes(server: ServerProcess) -> list[psutil.Process]:
    root = psutil.Process(server.process.pid)
    return [root] + root.children(recursive=True)


def kind(process: psutil.Process) -> str:
    command = process.cmdline()
    if "--pool" in command:
        return f"parser ({command[command.index('--pool') + 1]})"
    if "audioserver.media.probe" in command:
        return "parser"
    joined = " ".join(command)
    if "resource_tracker" in joined:
        return "resource tracker"
    return "serving worker" if "spawn_main" in joined else "supervisor"


def at_rest(server: ServerProcess) -> list[tuple[str, float, float, float]]:
    rows = []
    for process in processes(server):
        memory = process.memory_full_info()
        rows.append((kind(process), memory.rss / MiB, memory.uss / MiB, memory.pss / MiB))
    return rows


def all_rss(server: ServerProcess) -> int:
    total = 0
    for process in processes(server):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # a process that ended while we looked
            pass
    return total


def one_run(tmp: Path) -> tuple[list, float]:
    server = ServerProcess(tmp / "data", tmp, env=NO_LIMITS, workers=2)
    server.start(server.command("--max-upload-size", "2G"))
    try:
        time.sleep(SETTLE_SECONDS)
        rows = at_rest(server)
        sampler = PeakSampler(lambda: all_rss(server))
        sampler.start()
        statuses = asyncio.run(many_uploads(server.port, 200, 5 * MiB))
        peak = sampler.stop()
        assert set(statuses) == {201}, statuses
        return rows, peak / MiB
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    peaks = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as name:
            rows, peak = one_run(Path(name))
        peaks.append(peak)
        if run == 0:
            print(f"{'process at rest':<22}{'RSS MiB':>9}{'USS MiB':>9}{'PSS MiB':>9}")
            for row in rows:
                print(f"{row[0]:<22}{row[1]:>9.1f}{row[2]:>9.1f}{row[3]:>9.1f}")
            totals = [sum(row[column] for row in rows) for column in (1, 2, 3)]
            print(f"{f'all {len(rows)}':<22}" + "".join(f"{t:>9.1f}" for t in totals))
    print(f"peak RSS of all processes during 200 concurrent 5 MiB uploads: "
          f"{statistics.median(peaks):.0f} MiB (median of {args.runs}: "
          f"{', '.join(f'{p:.0f}' for p in peaks)})")


if __name__ == "__main__":
    main()
