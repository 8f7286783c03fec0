"""Recently used frame tables, per process, for a few seconds: a viewer's next frame skips the index.

Why: a viewer scrolling through a series asks for one frame after another of the same instances;
the index lookup is then the largest part of a frame's cost. Entries hold an instance's row and its
whole frame table; they expire after `ttl_s` and the least recently used go first once `max_fragments`
are held. A replaced instance's entry is forgotten by the process that stored the replacement; in other
processes it serves the old version, whose blob is kept far longer than `ttl_s` (deferred deletion),
until it expires. Should the blob be gone after all, the ranged read fails and the caller looks up again.

An entry expires `ttl_s` after its lookup *started*, so no entry anywhere holds data older than `ttl_s`:
a deletion waits that long after its commit before answering (api/delete.py), and from then on no
process serves a deleted instance from here, at no cost to the frame path.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.dicomweb.scope import Scope
from app.store.read.retrieval import StoredFrames

DEFAULT_TTL_S = 5.0
DEFAULT_MAX_FRAGMENTS = 500_000  # about 100 bytes each: tens of MB at most


@dataclass(frozen=True, slots=True)
class _Entry:
    frames: StoredFrames  # every frame of the instance
    expires: float
    size: int


class FrameTableCache:
    """A thread-safe LRU of whole frame tables keyed by scope, each kept at most `ttl_s` seconds."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s, self._max, self._clock = ttl_s, max_fragments, clock
        self._entries: OrderedDict[Scope, _Entry] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def now(self) -> float:
        """The cache's clock: read it before a lookup and hand it to `put` as `looked_up_at`."""
        return self._clock()

    def get(self, scope: Scope) -> StoredFrames | None:
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None:
                return None
            if entry.expires <= self._clock():
                self._drop(scope)
                return None
            self._entries.move_to_end(scope)
            return entry.frames

    def put(self, scope: Scope, frames: StoredFrames, *, looked_up_at: float | None = None) -> None:
        """Keep `frames` until `ttl_s` after `looked_up_at` (when the lookup began; default now)."""
        size = max(1, sum(len(parts) for parts in frames.fragments.values()))
        started = self._clock() if looked_up_at is None else looked_up_at
        if size > self._max:
            return  # one instance larger than the whole cache: not kept
        with self._lock:
            if scope in self._entries:
                self._drop(scope)
            self._entries[scope] = _Entry(frames, started + self._ttl_s, size)
            self._held += size
            while self._held > self._max:
                self._drop(next(iter(self._entries)))

    def forget(self, scope: Scope) -> None:
        with self._lock:
            if scope in self._entries:
                self._drop(scope)

    def _drop(self, scope: Scope) -> None:
        self._held -= self._entries.pop(scope).size
