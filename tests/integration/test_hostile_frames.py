"""Hostile pixel data against a live server: lying codestream headers and deflate bombs.

At ingest, a frame whose header contradicts the data set fails in the STOW-RS response (0xC000) and
nothing is stored. Stored by an older Fovea (inserted here with the check switched off), the same
frames are refused before any decoder runs, in every form a client can ask for, while the server's
whole process tree stays under 1 GB and /health keeps answering within a second.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

import app.store.write.parse
from app.imaging.codec_pool import MIB, CodecLimits, CodecPool
from app.imaging.codecs.decode import FrameFormat
from app.imaging.codecs.encode import encode_native_frame
from tests.conftest import Backend, LiveServer, free_port, start_live_server
from tests.hostile_files import deflate_bomb, encapsulated_instance
from tests.integration.stow_helpers import index_counts, items, post_stow, value_of
from tests.lying_frames import FORMAT_16, LyingFrame, lying_frames, native_pixels

CANNOT_UNDERSTAND = 0xC000
OUT_OF_RESOURCES = 0xA700
FAILED_SOP_SEQUENCE, FAILURE_REASON, ERROR_COMMENT = "00081198", "00081197", "00000902"
RSS_LIMIT = 1024 * MIB
HEALTH_WITHIN_S = 1.0
FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]


def _instances(study_uid: str) -> list[tuple[LyingFrame, bytes]]:
    return [
        (case, encapsulated_instance(case.lying, case.transfer_syntax_uid, case.fmt, study_uid=study_uid))
        for case in lying_frames()
    ]


# --- at ingest -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_lying_frames_fail_at_stow_and_nothing_is_stored(live_server: LiveServer, backend: Backend) -> None:
    study = generate_uid()
    cases = _instances(study)
    honest = encapsulated_instance(cases[0][0].honest, cases[0][0].transfer_syntax_uid, cases[0][0].fmt)

    response = post_stow(live_server, [data for _, data in cases])

    assert response.status_code == 400, response.text
    failed = items(response.json(), FAILED_SOP_SEQUENCE)
    assert len(failed) == len(cases)
    for (case, data), item in zip(cases, failed, strict=True):
        assert value_of(item, FAILURE_REASON) == CANNOT_UNDERSTAND, case
        assert instance_path(data).endswith(f"/instances/{value_of(item, '00081155')}")
        assert value_of(item, ERROR_COMMENT).startswith(f"frame 1: {case.complaint}"[:60]), case
    assert index_counts(backend).instances == 0
    assert backend.blob_keys() == set()
    assert backend.spool_files() == []
    # the honest frame of the same kind is stored as before
    assert post_stow(live_server, [honest]).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_deflate_bomb_fails_at_stow_as_too_large(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    bomb = deflate_bomb(2048 * MIB)  # 9 MB on the wire, 2 GiB inflated
    with start_live_server(backend, worker_pool, codec_pool, max_inflated_bytes=64 * MIB) as server:
        response = post_stow(server, [bomb])
    assert response.status_code == 413, response.text
    (item,) = items(response.json(), FAILED_SOP_SEQUENCE)
    assert value_of(item, FAILURE_REASON) == OUT_OF_RESOURCES
    assert value_of(item, ERROR_COMMENT).startswith(f"the deflated data set inflates to more than {64 * MIB}")
    assert index_counts(backend).instances == 0
    assert backend.blob_keys() == set()
    assert backend.spool_files() == []


# --- stored by an older version, then retrieved ------------------------------------------------------


@dataclass
class TreeWatch:
    """Samples a process tree's resident memory and /health's answer time until stopped."""

    pid: int
    health_url: str
    max_rss: int = 0
    slowest_health_s: float = 0.0
    health_failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.max_rss = max(self.max_rss, tree_rss(self.pid))
            started = time.monotonic()
            try:
                status = httpx.get(self.health_url, timeout=10).status_code
                if status != 200:
                    self.health_failures.append(f"status {status}")
            except httpx.HTTPError as exc:
                self.health_failures.append(repr(exc))
            self.slowest_health_s = max(self.slowest_health_s, time.monotonic() - started)
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@pytest.fixture
def served_process(backend: Backend, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`fovea serve` as its own process on the backend's index and blobs, default limits."""
    port = free_port()
    env = {
        **os.environ,
        "FOVEA_DATABASE_URL": backend.database_url,
        "FOVEA_STORAGE_URL": backend.storage_url,
        "FOVEA_AUTO_MIGRATE": "false",
        "FOVEA_CODEC_WORKERS": "2",
        "FOVEA_INGEST_WORKERS": "1",
    }
    process = subprocess.Popen(
        [
            *FOVEA,
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "served"),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("fovea serve did not start")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def instance_path(data: bytes) -> str:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def store_as_an_older_version_would(backend: Backend, monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """Ingest without the header check, as versions before it did (a test-only path)."""
    with monkeypatch.context() as patched:
        patched.setattr(app.store.write.parse, "_check_frame_headers", lambda *_args: None)
        spooled = backend.blobs.spool_directory / f"old-{generate_uid()}.dcm"
        spooled.write_bytes(data)
        assert backend.ingestor().ingest(spooled).stored


ASKED_FOR = {
    "octet-stream frame": ("frames/1", 'multipart/related; type="application/octet-stream"'),
    "frame as JPEG-LS": ("frames/1", 'multipart/related; type="image/jls"'),
    "frame as JPEG 2000": ("frames/1", 'multipart/related; type="image/jp2"'),
    "rendered": ("rendered", "image/jpeg"),
    "thumbnail": ("thumbnail", "image/png"),
    "instance as Explicit VR LE": (
        "",
        f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}',
    ),
}


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_lying_frames_stored_earlier_are_refused_without_a_stall(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, served_process: tuple[str, int]
) -> None:
    base, pid = served_process
    cases = _instances(generate_uid())
    for _, data in cases:
        store_as_an_older_version_would(backend, monkeypatch, data)
    watch = TreeWatch(pid, f"{base}/health")
    sampler = threading.Thread(target=watch.run)
    sampler.start()
    answers: list[tuple[str, str, int, str]] = []
    try:
        with httpx.Client(timeout=300) as client:
            for case, data in cases:
                url = base + instance_path(data)
                for what, (path, accept) in ASKED_FOR.items():
                    response = client.get(f"{url}/{path}" if path else url, headers={"Accept": accept})
                    if response.status_code == 200:  # the stored syntax asked for: no decode at all
                        stored_type = f"transfer-syntax={case.transfer_syntax_uid}"
                        assert stored_type in response.text[:300] and case.lying in response.content
                        continue
                    answers.append((case.name, what, response.status_code, response.text[:300]))
    finally:
        watch.stop()
        sampler.join()
    assert len(answers) >= len(lying_frames()) * (len(ASKED_FOR) - 1)
    unexpected = [answer for answer in answers if answer[2] != 406]
    assert not unexpected, unexpected
    # the refusal names the header (or negotiation refused first: a lossy frame asked for as lossless)
    vague = [a for a in answers if "says" not in a[3] and "no acceptable media type" not in a[3]]
    assert not vague, vague
    assert watch.max_rss < RSS_LIMIT, watch.max_rss
    assert watch.slowest_health_s < HEALTH_WITHIN_S, watch.slowest_health_s
    assert watch.health_failures == []


# --- the decode budget ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_frame_too_large_for_a_codec_worker_is_refused_and_the_next_request_works(
    backend: Backend, worker_pool: Executor
) -> None:
    """An honest 8192x8192 16-bit frame needs about 384 MiB to decode: over a 768 MiB worker limit
    (512 MiB of it the worker's own), refused up front; a small frame then decodes as always. A
    rendering scaled to a 16384x16384 viewport is over the same budget."""
    big = FrameFormat(8192, 8192, 1, 16, 16, 0, "MONOCHROME2", 0)
    large = encapsulated_instance(
        encode_native_frame(bytes(big.frame_bytes), JPEGLSLossless, big), JPEGLSLossless, big
    )
    small_frame = encode_native_frame(native_pixels(FORMAT_16), JPEGLSLossless, FORMAT_16)
    small = encapsulated_instance(small_frame, JPEGLSLossless, FORMAT_16)
    pool = CodecPool(2, CodecLimits(memory_bytes=768 * MIB, timeout_s=10))
    try:
        with start_live_server(backend, worker_pool, pool) as server:
            assert post_stow(server, [large, small]).status_code == 200
            octet = {"Accept": 'multipart/related; type="application/octet-stream"'}
            urls = [f"{server.base_url}{instance_path(data)}/frames/1" for data in (large, small)]
            refused = httpx.get(urls[0], headers=octet, timeout=60)
            assert refused.status_code == 406
            assert "needs about 384 MiB, more than a codec worker may use (768 MiB" in refused.text
            served = httpx.get(urls[1], headers=octet, timeout=60)
            assert served.status_code == 200
            assert native_pixels(FORMAT_16) in served.content
            small_url = urls[1].removesuffix("/frames/1")
            huge = httpx.get(f"{small_url}/rendered?viewport=16384,16384", headers={"Accept": "image/png"})
            assert huge.status_code == 406
            assert "rendering a frame needs about 2052 MiB" in huge.text
            assert httpx.get(f"{small_url}/rendered", headers={"Accept": "image/png"}).status_code == 200
    finally:
        pool.close()
