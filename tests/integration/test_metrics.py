"""GET /metrics: Prometheus text that counts what the server did, in one process and across workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

from tests.conftest import LiveServer, free_port
from tests.dicom_files import make_instance, multipart_body, stow_content_type

FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]


def samples(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = httpx.get(f"{base_url}/metrics", timeout=60)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_requests_stores_frames_and_caches_are_counted(live_server: LiveServer) -> None:
    before = samples(live_server.base_url)
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    body = multipart_body([make_instance(study_uid=study, series_uid=series, sop_uid=sop), b"not dicom"])
    headers = {"Content-Type": stow_content_type()}
    stored = httpx.post(f"{live_server.dicomweb}/studies", content=body, headers=headers, timeout=60)
    assert stored.status_code == 202  # one stored, one failed
    frame_url = f"{live_server.dicomweb}/studies/{study}/series/{series}/instances/{sop}/frames/1"
    for _ in range(2):  # the second time from the transcoded-frame cache
        frame = httpx.get(frame_url, headers={"Accept": 'multipart/related; type="image/jls"'}, timeout=60)
        assert frame.status_code == 200
    httpx.get(f"{live_server.base_url}/no/such/path")
    after = samples(live_server.base_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/dicom-web/studies"
    assert grew("fovea_http_requests_total", method="POST", route=route, status="202") == 1
    assert grew("fovea_http_request_duration_seconds_count", method="POST", route=route) == 1
    frames_route = (
        "/dicom-web/studies/{study_instance_uid}/series/{series_instance_uid}"
        "/instances/{sop_instance_uid}/frames/{frame_list}"
    )
    assert grew("fovea_http_requests_total", method="GET", route=frames_route, status="200") == 2
    assert grew("fovea_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("fovea_stow_instances_total", outcome="stored") == 1
    assert grew("fovea_stow_instances_total", outcome="failed") == 1
    assert grew("fovea_stow_failures_total", reason="0xC000") == 1
    assert grew("fovea_stow_bytes_total") > 1000
    served = {"stored_syntax": "ExplicitVRLittleEndian", "served_syntax": "JPEGLSLossless"}
    assert grew("fovea_frames_served_total", **served) == 2
    assert grew("fovea_cache_lookups_total", cache="transcoded-frames", result="miss") == 1
    assert grew("fovea_cache_lookups_total", cache="transcoded-frames", result="hit") == 1
    assert value(after, "fovea_cache_bytes", cache="transcoded-frames") > 0
    assert ("fovea_db_connections_in_use", frozenset()) in after


def test_every_worker_process_is_counted(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*FOVEA, "serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path)],
        env={**os.environ, "FOVEA_INGEST_WORKERS": "1", "FOVEA_LOG_LEVEL": "warning"},
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "fovea serve did not start"
                time.sleep(0.2)
        # New connections are dealt to either worker; each /metrics answer must count them all.
        for _ in range(40):
            with httpx.Client() as client:
                assert client.get(f"{base}/health").status_code == 200
        counts = {
            value(samples(base), "fovea_http_requests_total", method="GET", route="/health", status="200")
            for _ in range(6)
        }
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    assert min(counts) >= 41  # the 40, and at least the first health check
    assert (tmp_path / ".metrics").is_dir()
