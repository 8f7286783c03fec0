"""Codec time, codec pool load and blob store latency in GET /metrics, against a live server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from prometheus_client import REGISTRY

from app.imaging.codec_pool import CodecPool
from tests.conftest import Backend, LiveServer
from tests.dicom_files import corpus_file, multipart_body, stow_content_type
from tests.integration.test_metrics import samples, value

RLE_FILE = "MR_small_RLE.dcm"  # 16-bit MR, RLE Lossless: decoded in a thread; to JPEG-LS in a process


def test_codec_steps_blob_reads_and_pool_load_are_measured(live_server: LiveServer, backend: Backend) -> None:
    corpus = corpus_file(RLE_FILE)
    stored = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=multipart_body([corpus.path.read_bytes()]),
        headers={"Content-Type": stow_content_type()},
        timeout=60,
    )
    assert stored.status_code == 200
    frame_url = (
        f"{live_server.dicomweb}/studies/{corpus.study_instance_uid}/series/{series_of(corpus.path)}"
        f"/instances/{corpus.sop_instance_uid}/frames/1"
    )
    before = samples(live_server.base_url)
    as_jpegls = httpx.get(frame_url, headers={"Accept": 'multipart/related; type="image/jls"'}, timeout=60)
    assert as_jpegls.status_code == 200
    as_native = httpx.get(
        frame_url, headers={"Accept": 'multipart/related; type="application/octet-stream"'}, timeout=60
    )
    assert as_native.status_code == 200
    instance_url = frame_url.removesuffix("/frames/1")
    whole = httpx.get(
        instance_url,
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        timeout=60,
    )
    assert whole.status_code == 200
    after = samples(live_server.base_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # the JPEG-LS frame: one job decoding RLE and encoding JPEG-LS; the native frame: one RLE decode
    assert grew("fovea_codec_seconds_count", operation="decode", codec="rle") == 2
    assert grew("fovea_codec_seconds_count", operation="encode", codec="jpegls") == 1
    assert grew("fovea_codec_seconds_sum", operation="encode", codec="jpegls") > 0
    assert grew("fovea_codec_seconds_count", operation="encode", codec="rle") == 0
    store = "s3" if backend.storage_url.startswith("s3://") else "file"
    assert grew("fovea_blob_seconds_count", operation="get", store=store) >= 2  # each frame read
    # the instance as stored, streamed: one ranged stream (an S3 get, which reads through a stream
    # itself, is not counted as a stream as well)
    assert grew("fovea_blob_seconds_count", operation="range", store=store) == 1
    for runner in ("thread", "process"):  # both runners were used, and are idle again
        assert ("fovea_codec_workers_busy", frozenset({("runner", runner)})) in after
        assert ("fovea_codec_jobs_waiting", frozenset({("runner", runner)})) in after


def series_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def gauge(name: str, runner: str) -> float:
    return REGISTRY.get_sample_value(name, {"runner": runner}) or 0.0


@pytest.fixture
def one_thread_pool() -> Iterator[CodecPool]:
    pool = CodecPool(1)
    try:
        yield pool
    finally:
        pool.close()


def test_busy_workers_and_waiting_jobs_are_counted_while_they_last(one_thread_pool: CodecPool) -> None:
    busy_before = gauge("fovea_codec_workers_busy", "thread")
    waiting_before = gauge("fovea_codec_jobs_waiting", "thread")
    release = threading.Event()
    results: list[str] = []

    def run_job(name: str) -> None:
        results.append(one_thread_pool.run(False, wait_then_return, release, name))  # noqa: FBT003 (False: in a thread)

    first = threading.Thread(target=run_job, args=("first",))
    first.start()
    wait_until(lambda: gauge("fovea_codec_workers_busy", "thread") == busy_before + 1)
    second = threading.Thread(target=run_job, args=("second",))
    second.start()  # the only worker is busy: this one waits for it
    wait_until(lambda: gauge("fovea_codec_jobs_waiting", "thread") == waiting_before + 1)
    assert gauge("fovea_codec_workers_busy", "thread") == busy_before + 1

    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert sorted(results) == ["first", "second"]
    wait_until(lambda: gauge("fovea_codec_workers_busy", "thread") == busy_before)
    assert gauge("fovea_codec_jobs_waiting", "thread") == waiting_before


def wait_then_return(release: threading.Event, name: str) -> str:
    release.wait(timeout=30)
    return name


def wait_until(condition: Callable[[], bool], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "the gauges never reached the expected values"
        time.sleep(0.01)
