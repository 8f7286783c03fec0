"""Codec jobs run in worker threads or worker processes, by whether the codec holds the GIL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from app.imaging.codec_pool import CodecPool, CodecWorkerCrashed
from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import encode_native_frame
from app.imaging.frame_transcode import runs_in_process, transcode_frame

EXPLICIT_LE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
JPEGLS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
HTJ2K = "1.2.840.10008.1.2.4.201"
JPEGXL = "1.2.840.10008.1.2.4.110"
DEFLATE = "1.2.840.10008.1.2.8.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


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
    stored = encode_native_frame(values.tobytes(), RLE, fmt)
    jpegls = pool.run(True, transcode_frame, stored, RLE, fmt, fmt, JPEGLS)
    assert decode_to_native(jpegls, JPEGLS, fmt).data == values.tobytes()


def test_errors_come_back_from_worker_processes(pool: CodecPool) -> None:
    fmt = FrameFormat(32, 24, 1, 16, 16, 0, "MONOCHROME2", 0)
    with pytest.raises(ValueError, match="RLE"):
        pool.run(True, transcode_frame, b"\x00" * 64, RLE, fmt, fmt, JPEGLS)


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


def test_a_closed_pool_refuses_process_jobs() -> None:
    pool = CodecPool(1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(True, where_am_i)


@pytest.mark.parametrize(
    ("source", "target", "in_process"),
    [
        (None, DEFLATE, False),  # libdeflate releases the GIL
        (None, J2K, False),  # imagecodecs' OpenJPEG encoder releases it
        (None, HTJ2K, False),
        (None, JPEGXL, False),
        (None, RLE, True),  # pylibjpeg-rle holds it
        (None, JPEGLS, True),  # pyjpegls holds it
        (DEFLATE, J2K, False),
        (JPEGXL, HTJ2K, False),
        (J2K, HTJ2K, True),  # pylibjpeg-openjpeg decodes holding it
        (HTJ2K, DEFLATE, True),
        (JPEG_BASELINE, None, True),  # pylibjpeg-libjpeg
        (RLE, None, False),  # pylibjpeg-rle decodes holding it, but faster than a hand-off
        (JPEGLS, None, False),  # imagecodecs' CharLS decoder releases it
        (JPEGLS, RLE, True),
        (RLE, J2K, False),
        (EXPLICIT_LE, JPEGXL, False),  # native: no decoder
    ],
)
def test_which_jobs_go_to_processes(source: str | None, target: str | None, in_process: bool) -> None:
    assert runs_in_process(source, target) is in_process
