"""Optional OpenTelemetry tracing: off by default; on, each request becomes a span named by its route."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]
STUDY = "1.2.826.0.1.3680043.8.498.1"


def console_spans(stdout: str) -> list[dict[str, object]]:
    """The spans the console exporter printed: one indented JSON object after another."""
    decoder, spans, position = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", position)) >= 0:
        span, position = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def test_a_request_becomes_a_span_with_its_route(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.instrumentation.fastapi", reason="the otel extra is not installed")
    port = free_port()
    process = subprocess.Popen(
        [*FOVEA, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env={
            **os.environ,
            "FOVEA_INGEST_WORKERS": "1",
            "FOVEA_OTEL_ENABLED": "true",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "fovea-under-test",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/livez")  # probes are not traced
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "fovea serve did not start"
                time.sleep(0.1)
        answer = httpx.get(f"{base}/dicom-web/studies/{STUDY}/series")
        assert answer.status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)

    spans = console_spans(stdout)
    route = "/dicom-web/studies/{study_instance_uid}/series"
    [server] = [s for s in spans if s["kind"] == "SpanKind.SERVER"]  # the probe left none
    assert server["name"] == f"GET {route}"
    attributes = server["attributes"]
    assert isinstance(attributes, dict)
    assert attributes["http.route"] == route
    assert attributes.get("http.status_code", attributes.get("http.response.status_code")) == 200
    resource = server["resource"]
    assert isinstance(resource, dict)
    assert resource["attributes"]["service.name"] == "fovea-under-test"


def test_tracing_is_off_and_not_imported_unless_enabled(tmp_path: Path) -> None:
    # FastAPI itself imports the OpenTelemetry API; the SDK and the instrumentation stay out
    loaded = "any(m.startswith(('opentelemetry.sdk', 'opentelemetry.instrumentation')) for m in sys.modules)"
    script = (
        "import sys; from app.main import create_app; from app.settings import Settings; "
        f"app = create_app(Settings(data_dir={str(tmp_path)!r})); "
        f"print(hasattr(app.state, 'tracer_provider'), {loaded})"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FOVEA_", "OTEL_"))}
    run = [sys.executable, "-c", script]
    shown = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", "False"]
