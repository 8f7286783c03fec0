"""Transcoded frames, per process, bounded by bytes: a viewer scrolling back gets them at native speed.

Why: decoding and re-encoding a frame costs 5 to 100 ms; reading it back from memory costs nothing.
Entries are keyed by (data blob key, frame number, target transfer syntax). A blob key names one
stored file and is never reused (a replaced instance gets a new blob), so an entry can never serve a
stale frame and nothing needs invalidating; unused entries fall out, least recently used first, once
`max_bytes` are held.

Identical concurrent requests share one transcode: the first caller makes the frame while the others
wait for its result (a viewer's prefetch and its display often ask for the same frame at once). A
failure is handed to every waiter and not kept, so the next request tries again.

With a shared tier (`shared_cache.py`), a frame this process does not hold is looked for there before it
is made, and what is made here is written there, so other processes and nodes read it instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from app.metrics import CACHE_BYTES, CACHE_EVICTIONS, CACHE_LOOKUPS, DERIVATIVES_MADE
from app.store.caches.shared import SharedTier

_V = TypeVar("_V")
# (data blob key, frame number, target transfer syntax UID), or for a rendered image (data blob key,
# frame numbers, "rendered", rendering options): hashable tuples that start with the stored file.
FrameKey = tuple[Any, ...]
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class DerivativeCache(Generic[_V]):
    """A thread-safe LRU of made frames, bounded by the bytes `size_of` reports."""

    def __init__(
        self,
        max_bytes: int,
        size_of: Callable[[_V], int],
        *,
        name: str = "frames",
        shared: SharedTier[_V] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.name = name  # the `cache` label of its metrics
        self.shared_tier = shared
        self._size_of = size_of
        self._entries: OrderedDict[FrameKey, tuple[_V, int]] = OrderedDict()
        self._making: dict[FrameKey, Future[_V]] = {}
        self._held = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.shared = 0  # counters, for tests and metrics

    @property
    def held_bytes(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_make(self, key: FrameKey, make: Callable[[], _V]) -> _V:
        """The frame under `key`: from the cache, from a transcode already running, or made now."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                CACHE_LOOKUPS.labels(self.name, "hit").inc()
                return entry[0]
            running = self._making.get(key)
            if running is None:
                mine: Future[_V] = Future()
                self._making[key] = mine
                self.misses += 1
                CACHE_LOOKUPS.labels(self.name, "miss").inc()
            else:
                self.shared += 1
                CACHE_LOOKUPS.labels(self.name, "shared").inc()
        if running is not None:
            return running.result()
        try:
            value = self._fetch_or_make(key, make)
        except BaseException as exc:
            with self._lock:
                del self._making[key]
            mine.set_exception(exc)
            raise
        with self._lock:
            del self._making[key]
            self._keep(key, value)
        mine.set_result(value)
        return value

    def _fetch_or_make(self, key: FrameKey, make: Callable[[], _V]) -> _V:
        if self.shared_tier is not None:
            found = self.shared_tier.fetch(key)
            if found is not None:
                return found
        DERIVATIVES_MADE.labels(self.name).inc()
        value = make()
        if self.shared_tier is not None:
            self.shared_tier.keep(key, value)
        return value

    def _keep(self, key: FrameKey, value: _V) -> None:
        size = self._size_of(value)
        if size > self.max_bytes:
            return  # larger than the whole cache: served, not kept
        self._entries[key] = (value, size)
        self._held += size
        while self._held > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._held -= dropped
            CACHE_EVICTIONS.labels(self.name).inc()
        CACHE_BYTES.labels(self.name).set(self._held)
