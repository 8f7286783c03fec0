"""The per-process cache of frame tables: expiry, least-recently-used eviction, forgetting."""

from __future__ import annotations

from datetime import UTC, datetime

from pydicom.uid import ExplicitVRLittleEndian

from app.dicomweb.scope import Scope
from app.imaging.frame_table import FrameFragment, PixelLayout
from app.imaging.pixel_description import PixelDescription, stored_syntax
from app.store.caches.frame_tables import FrameTableCache
from app.store.read.retrieval import StoredFrames, StoredInstance


def frames(sop: str, count: int) -> StoredFrames:
    layout = PixelLayout(2, 2, 1, 16, count, "MONOCHROME2")
    pixels = PixelDescription(layout, 16, 0, 0, stored_syntax(ExplicitVRLittleEndian), "")
    instance = StoredInstance(
        1,
        "1.2",
        "1.2.3",
        sop,
        ExplicitVRLittleEndian,
        "k",
        "k",
        100,
        datetime.now(UTC),
        pixels,
        0x7FE00010,
        "",
    )
    table: dict[int, tuple[FrameFragment, ...]] = {
        n: (FrameFragment(n, 0, 8 * n, 8),) for n in range(1, count + 1)
    }
    return StoredFrames(instance, pixels, table)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scope(sop: str) -> Scope:
    return Scope("1.2", "1.2.3", sop)


def test_entries_expire() -> None:
    clock = Clock()
    cache = FrameTableCache(ttl_s=5, clock=clock)
    cache.put(scope("1"), frames("1", 3))
    clock.now += 4.9
    assert cache.get(scope("1")) is not None
    clock.now += 0.2
    assert cache.get(scope("1")) is None


def test_an_entry_expires_its_ttl_after_the_lookup_began_not_after_it_was_kept() -> None:
    """What DELETE relies on: waiting `ttl_s` after a commit outlives every entry read before it."""
    clock = Clock()
    cache = FrameTableCache(ttl_s=5, clock=clock)
    started = cache.now()
    clock.now += 3  # a slow lookup
    cache.put(scope("1"), frames("1", 3), looked_up_at=started)
    clock.now += 1.9
    assert cache.get(scope("1")) is not None
    clock.now += 0.2
    assert cache.get(scope("1")) is None
    assert cache.ttl_s == 5


def test_least_recently_used_go_first_by_fragment_count() -> None:
    cache = FrameTableCache(max_fragments=10)
    cache.put(scope("a"), frames("a", 4))
    cache.put(scope("b"), frames("b", 4))
    assert cache.get(scope("a")) is not None  # a is now the most recently used
    cache.put(scope("c"), frames("c", 4))  # 12 > 10: b goes
    assert cache.get(scope("b")) is None
    assert cache.get(scope("a")) is not None and cache.get(scope("c")) is not None


def test_too_large_is_not_kept_and_forget_drops() -> None:
    cache = FrameTableCache(max_fragments=10)
    cache.put(scope("big"), frames("big", 11))
    assert cache.get(scope("big")) is None
    cache.put(scope("a"), frames("a", 2))
    cache.put(scope("a"), frames("a", 5))  # replacing an entry counts it once
    cache.put(scope("b"), frames("b", 5))
    assert cache.get(scope("a")) is not None and cache.get(scope("b")) is not None
    cache.forget(scope("a"))
    assert cache.get(scope("a")) is None
