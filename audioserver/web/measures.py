"""What each process counts for /metrics (metrics.py serves it).

Each process counts in a registry of its own, made by the app factory. With
several workers the supervisor gives them a directory of their own
(PROMETHEUS_MULTIPROC_DIR, see cli/serve.py) where prometheus-client keeps
every worker's counts in small mapped files, and a scrape, whichever worker
answers it, sums them all. The library's size is asked of the database at
scrape time, once, by the worker that answers.
"""

import asyncio
import bisect
import collections
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Requests take milliseconds; uploads of gigabytes, minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                   30, 60, 300)
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """What one process counts."""

    def __init__(self):
        self.registry = CollectorRegistry()
        metric = {"registry": self.registry}
        self.requests = Counter("audioserver_requests", "Requests answered, by route, method "
                                "and status", ["route", "method", "status"], **metric)
        self.latency = Histogram("audioserver_request_duration_seconds", "Time to the answer "
                                 "(for files: to its first byte), by route", ["route"],
                                 buckets=LATENCY_BUCKETS, **metric)
        self.uploaded = Counter("audioserver_uploaded_bytes", "Request body bytes of the "
                                "uploads that were stored", **metric)
        self.downloaded = Counter("audioserver_downloaded_bytes", "Audio bytes answered by "
                                  "downloads, as their Content-Length says", **metric)
        self.uploads_in_flight = Gauge("audioserver_uploads_in_flight", "Uploads being "
                                       "received or stored now", multiprocess_mode="livesum",
                                       **metric)
        self.probe = Histogram("audioserver_probe_seconds", "Reading one uploaded file's "
                               "audio metadata", buckets=PROBE_BUCKETS, **metric)
        self.refusals = Counter("audioserver_ratelimit_refusals", "Requests refused with 429, "
                                "by budget", ["budget"], **metric)
        self.backend_errors = Counter("audioserver_backend_errors", "A backend that did not "
                                      "answer: Redis for a rate-limit take, or any for /readyz",
                                      ["backend"], **metric)
        # Answers are counted in plain dicts and handed to prometheus-client
        # once per turn of the event loop: its labels() lookup and each value's
        # lock (with several workers, its mapped file too) cost ~10 µs a
        # request when done one request at a time.
        self._answered = collections.Counter()
        self._latencies = collections.defaultdict(list)
        self._flush_scheduled = False

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request answered (its counts reach the registry this turn)."""
        self._answered[route, method, status] += 1
        self._latencies[route].append(seconds)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        answered, self._answered = self._answered, collections.Counter()
        latencies, self._latencies = self._latencies, collections.defaultdict(list)
        for (route, method, status), count in answered.items():
            self.requests.labels(route, method, str(status)).inc(count)
        for route, seconds in latencies.items():
            _observe_all(self.latency.labels(route), seconds)

    def backend_error(self, backend: str) -> None:
        self.backend_errors.labels(backend).inc()

    async def exposition(self, library) -> bytes:
        """Every worker's counts (or this process's), and the library's size."""
        files, size, duration = await library.db.totals()
        self.flush()
        registry = self.registry
        if MULTIPROC_VARIABLE in os.environ:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(_LibrarySize(files, size, duration))


def _observe_all(histogram, values: list[float]) -> None:
    """histogram.observe() of each value, but each bucket and the sum written
    once. prometheus-client has no call for many observations; this is what
    its observe() does (buckets hold their own counts; the last bound is +Inf)."""
    counts = collections.Counter(bisect.bisect_left(histogram._upper_bounds, value)
                                 for value in values)
    histogram._sum.inc(sum(values))
    for index, count in counts.items():
        histogram._buckets[index].inc(count)


class _LibrarySize:
    """A registry-like collector of three gauges, known in advance."""

    def __init__(self, files: int, size: int, duration: float):
        self.values = (files, size, duration)

    def collect(self):
        files, size, duration = self.values
        for name, text, value in [
                ("audioserver_library_files", "Files in the library", files),
                ("audioserver_library_bytes", "Bytes of audio in the library", size),
                ("audioserver_library_duration_seconds", "Total duration of the library",
                 duration)]:
            yield GaugeMetricFamily(name, text, value=value)
