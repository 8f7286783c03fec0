"""Codec jobs run in worker threads or worker processes, by whether the codec holds the GIL."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pydicom.uid import (
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from app.imaging.codec_pool import (
    MIB,
    CodecLimits,
    CodecOutOfMemory,
    CodecPool,
    CodecTimeout,
    CodecWorkerCrashed,
)
from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import encode_native_frame
from app.imaging.frame_transcode import runs_in_process, transcode_frame
from tests.codec_jobs import (
    address_space_bytes,
    allocate_and_touch,
    process_id,
    reversed_bytes,
    sleep_then_answer,
)

JPEGXL = "1.2.840.10008.1.2.4.110"
DEFLATE = "1.2.840.10008.1.2.8.1"


def where_am_i() -> tuple[int, str]:
    return os.getpid(), threading.current_thread().name


@pytest.fixture(scope="module")
def pool() -> Iterator[CodecPool]:
    pool = CodecPool(2)
    yield pool
    pool.close()


def test_thread_jobs_run_in_codec_threads_of_this_process(pool: CodecPool) -> None:
    pid, thread = pool.run(False, where_am_i)
    assert pid == os.getpid() and thread.startswith("fovea-codec")


def test_process_jobs_run_in_another_process(pool: CodecPool) -> None:
    pid, thread = pool.run(True, where_am_i)
    assert pid != os.getpid() and not thread.startswith("fovea-codec")


def test_a_transcode_in_a_worker_process_is_bit_exact(pool: CodecPool) -> None:
    fmt = FrameFormat(32, 24, 1, 16, 12, 0, "MONOCHROME2", 0)
    values = np.random.default_rng(3).integers(0, 4096, (32, 24)).astype("<u2")
    stored = encode_native_frame(values.tobytes(), RLELossless, fmt)
    jpegls = pool.run(True, transcode_frame, stored, RLELossless, fmt, fmt, JPEGLSLossless)
    assert decode_to_native(jpegls, JPEGLSLossless, fmt).data == values.tobytes()


def test_errors_come_back_from_worker_processes(pool: CodecPool) -> None:
    fmt = FrameFormat(32, 24, 1, 16, 16, 0, "MONOCHROME2", 0)
    with pytest.raises(ValueError, match="RLE"):
        pool.run(True, transcode_frame, b"\x00" * 64, RLELossless, fmt, fmt, JPEGLSLossless)


def die() -> None:
    os._exit(3)  # as a segfault in native code would end the worker


def test_a_crashed_worker_fails_its_job_and_the_pool_recovers() -> None:
    pool = CodecPool(1)
    try:
        with pytest.raises(CodecWorkerCrashed):
            pool.run(True, die)
        pid, _ = pool.run(True, where_am_i)  # a fresh worker process
        assert pid != os.getpid()
    finally:
        pool.close()


def test_workers_run_under_the_address_space_limit() -> None:
    pool = CodecPool(1, CodecLimits(memory_bytes=768 * MIB))
    try:
        assert pool.run(True, address_space_bytes) < 768 * MIB
        assert pool.run(True, allocate_and_touch, 64 * MIB) == 64 * MIB
    finally:
        pool.close()


def test_a_worker_over_its_memory_limit_fails_its_job_and_is_replaced() -> None:
    pool = CodecPool(1, CodecLimits(memory_bytes=768 * MIB))
    try:
        first = pool.run(True, process_id)
        with pytest.raises(CodecOutOfMemory, match="768 MiB per worker"):
            pool.run(True, allocate_and_touch, 1024 * MIB)
        assert pool.replaced == 1
        second = pool.run(True, process_id)  # the next job works, in a fresh worker
        assert second not in (first, os.getpid())
        assert pool.run(True, allocate_and_touch, 64 * MIB) == 64 * MIB
    finally:
        pool.close()


def test_a_process_job_over_its_time_limit_is_abandoned_and_its_worker_replaced() -> None:
    pool = CodecPool(1, CodecLimits(timeout_s=0.5))
    try:
        first = pool.run(True, process_id)
        with pytest.raises(CodecTimeout, match=r"longer than 0\.5 s"):
            pool.run(True, sleep_then_answer, 60)  # killed, not waited for
        assert pool.replaced == 1
        assert pool.run(True, process_id) not in (first, os.getpid())
    finally:
        pool.close()


def test_a_job_in_flight_beside_a_stopped_one_runs_again() -> None:
    pool = CodecPool(2, CodecLimits(timeout_s=3))
    try:
        with ThreadPoolExecutor(2) as clients:
            stuck = clients.submit(pool.run, True, sleep_then_answer, 60)
            time.sleep(2)
            innocent = clients.submit(pool.run, True, sleep_then_answer, 1.5)  # in flight at the kill
            with pytest.raises(CodecTimeout):
                stuck.result()
            assert innocent.result() != os.getpid()
    finally:
        pool.close()


@pytest.mark.parametrize("in_process", [False, True])
def test_the_time_limit_counts_running_time_not_time_in_the_queue(in_process: bool) -> None:
    """Three 0.6 s jobs on one worker take 1.8 s together; none is over the 1.5 s limit."""
    pool = CodecPool(1, CodecLimits(timeout_s=1.5))
    try:
        with ThreadPoolExecutor(3) as clients:
            jobs = [clients.submit(pool.run, in_process, sleep_then_answer, 0.6) for _ in range(3)]
            assert len({job.result() for job in jobs}) == 1  # one worker ran them all
        assert pool.replaced == 0
    finally:
        pool.close()


def test_a_job_finding_every_worker_stuck_fails_instead_of_waiting_forever() -> None:
    pool = CodecPool(1, CodecLimits(timeout_s=0.3))
    try:
        with pytest.raises(CodecTimeout, match="took longer"):
            pool.run(False, sleep_then_answer, 2)  # abandoned; its thread runs on, holding the worker
        with pytest.raises(CodecTimeout, match="every codec worker stayed busy"):
            pool.run(False, process_id)
    finally:
        pool.close()


def test_a_thread_job_over_its_time_limit_is_abandoned() -> None:
    pool = CodecPool(1, CodecLimits(timeout_s=0.2))
    try:
        with pytest.raises(CodecTimeout):
            pool.run(False, sleep_then_answer, 1)
    finally:
        pool.close()


def test_a_job_needing_more_than_a_worker_may_have_is_refused_up_front() -> None:
    pool = CodecPool(1, CodecLimits(memory_bytes=2048 * MIB))
    try:
        pool.check_budget(1024 * MIB, "decoding frame 1")
        with pytest.raises(CodecOutOfMemory, match=r"decoding frame 1 needs about 1600 MiB"):
            pool.check_budget(1600 * MIB, "decoding frame 1")
    finally:
        pool.close()
    unlimited = CodecPool(1)
    unlimited.check_budget(1 << 40, "anything")  # no limit set: nothing refused
    unlimited.close()


def test_a_closed_pool_refuses_process_jobs() -> None:
    pool = CodecPool(1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(True, where_am_i)


@pytest.mark.parametrize(
    ("source", "target", "in_process"),
    [
        (None, DEFLATE, False),  # libdeflate releases the GIL
        (None, JPEG2000Lossless, False),  # imagecodecs' OpenJPEG encoder releases it
        (None, HTJ2KLossless, False),
        (None, JPEGXL, False),
        (None, RLELossless, True),  # pylibjpeg-rle holds it
        (None, JPEGLSLossless, True),  # pyjpegls holds it
        (DEFLATE, JPEG2000Lossless, False),
        (JPEGXL, HTJ2KLossless, False),
        (JPEG2000Lossless, HTJ2KLossless, True),  # pylibjpeg-openjpeg decodes holding it
        (HTJ2KLossless, DEFLATE, True),
        (JPEGBaseline8Bit, None, True),  # pylibjpeg-libjpeg
        (RLELossless, None, False),  # pylibjpeg-rle decodes holding it, but faster than a hand-off
        (JPEGLSLossless, None, False),  # imagecodecs' CharLS decoder releases it
        (JPEGLSLossless, RLELossless, True),
        (RLELossless, JPEG2000Lossless, False),
        (ExplicitVRLittleEndian, JPEGXL, False),  # native: no decoder
    ],
)
def test_which_jobs_go_to_processes(source: str | None, target: str | None, in_process: bool) -> None:
    assert runs_in_process(source, target) is in_process


def test_frames_cross_to_and_from_worker_processes_intact(pool: CodecPool) -> None:
    """Large bytes values go through the pipes out of band; small ones inside the pickle."""
    for size in (10, 64 * 1024, 3 * 1024 * 1024 + 1):
        frame = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
        assert pool.run(True, reversed_bytes, frame) == frame[::-1]


def _wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


def test_a_worker_that_died_while_idle_is_replaced_before_its_next_job() -> None:
    pool = CodecPool(1)
    try:
        first = pool.run(True, process_id)
        os.kill(first, signal.SIGKILL)
        _wait_until_dead(first)
        assert pool.run(True, process_id) not in (first, os.getpid())  # no CodecWorkerCrashed
    finally:
        pool.close()


def test_a_crash_leaves_jobs_in_other_workers_alone() -> None:
    pool = CodecPool(2)
    try:
        with ThreadPoolExecutor(2) as clients:
            innocent = clients.submit(pool.run, True, sleep_then_answer, 1.0)
            time.sleep(0.3)
            with pytest.raises(CodecWorkerCrashed, match="exit code 3"):
                pool.run(True, die)
            assert innocent.result() != os.getpid()
        assert pool.replaced == 1
    finally:
        pool.close()
