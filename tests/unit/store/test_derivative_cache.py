"""The transcoded-frame cache: bounded by bytes, least recently used out first, one transcode per key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import pytest

from app.store.caches.derivatives import DerivativeCache

T = TypeVar("T")


def recording_maker(made: list[T], mark: T, value: bytes) -> Callable[[], bytes]:
    """A maker that notes `mark` in `made` each time it is called, then returns `value`."""

    def make() -> bytes:
        made.append(mark)
        return value

    return make


def new_cache(max_bytes: int = 100) -> DerivativeCache[bytes]:
    return DerivativeCache(max_bytes, len)


def test_a_made_frame_is_served_from_the_cache_the_second_time() -> None:
    cache, calls = new_cache(), []

    def make() -> bytes:
        calls.append(1)
        return b"x" * 10

    assert cache.get_or_make(("blob", 1, "ts"), make) == b"x" * 10
    assert cache.get_or_make(("blob", 1, "ts"), make) == b"x" * 10
    assert len(calls) == 1
    assert (cache.hits, cache.misses, cache.held_bytes) == (1, 1, 10)


def test_keys_differ_by_blob_frame_and_syntax() -> None:
    cache = new_cache()
    keys = [("a", 1, "s"), ("b", 1, "s"), ("a", 2, "s"), ("a", 1, "t")]
    for index, key in enumerate(keys):
        assert cache.get_or_make(key, partial(bytes, [index])) == bytes([index])
    assert cache.misses == 4 and len(cache) == 4


def test_least_recently_used_frames_go_first_once_the_bytes_are_spent() -> None:
    cache = new_cache(max_bytes=30)
    for number in (1, 2, 3):
        cache.get_or_make(("blob", number, "ts"), lambda: b"x" * 10)
    cache.get_or_make(("blob", 1, "ts"), lambda: b"unused")  # frame 1 is now the most recent
    cache.get_or_make(("blob", 4, "ts"), lambda: b"x" * 10)  # frame 2 must go
    assert cache.held_bytes == 30 and len(cache) == 3
    remade: list[int] = []
    cache.get_or_make(("blob", 2, "ts"), recording_maker(remade, 2, b"x" * 10))
    cache.get_or_make(("blob", 1, "ts"), recording_maker(remade, 1, b"x" * 10))
    assert remade == [2]


def test_a_frame_larger_than_the_cache_is_served_but_not_kept() -> None:
    cache = new_cache(max_bytes=5)
    assert cache.get_or_make(("blob", 1, "ts"), lambda: b"x" * 6) == b"x" * 6
    assert len(cache) == 0 and cache.held_bytes == 0


def test_a_cache_of_zero_bytes_keeps_nothing() -> None:
    cache = new_cache(max_bytes=0)
    cache.get_or_make(("blob", 1, "ts"), lambda: b"x")
    assert len(cache) == 0


def test_identical_concurrent_requests_share_one_transcode() -> None:
    cache = new_cache()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_make() -> bytes:
        calls.append(1)
        started.set()
        release.wait(5)
        return b"frame"

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(cache.get_or_make, ("blob", 1, "ts"), slow_make)
        assert started.wait(5)
        others = [pool.submit(cache.get_or_make, ("blob", 1, "ts"), slow_make) for _ in range(3)]
        deadline = time.monotonic() + 5
        while cache.shared < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        release.set()
        results = [first.result(5)] + [other.result(5) for other in others]
    assert results == [b"frame"] * 4
    assert calls == [1] and cache.shared == 3


def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    cache = new_cache()
    started, release = threading.Event(), threading.Event()

    def failing_make() -> bytes:
        started.set()
        release.wait(5)
        raise ValueError("cannot encode")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get_or_make, ("blob", 1, "ts"), failing_make)
        assert started.wait(5)
        waiter = pool.submit(cache.get_or_make, ("blob", 1, "ts"), failing_make)
        deadline = time.monotonic() + 5
        while cache.shared < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        release.set()
        for future in (first, waiter):
            with pytest.raises(ValueError, match="cannot encode"):
                future.result(5)
    assert len(cache) == 0
    assert cache.get_or_make(("blob", 1, "ts"), lambda: b"second try") == b"second try"
