"""A byte-rate limit for background reads, so a fixity check never starves serving.

Why a running average from the start rather than a token bucket: a check reads for hours at a steady
pace; sleeping whenever the bytes read so far are ahead of `rate * elapsed` keeps the long-run rate at
the limit, with bursts of at most one chunk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ByteRateLimit:
    """Call `consumed(n)` after reading n bytes; it sleeps as long as reading is ahead of the rate.

    A rate of 0 means no limit. `stop`, when given, ends a sleep early (a server shutting down).
    """

    def __init__(
        self,
        bytes_per_s: float,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = bytes_per_s
        self._stop = stop or threading.Event()
        self._clock = clock
        self._started = clock()
        self._bytes = 0

    def consumed(self, count: int) -> None:
        if self._rate <= 0:
            return
        self._bytes += count
        ahead_s = self._bytes / self._rate - (self._clock() - self._started)
        if ahead_s > 0:
            self._stop.wait(ahead_s)
