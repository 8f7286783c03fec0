"""One log line per request, with a request ID echoed to the client: `fovea serve` run as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port

FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]
STUDY = "1.2.826.0.1.3680043.8.498.1"


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[tuple[str, list[str]]]:
    """A served Fovea; the list receives its stderr lines once it has stopped."""
    port = free_port()
    process = subprocess.Popen(
        [*FOVEA, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "FOVEA_INGEST_WORKERS": "1", **env},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/livez-not-a-route")  # any answer means it is up
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("fovea serve did not start") from None
                time.sleep(0.1)
        yield base, lines
    finally:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        lines.extend(stderr.splitlines())


def test_json_lines_one_per_request_with_the_echoed_id(tmp_path: Path) -> None:
    with serving(tmp_path, FOVEA_LOG_FORMAT="json") as (base, lines):
        chosen = httpx.get(
            f"{base}/dicom-web/studies/{STUDY}/series",
            params={"PatientName": "Doe^Jane"},
            headers={"X-Request-ID": "client-id-42"},
        )
        generated = httpx.get(f"{base}/dicom-web/studies", headers={"X-Request-ID": "has spaces"})
        missing = httpx.get(f"{base}/no/such/path")

    assert chosen.headers["x-request-id"] == "client-id-42"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])  # an implausible one replaced
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["x-request-id"])
    records = [json.loads(line) for line in lines]  # every line is JSON, startup and shutdown included
    requests = {r["request_id"]: r for r in records if r["logger"] == "fovea.request"}
    first = requests["client-id-42"]
    assert first["method"] == "GET" and first["status"] == 200  # an empty search result
    assert first["path"] == f"/dicom-web/studies/{STUDY}/series"
    assert first["route"] == "/dicom-web/studies/{study_instance_uid}/series"
    assert first["bytes"] == len(chosen.content) and first["duration_ms"] > 0
    assert first["client"] == "127.0.0.1" and first["level"] == "info"
    assert "Doe" not in json.dumps(records)  # query strings (patient names) are never logged
    assert requests[generated.headers["x-request-id"]]["status"] == 200
    unknown = requests[missing.headers["x-request-id"]]
    assert unknown["status"] == 404 and unknown["route"] is None
    assert not [r for r in records if r["logger"] == "uvicorn.access"]  # no second access line


def test_console_lines_for_people(tmp_path: Path) -> None:
    with serving(tmp_path) as (base, lines):
        answer = httpx.get(f"{base}/dicom-web/studies")
    request_id = answer.headers["x-request-id"]
    (line,) = [line for line in lines if request_id in line]
    pattern = r"\d\d:\d\d:\d\d INFO    fovea\.request: GET /dicom-web/studies 200 [\d.]+ ms 2 B "
    pattern += r"\[[0-9a-f]{32}\]"
    assert re.fullmatch(pattern, line)
    assert "Traceback" not in "\n".join(lines)
