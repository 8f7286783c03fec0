"""The shared derivative cache on a real Redis (127.0.0.1:6379): shared between cache objects as between
processes, bounded by bytes with the least recently used entry dropped first, and harmless when down."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless

from app.imaging.codecs.decode import NativeFrame
from app.services import rendered_image_cache, shared_derivative_store, transcoded_frame_cache
from app.settings import Settings
from app.store.caches.derivatives import DerivativeCache
from app.store.caches.shared import RedisDerivativeStore, SharedTier, dump_labelled, load_labelled
from app.store.read.frame_source import dump_made_frame, load_made_frame
from tests.conftest import REDIS_URL, free_port
from tests.unit.store.test_derivative_cache import recording_maker


def redis_store(max_bytes: int, prefix: str) -> RedisDerivativeStore:
    return RedisDerivativeStore(REDIS_URL, max_bytes, prefix=prefix)


def read_errors() -> float:
    return REGISTRY.get_sample_value("fovea_shared_cache_errors_total", {"operation": "reading"}) or 0.0


def byte_cache(store: RedisDerivativeStore, local_bytes: int = 1000) -> DerivativeCache[bytes]:
    tier: SharedTier[bytes] = SharedTier(store, "test-shared", bytes, bytes)
    return DerivativeCache(local_bytes, len, name="test", shared=tier)


def test_what_one_cache_made_another_reads_instead_of_making_it(redis_prefix: str) -> None:
    first, second = byte_cache(redis_store(1000, redis_prefix)), byte_cache(redis_store(1000, redis_prefix))
    made: list[str] = []
    key = ("blob-key", 1, JPEGLSLossless)
    assert first.get_or_make(key, recording_maker(made, "first", b"frame")) == b"frame"
    assert second.get_or_make(key, recording_maker(made, "second", b"other")) == b"frame"
    assert made == ["first"]


def test_entries_differ_by_every_part_of_the_key_and_by_cache(redis_prefix: str) -> None:
    store = redis_store(1000, redis_prefix)
    keys = [("a", 1, "s"), ("b", 1, "s"), ("a", 2, "s"), ("a", 1, "t")]
    for index, key in enumerate(keys):
        store.put(store.entry_key("one", key), bytes([index]))
    assert [store.get(store.entry_key("one", key)) for key in keys] == [bytes([i]) for i in range(4)]
    assert store.get(store.entry_key("two", keys[0])) is None


def test_the_least_recently_used_entry_goes_first_once_the_bytes_are_spent(redis_prefix: str) -> None:
    store = redis_store(30, redis_prefix)
    names = [store.entry_key("c", (n,)) for n in range(4)]
    for name in names[:3]:
        assert store.put(name, b"x" * 10) == 0
    assert store.get(names[0]) == b"x" * 10  # entry 0 is now the most recent
    assert store.put(names[3], b"y" * 10) == 1  # entry 1 goes
    assert [store.get(name) is not None for name in names] == [True, False, True, True]
    assert store.held_bytes() == 30


def test_replacing_an_entry_counts_its_bytes_once(redis_prefix: str) -> None:
    store = redis_store(100, redis_prefix)
    name = store.entry_key("c", ("k",))
    store.put(name, b"x" * 40)
    store.put(name, b"y" * 60)
    assert store.held_bytes() == 60 and store.get(name) == b"y" * 60


def test_an_entry_larger_than_the_bound_is_not_kept(redis_prefix: str) -> None:
    store = redis_store(10, redis_prefix)
    name = store.entry_key("c", ("big",))
    assert store.put(name, b"x" * 11) == 0
    assert store.get(name) is None and store.held_bytes() == 0


def test_a_cache_whose_redis_is_down_makes_every_frame_itself_and_rests_redis() -> None:
    store = RedisDerivativeStore(f"redis://127.0.0.1:{free_port()}/0", 1000, timeout_s=0.2)
    cache = byte_cache(store, local_bytes=0)
    made: list[int] = []
    errors_before = read_errors()
    for _ in range(3):
        assert cache.get_or_make(("k",), recording_maker(made, 1, b"frame")) == b"frame"
    assert made == [1, 1, 1]
    # one failed read; then Redis rests: no more calls (nor their timeouts) for a few seconds
    assert read_errors() == errors_before + 1
    assert store.resting
    store.close()


def test_an_entry_in_another_format_is_made_again(redis_prefix: str) -> None:
    store = redis_store(1000, redis_prefix)
    tier: SharedTier[bytes] = SharedTier(store, "test-shared", bytes, lambda value: load_labelled(value)[1])
    store.put(store.entry_key("test-shared", ("k",)), b"\x00\x00\x00\xffshort")
    assert tier.fetch(("k",)) is None


def test_made_frames_and_rendered_images_come_back_as_they_went_in(redis_prefix: str) -> None:
    native = NativeFrame(b"\x01\x02\x03", "YBR_FULL", 1)
    assert load_made_frame(dump_made_frame(native)) == native
    assert load_made_frame(dump_made_frame(b"\xff\xd8codestream")) == b"\xff\xd8codestream"
    with pytest.raises(ValueError):
        load_made_frame(dump_labelled("native RGB", b""))

    store = redis_store(1000, redis_prefix)
    frames_a, frames_b = transcoded_frame_cache(1, store), transcoded_frame_cache(1, store)
    frames_a.get_or_make(("blob", 1, ExplicitVRLittleEndian), lambda: native)
    assert frames_b.get_or_make(("blob", 1, ExplicitVRLittleEndian), lambda: b"wrong") == native
    images_a, images_b = rendered_image_cache(1, store), rendered_image_cache(1, store)
    images_a.get_or_make(("blob", (1,), "rendered", ("jpeg",)), lambda: (b"\xff\xd8image", "40,400"))
    assert images_b.get_or_make(("blob", (1,), "rendered", ("jpeg",)), lambda: (b"", "")) == (
        b"\xff\xd8image",
        "40,400",
    )


def test_clearing_removes_every_key_under_the_prefix_and_no_other(redis_prefix: str) -> None:
    store, other = redis_store(100, redis_prefix), redis_store(100, redis_prefix + "-other")
    store.put(store.entry_key("c", ("k",)), b"x")
    other.put(other.entry_key("c", ("k",)), b"y")
    store.clear()
    assert list(store.client.scan_iter(match="{" + redis_prefix + "}*")) == []
    assert other.get(other.entry_key("c", ("k",))) == b"y"
    other.clear()
    other.close()


def test_there_is_no_shared_cache_unless_one_is_configured(tmp_path: Path, redis_prefix: str) -> None:
    assert shared_derivative_store(Settings(data_dir=tmp_path)) is None
    configured = Settings(data_dir=tmp_path, shared_cache_url=REDIS_URL, shared_cache_prefix=redis_prefix)
    store = shared_derivative_store(configured)
    assert store is not None and store.max_bytes == 1024 * 1_000_000
    store.close()
