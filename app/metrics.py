"""Prometheus metrics: what operators watch, defined once, recorded where the events happen.

Why module-level metrics: prometheus-client keeps one registry per process; in multiprocess mode
(`fovea serve --workers N` sets PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client)
every process writes its values to files there and `/metrics` adds them up, so every worker counts.
docs/operations.md lists each metric and its labels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event

from app.imaging.syntaxes import find_transfer_syntax

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
# Request durations from a cached frame (a millisecond) to a large transcode or STOW (a minute).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
UNMATCHED_ROUTE = "unmatched"  # unknown paths share one label, so scanners cannot grow the series

HTTP_REQUESTS = Counter("fovea_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "fovea_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response body",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
STOW_INSTANCES = Counter(
    "fovea_stow_instances_total", "Instances in STOW-RS requests, by outcome", ["outcome"]
)
STOW_BYTES = Counter("fovea_stow_bytes_total", "Bytes of the instances STOW-RS stored")
STOW_FAILURES = Counter(
    "fovea_stow_failures_total", "Instances STOW-RS refused, by failure reason code", ["reason"]
)
INSTANCES_DELETED = Counter("fovea_instances_deleted_total", "Instances removed by DELETE requests")
FRAMES_SERVED = Counter(
    "fovea_frames_served_total",
    "Frames sent by the frames resource, by stored and served transfer syntax",
    ["stored_syntax", "served_syntax"],
)
FIXITY_CHECKS = Counter(
    "fovea_fixity_checks_total", "Stored files the background fixity check read, by what it found", ["status"]
)
FIXITY_BYTES = Counter("fovea_fixity_bytes_read_total", "Bytes the background fixity check read")
CACHE_LOOKUPS = Counter(
    "fovea_cache_lookups_total",
    "Cache look-ups: hit, miss (made now) or shared (joined a making already running)",
    ["cache", "result"],
)
CACHE_EVICTIONS = Counter("fovea_cache_evictions_total", "Entries dropped to stay in bounds", ["cache"])
CACHE_BYTES = Gauge(
    "fovea_cache_bytes",
    "Bytes held by each cache, summed over live processes",
    ["cache"],
    multiprocess_mode="livesum",
)
DERIVATIVES_MADE = Counter(
    "fovea_derivatives_made_total",
    "Transcoded frames and rendered images made here because no cache held them, by cache",
    ["cache"],
)
SHARED_CACHE_BYTES = Gauge(
    "fovea_shared_cache_bytes",
    "Bytes held by the shared derivative cache (Redis), as last seen by any process",
    multiprocess_mode="mostrecent",
)
SHARED_CACHE_ERRORS = Counter(
    "fovea_shared_cache_errors_total",
    "Shared derivative cache calls that failed (served without it), by operation",
    ["operation"],
)
# Codec steps: an RLE decode of a small frame (well under a millisecond) to a large JPEG 2000 encode.
_CODEC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Blob calls: a page-cache read (tens of microseconds) to an S3 call waiting out its timeouts.
_BLOB_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15)
CODEC_SECONDS = Histogram(
    "fovea_codec_seconds",
    "Time a codec spent on one frame, by step and codec family, measured where the codec ran",
    ["operation", "codec"],
    buckets=_CODEC_BUCKETS,
)
CODEC_JOBS_WAITING = Gauge(
    "fovea_codec_jobs_waiting",
    "Codec jobs waiting for a free worker, summed over live processes",
    ["runner"],
    multiprocess_mode="livesum",
)
CODEC_WORKERS_BUSY = Gauge(
    "fovea_codec_workers_busy",
    "Codec workers running a job, summed over live processes",
    ["runner"],
    multiprocess_mode="livesum",
)
BLOB_SECONDS = Histogram(
    "fovea_blob_seconds",
    "Time of one blob store call, by operation and store kind (a ranged stream: until its first bytes)",
    ["operation", "store"],
    buckets=_BLOB_BUCKETS,
)
DB_CONNECTIONS_IN_USE = Gauge(
    "fovea_db_connections_in_use",
    "Index database connections checked out of the pool, summed over live processes",
    multiprocess_mode="livesum",
)


def syntax_label(uid: str) -> str:
    """A transfer syntax as a label: its keyword, or the UID for one Fovea does not name."""
    syntax = find_transfer_syntax(uid)
    return syntax.keyword if syntax is not None and syntax.keyword else uid


def record_codec_steps(steps: Iterable[tuple[str, str, float]]) -> None:
    """Record codec steps, each (operation, codec family, seconds), in `fovea_codec_seconds`."""
    for operation, codec, seconds in steps:
        CODEC_SECONDS.labels(operation, codec).observe(seconds)


def watch_connection_pool(engine: Engine) -> None:
    """Count checked-out connections of `engine` in `fovea_db_connections_in_use`."""
    event.listen(engine, "checkout", lambda *_: DB_CONNECTIONS_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: DB_CONNECTIONS_IN_USE.dec())


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every process in multiprocess mode, and their media type."""
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Forget a finished worker's live gauges (its counters stay in the totals)."""
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
