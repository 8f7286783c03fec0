"""Derivatives (transcoded frames, rendered images) shared by every Fovea process through Redis.

Why: each process keeps what it made in memory (`cache.py`), but behind a load balancer the next
request for the same frame often lands on another process or node, which would decode and encode it
again. Written once to Redis under a key derived from the immutable data blob key, the target syntax
and the options, what one process made is read by all the others. A blob key is never reused, so an
entry can never be stale and nothing is invalidated; entries of a deleted blob age out.

Bounded by bytes, least recently used first, by Fovea itself (a Lua script keeps a recency set and a
byte count next to the entries), so the bound holds whatever the server's `maxmemory` policy is. All
keys share one hash tag, so the scripts also run on a Redis Cluster (in one slot).

Redis is an optimisation: when it is slow or down, look-ups count as misses, nothing is written, the
frame is made as without a shared cache, and a warning is logged at most once a minute. After a failed
call Redis is left alone for a few seconds, so a Redis that hangs costs one timeout per pause, not one
per request.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.metrics import (
    CACHE_EVICTIONS,
    CACHE_LOOKUPS,
    SHARED_CACHE_BYTES,
    SHARED_CACHE_ERRORS,
)

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)
_V = TypeVar("_V")
# Bumped when the way values are written changes, so old entries are never read the new way.
_FORMAT_VERSION = "v1"
_WARNING_INTERVAL_S = 60.0
RETRY_AFTER_FAILURE_S = 5.0

# KEYS: entry, recency set, byte count, clock. ARGV: value, bound (bytes). Returns {held, evicted}.
_PUT = """
local old = redis.call('STRLEN', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), KEYS[1])
local held = redis.call('INCRBY', KEYS[3], string.len(ARGV[1]) - old)
local evicted = 0
while held > tonumber(ARGV[2]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  if #oldest == 0 then
    redis.call('SET', KEYS[3], 0)
    held = 0
    break
  end
  local size = redis.call('STRLEN', oldest[1])
  redis.call('DEL', oldest[1])
  held = redis.call('DECRBY', KEYS[3], size)
  evicted = evicted + 1
end
return {held, evicted}
"""
# KEYS: entry, recency set, clock. Returns the value (or nil), and marks it as just used.
_GET = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('ZADD', KEYS[2], 'XX', redis.call('INCR', KEYS[3]), KEYS[1])
end
return value
"""


class RedisDerivativeStore:
    """Byte strings under string keys in Redis, at most `max_bytes` of them, least recent dropped first."""

    def __init__(self, url: str, max_bytes: int, *, prefix: str = "fovea", timeout_s: float = 0.5) -> None:
        from redis import Redis  # imported only when a shared cache is configured

        self.max_bytes = max_bytes
        self.client: Redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )
        tag = "{" + prefix + "}"  # one hash tag: every key in one cluster slot
        self._entry_prefix = f"{tag}:derived:{_FORMAT_VERSION}:"
        self._recency = f"{tag}:derived:recency"
        self._held = f"{tag}:derived:bytes"
        self._clock = f"{tag}:derived:clock"
        self._put = self.client.register_script(_PUT)
        self._get = self.client.register_script(_GET)
        self._last_warning = 0.0
        self._warning_lock = threading.Lock()
        self._resting_until = 0.0  # monotonic time before which Redis is not called (after a failure)

    def entry_key(self, cache: str, key: tuple[Any, ...]) -> str:
        """The Redis key of `key` (a tuple of strings, numbers and options) in the cache named `cache`."""
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        return f"{self._entry_prefix}{cache}:{digest}"

    @property
    def resting(self) -> bool:
        """True for a few seconds after a failed call: calls are skipped as misses meanwhile."""
        return time.monotonic() < self._resting_until

    def get(self, entry_key: str) -> bytes | None:
        if self.resting:
            return None
        try:
            value = self._get(keys=[entry_key, self._recency, self._clock])
        except Exception as exc:  # any Redis or network failure: a miss, the frame is made here
            self.warn("reading", exc)
            return None
        return value if isinstance(value, bytes) else None

    def put(self, entry_key: str, value: bytes) -> int:
        """Keep `value`; returns how many entries were dropped to stay in bounds (0 when not kept)."""
        if len(value) > self.max_bytes or self.resting:
            return 0
        try:
            held, evicted = self._put(
                keys=[entry_key, self._recency, self._held, self._clock], args=[value, self.max_bytes]
            )
        except Exception as exc:
            self.warn("writing", exc)
            return 0
        SHARED_CACHE_BYTES.set(int(held))
        return int(evicted)

    def held_bytes(self) -> int:
        return int(self.client.get(self._held) or 0)

    def clear(self) -> None:
        """Drop every entry under this prefix (tests, and an operator's reset)."""
        names = list(self.client.scan_iter(match=self._entry_prefix.replace("{", "\\{") + "*"))
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])
        self.client.delete(self._recency, self._held, self._clock)

    def close(self) -> None:
        self.client.close()

    def warn(self, doing: str, exc: Exception) -> None:
        SHARED_CACHE_ERRORS.labels(doing).inc()
        if doing != "decoding":  # a bad entry says nothing about Redis itself
            self._resting_until = time.monotonic() + RETRY_AFTER_FAILURE_S
        with self._warning_lock:
            now = time.monotonic()
            if now - self._last_warning < _WARNING_INTERVAL_S:
                return
            self._last_warning = now
        log.warning(
            "shared cache: %s failed (%s: %s); making derivatives locally", doing, type(exc).__name__, exc
        )


@dataclass(frozen=True)
class SharedTier(Generic[_V]):
    """One kind of derivative in the shared store: its name, and how its values become bytes and back."""

    store: RedisDerivativeStore
    name: str  # the `cache` label of its metrics, and part of its keys
    dump: Callable[[_V], bytes]
    load: Callable[[bytes], _V]

    def fetch(self, key: tuple[Any, ...]) -> _V | None:
        value = self.store.get(self.store.entry_key(self.name, key))
        CACHE_LOOKUPS.labels(self.name, "miss" if value is None else "hit").inc()
        if value is None:
            return None
        try:
            return self.load(value)
        except ValueError as exc:  # not what `dump` writes (another writer under this prefix?): remake
            self.store.warn("decoding", exc)
            return None

    def keep(self, key: tuple[Any, ...], value: _V) -> None:
        evicted = self.store.put(self.store.entry_key(self.name, key), self.dump(value))
        if evicted:
            CACHE_EVICTIONS.labels(self.name).inc(evicted)


def dump_labelled(label: str, body: bytes) -> bytes:
    """`body` after a length-prefixed text label (a frame's colour attributes, an image's window)."""
    encoded = label.encode()
    return struct.pack(">I", len(encoded)) + encoded + body


def load_labelled(value: bytes) -> tuple[str, bytes]:
    """The label and body `dump_labelled` wrote; ValueError for anything else."""
    try:
        (length,) = struct.unpack_from(">I", value)
    except struct.error as exc:
        raise ValueError("too short for a labelled value") from exc
    if 4 + length > len(value):
        raise ValueError("label longer than the value")
    return value[4 : 4 + length].decode(), value[4 + length :]
