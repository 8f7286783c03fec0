"""The byte-rate limit sleeps exactly as long as reading is ahead of the rate."""

from __future__ import annotations

import threading

from app.store.infra.throttle import ByteRateLimit


class RecordedWaits(threading.Event):
    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock, self.waits = clock, []  # type: ignore[var-annotated]

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.clock[0] += timeout  # the sleep passes
        return False


def test_reading_ahead_of_the_rate_sleeps_the_difference() -> None:
    now = [100.0]
    stop = RecordedWaits(now)
    limit = ByteRateLimit(1000, stop=stop, clock=lambda: now[0])
    limit.consumed(500)  # at t=0: 0.5 s ahead
    now[0] += 0.2
    limit.consumed(100)  # 600 bytes due at 0.6 s; it is 0.7 s (0.2 + the 0.5 slept)
    now[0] += 0.1
    limit.consumed(1000)  # 1600 bytes due at 1.6 s; it is 0.8 s
    assert [round(w, 6) for w in stop.waits] == [0.5, 0.8]


def test_a_rate_of_zero_never_sleeps() -> None:
    now = [0.0]
    stop = RecordedWaits(now)
    ByteRateLimit(0, stop=stop, clock=lambda: now[0]).consumed(10**9)
    assert stop.waits == []
