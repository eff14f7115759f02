"""What each of the server's processes holds at rest, and how long it takes
to start.

Starts `python -m audioserver --workers N` on an empty temporary data
directory RUNS times; each time it times the start to the "AudioServer is
serving" line, waits REST seconds, then reads the RSS, PSS and USS
(psutil's memory_full_info, from /proc/PID/smaps) of the supervisor and of
every process under it, grouped by role: the supervisor, its workers, the
parsers under them, and anything else (multiprocessing's resource tracker,
say). Prints the medians over the runs, per process of each role, and the
sums over all processes.

    .venv/bin/python bench/rest_memory.py [--workers 2] [--runs 3] [--rest 4]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests")]
from serverprocess import READY_LINE, free_port  # noqa: E402

MIB = 2**20


def role(process: psutil.Process, supervisor: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    if process.pid == supervisor.pid:
        return "supervisor"
    if "audioserver.media.probe" in command:
        return "parser"
    if process.ppid() == supervisor.pid and "-m audioserver" in command:
        return "worker"
    return "other: " + command[:60]


def one_start(workers: int, rest: float) -> tuple[float, dict[str, list[tuple]]]:
    """Seconds to the ready line; {role: [(rss, pss, uss) in MiB, ...]}."""
    with tempfile.TemporaryDirectory() as data:
        command = [sys.executable, "-m", "audioserver", "--port", str(free_port()),
                   "--data-dir", data, "--workers", str(workers)]
        started = time.monotonic()
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, start_new_session=True)
        try:
            for line in server.stdout:
                if READY_LINE in line:
                    break
            ready = time.monotonic() - started
            time.sleep(rest)
            supervisor = psutil.Process(server.pid)
            roles: dict[str, list[tuple]] = {}
            for process in [supervisor, *supervisor.children(recursive=True)]:
                memory = process.memory_full_info()
                roles.setdefault(role(process, supervisor), []).append(
                    (memory.rss / MIB, memory.pss / MIB, memory.uss / MIB))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
    return ready, roles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rest", type=float, default=4.0, help="seconds after the start")
    args = parser.parse_args()
    runs = [one_start(args.workers, args.rest) for _ in range(args.runs)]
    times = [ready for ready, _ in runs]
    print(f"start to ready: median {statistics.median(times):.3f} s "
          f"({min(times):.3f}-{max(times):.3f})")
    for name in sorted({name for _, roles in runs for name in roles}):
        found = [roles[name] for _, roles in runs if name in roles]
        count = statistics.median(len(processes) for processes in found)
        figures = [statistics.median(statistics.mean(p[i] for p in processes)
                                     for processes in found) for i in range(3)]
        print(f"{name:12s} x{count:g}: RSS {figures[0]:5.1f}  PSS {figures[1]:5.1f}  "
              f"USS {figures[2]:5.1f} MiB each")
    for i, measure in enumerate(("RSS", "PSS", "USS")):
        sums = [sum(p[i] for processes in roles.values() for p in processes)
                for _, roles in runs]
        print(f"all processes, {measure}: median {statistics.median(sums):.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
