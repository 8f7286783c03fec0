"""Blob store latency: each call of a store class timed into `fovea_blob_seconds`, by operation and kind.

Why a class decorator: one line on each store class times the same calls in the same way, whichever
store is configured, and the stores themselves keep only their storage logic. A ranged stream is timed
to its first bytes (the store's latency; the rest of the stream goes at the client's pace). A call made
inside another timed call (S3's `read_range` reads through `iter_range`) is not counted twice.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prometheus_client import Histogram

from app.metrics import BLOB_SECONDS

_S = TypeVar("_S", bound=type)
# Store method -> `operation` label.
TIMED_CALLS = {"read_range": "get", "put_file": "put", "delete": "delete", "size": "size"}
TIMED_STREAMS = {"iter_range": "range"}
_timing = threading.local()  # `active` while a timed call runs in this thread


def measured_blob_calls(store: str) -> Callable[[_S], _S]:
    """Time the calls of a blob store class under the label `store` ("file", "s3")."""

    def decorate(cls: _S) -> _S:
        for name, operation in TIMED_CALLS.items():
            setattr(cls, name, _timed_call(getattr(cls, name), operation, store))
        for name, operation in TIMED_STREAMS.items():
            setattr(cls, name, _timed_stream(getattr(cls, name), operation, store))
        return cls

    return decorate


@functools.cache
def _histogram(operation: str, store: str) -> Histogram:
    """The labelled histogram, looked up once (`labels` takes a lock and builds a key each call)."""
    return BLOB_SECONDS.labels(operation, store)


def _timed_call(method: Callable[..., Any], operation: str, store: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if getattr(_timing, "active", False):
            return method(*args, **kwargs)
        _timing.active = True
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _timing.active = False
            _histogram(operation, store).observe(time.perf_counter() - started)

    return timed


def _timed_stream(method: Callable[..., Iterator[bytes]], operation: str, store: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        chunks = method(*args, **kwargs)
        if getattr(_timing, "active", False):
            return chunks
        return _until_first_chunk(chunks, operation, store)

    return timed


def _until_first_chunk(chunks: Iterator[bytes], operation: str, store: str) -> Iterator[bytes]:
    started = time.perf_counter()
    try:
        first = next(chunks, None)
    finally:
        _histogram(operation, store).observe(time.perf_counter() - started)
    if first is None:
        return
    yield first
    yield from chunks
