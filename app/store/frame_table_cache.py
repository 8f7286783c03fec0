"""Recently used frame tables, per process, for a few seconds: a viewer's next frame skips the index.

Why: a viewer scrolling through a series asks for one frame after another of the same instances;
the index lookup is then the largest part of a frame's cost. Entries hold an instance's row and its
whole frame table; they expire after `ttl_s` and the least recently used go first once `max_fragments`
are held. An entry is only a hint: before serving from it, the frames route checks with one primary-key
probe that the index still holds that version of the instance, so an instance deleted or replaced
through any process is never served from here (the process that deleted or replaced it also forgets it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.store.retrieval import Scope, StoredFrames

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

    def put(self, scope: Scope, frames: StoredFrames) -> None:
        size = max(1, sum(len(parts) for parts in frames.fragments.values()))
        if size > self._max:
            return  # one instance larger than the whole cache: not kept
        with self._lock:
            if scope in self._entries:
                self._drop(scope)
            self._entries[scope] = _Entry(frames, self._clock() + self._ttl_s, size)
            self._held += size
            while self._held > self._max:
                self._drop(next(iter(self._entries)))

    def forget(self, scope: Scope) -> None:
        with self._lock:
            if scope in self._entries:
                self._drop(scope)

    def _drop(self, scope: Scope) -> None:
        self._held -= self._entries.pop(scope).size
