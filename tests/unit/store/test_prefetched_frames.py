"""Frames made ahead of a whole-instance writer: in order, a bounded number at once, errors passed on."""

from __future__ import annotations

import random
import threading
import time

import pytest

from app.store.read.frame_source import PrefetchedFrames


def test_frames_come_back_in_order_with_a_bounded_number_under_way() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def make(number: int) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(random.uniform(0, 0.003))  # finish out of order
        with lock:
            running -= 1
        return number.to_bytes(2, "little")

    frames = PrefetchedFrames(make, 40, window=4)
    assert [frames.frame(n) for n in range(1, 41)] == [n.to_bytes(2, "little") for n in range(1, 41)]
    assert 1 < most <= 4  # ahead of the writer, never more than the window


def test_a_failing_frame_raises_for_the_writer_and_stops_the_rest() -> None:
    made: list[int] = []

    def make(number: int) -> bytes:
        made.append(number)
        if number == 3:
            raise ValueError("frame 3 cannot be encoded")
        return b"ok"

    frames = PrefetchedFrames(make, 100, window=2)
    assert frames.frame(1) == b"ok" and frames.frame(2) == b"ok"
    with pytest.raises(ValueError, match="frame 3"):
        frames.frame(3)
    time.sleep(0.05)
    assert max(made) <= 4  # nothing made far beyond the failure
