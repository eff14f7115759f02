"""The supervisor of several workers only starts, watches and stops them: it
holds in memory nothing that serving needs, and starts no helper process of
its own. What it holds is seen from outside, in the shared libraries mapped
into it (/proc/PID/maps), so the test needs no cooperation from the server."""

import psutil

from serverprocess import ServerProcess

# A shared library each of these loads, and the supervisor needs none of them.
HEAVY = {
    "libsndfile": "soundfile",
    "_multiarray_umath": "numpy",
    "_http_parser": "aiohttp",
    "_speedups": "jinja2 (markupsafe)",
    "_sqlite3": "the database (checking the library happens in a child)",
}


def loaded(process: psutil.Process) -> set[str]:
    paths = {region.path for region in process.memory_maps()}
    return {what for library, what in HEAVY.items() if any(library in path for path in paths)}


def test_the_supervisor_loads_nothing_of_the_workers_and_starts_no_helper(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path, workers=2).start()
    try:
        supervisor = psutil.Process(server.process.pid)
        children = supervisor.children()
        # Its only children are the workers: no multiprocessing resource
        # tracker beside them, and the child that checked the library is gone.
        assert len(children) == 2
        assert not [child for child in children
                    if "resource_tracker" in " ".join(child.cmdline())]
        assert loaded(supervisor) == set()
        # A worker does load them all: the check above would see them.
        assert loaded(children[0]) == set(HEAVY.values())
    finally:
        server.kill()


def test_the_supervisor_names_the_metrics_variable_prometheus_reads():
    """Written out in cli/serve.py, not imported from web/measures.py: that
    would load prometheus-client into the supervisor."""
    from audioserver.cli.serve import METRICS_DIR_VARIABLE
    from audioserver.web.measures import MULTIPROC_VARIABLE
    assert METRICS_DIR_VARIABLE == MULTIPROC_VARIABLE
