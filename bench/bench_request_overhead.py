"""Per-request overhead benchmark: CPU time and latency of the three cheapest requests Fovea answers.

Why: the minimal GET (`/health`), an unknown path (404) and the native frame of a single-frame CT cost
little beyond what every request pays (middleware, routing, headers, metrics, the access log, the
audit event), so their cost *is* the per-request overhead. Two views of it:

- in process: the ASGI app called in a loop (no sockets, no uvicorn), CPU microseconds per request from
  `time.process_time` (all threads of this process, the retrieval pool included), which a shared machine
  disturbs far less than wall time; `--profile` prints where that time goes (cProfile);
- over HTTP: `fovea serve` answering one keep-alive client, sequential GETs as the Orthanc comparison
  sends them: the median round trip, and the server's CPU microseconds per request (/proc).

Prints one JSON line per case and writes them to bench/results/request_overhead.json. `--quick` shrinks
the counts so the smoke test runs it in seconds.

    .venv/bin/python bench/bench_request_overhead.py [--quick] [--profile] [--only CASE] [--n N]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.client
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_stow import FRAME_BYTES, ct_dataset, failed_instances, multipart_body, stow_headers
from common import (
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    cpu_seconds,
    machine_facts,
    process_tree,
    run_in_scratch_folder,
)
from pydicom.uid import generate_uid

sys.path.insert(0, str(REPO_ROOT))  # the app package of this checkout, for the in-process cases

FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'
# Goals of the Orthanc comparison (bench/README.md): the in-process figures have no goal of their own.
TARGET = "less CPU per request than before; HTTP medians toward Orthanc's (bench/README.md)"


@dataclass(frozen=True)
class Probe:
    """One request of the benchmark: its name, path, Accept header and the status it must get."""

    case: str
    path: str
    accept: str
    status: int


def probes(study: str, series: str, instance: str) -> list[Probe]:
    frame = f"/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/1"
    return [
        Probe("health", "/health", "application/json", 200),
        Probe("not_found", "/dicom-web/no-such-resource", "application/json", 404),
        Probe("frame", frame, FRAME_ACCEPT, 200),
    ]


# --- the stored instance ------------------------------------------------------------------------------


def ct_part10(study: str, series: str) -> tuple[bytes, str]:
    """A 512x512 single-frame CT as a Part 10 file, and its SOP Instance UID."""
    ds = ct_dataset(study, series, 1)
    ds.PixelData = np.arange(FRAME_BYTES // 2, dtype=np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), str(ds.SOPInstanceUID)


def store_one_ct(base_url: str) -> tuple[str, str, str]:
    """STOW one CT to the server at `base_url`; its study, series and instance UIDs."""
    study, series = generate_uid(), generate_uid()
    part, instance = ct_part10(study, series)
    boundary = "overhead-bench"
    with httpx.Client(timeout=60) as client:
        response = client.post(
            f"{base_url}/dicom-web/studies",
            content=multipart_body([part], boundary),
            headers=stow_headers(boundary),
        )
    if response.status_code != 200 or failed_instances(response, 1):
        raise BenchFailure(f"STOW answered {response.status_code}: {response.text[:300]}")
    return study, series, instance


# --- in process: the ASGI app called directly -----------------------------------------------------------


def asgi_scope(probe: Probe) -> dict[str, Any]:
    """What uvicorn hands the app for a loopback keep-alive GET."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8042),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": probe.path,
        "raw_path": probe.path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8042"),
            (b"accept", probe.accept.encode()),
            (b"accept-encoding", b"identity"),
            (b"user-agent", b"bench"),
        ],
        "state": {},
    }


Call = Callable[[], Awaitable[tuple[int, int]]]


def asgi_call(app: Any, probe: Probe) -> Call:
    """A coroutine function making one request to `app`: its status and body bytes."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> tuple[int, int]:
        answer = {"status": 0, "bytes": 0}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))

        await app(asgi_scope(probe), receive, send)
        return answer["status"], answer["bytes"]

    return call


async def cpu_us_per_call(call: Call, probe: Probe, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call over `n` calls, after a warm-up; every answer's status is checked."""
    for _ in range(max(20, n // 20)):
        await _checked(call, probe)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await _checked(call, probe)
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def _checked(call: Call, probe: Probe) -> None:
    status, sent = await call()
    if status != probe.status or (probe.case == "frame" and sent < FRAME_BYTES):
        raise BenchFailure(f"{probe.case}: status {status}, {sent} bytes")


def profile_text(call: Call, probe: Probe, n: int, lines: int) -> str:
    """cProfile of `n` calls, the functions with most cumulative time first."""

    async def calls() -> None:
        for _ in range(n):
            await _checked(call, probe)

    profiler = cProfile.Profile()
    loop = asyncio.get_event_loop()
    profiler.enable()
    loop.run_until_complete(calls())
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def in_process_cases(
    args: argparse.Namespace, data_dir: Path, uids: tuple[str, str, str]
) -> list[dict[str, Any]]:
    from app.log_setup import configure_logging
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(data_dir=data_dir)
    # As `fovea serve` runs by default: one access line per request, formatted and written by the logging
    # thread (its CPU time counts), here to a file beside the data folder.
    stderr, sys.stderr = sys.stderr, (data_dir.parent / "asgi.log").open("w")
    try:
        configure_logging(settings.log_format, settings.log_level)
    finally:
        sys.stderr = stderr
    app = create_app(settings)
    records = []

    async def measure(selected: list[Probe]) -> list[tuple[Probe, float, float]]:
        async with app.router.lifespan_context(app):
            return [
                (probe, *await cpu_us_per_call(asgi_call(app, probe), probe, args.n)) for probe in selected
            ]

    selected = [probe for probe in probes(*uids) if args.only in (None, probe.case)]
    for probe, cpu_us, wall_us in asyncio.run(measure(selected)):
        records.append(
            {
                "case": f"asgi_{probe.case}",
                "n": args.n,
                "cpu_us_per_request": round(cpu_us, 1),
                "wall_us_per_request": round(wall_us, 1),
            }
        )
    if args.profile:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        context = app.router.lifespan_context(app)
        loop.run_until_complete(context.__aenter__())
        try:
            for probe in selected:
                text = profile_text(asgi_call(app, probe), probe, args.n, args.profile_lines)
                print(f"--- profile of {probe.case} ({args.n} requests) ---\n{text}", file=sys.stderr)
        finally:
            loop.run_until_complete(context.__aexit__(None, None, None))
            loop.close()
    return records


# --- over HTTP: `fovea serve` and one keep-alive client ---------------------------------------------------


def http_case(server: FoveaServer, probe: Probe, n: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Accept": probe.accept, "Accept-Encoding": "identity"}
    try:
        for _ in range(max(20, n // 20)):
            _http_get(connection, probe, headers)
        pids = process_tree(server.pid)
        server_cpu, client_cpu = cpu_seconds(pids), time.process_time()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            _http_get(connection, probe, headers)
            times.append(time.perf_counter() - started)
        server_cpu = cpu_seconds(pids) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        connection.close()
    return {
        "case": f"http_{probe.case}",
        "n": n,
        "p50_ms": round(statistics.median(times) * 1000, 3),
        "p90_ms": round(sorted(times)[int(0.9 * (n - 1))] * 1000, 3),
        "server_cpu_us_per_request": round(server_cpu / n * 1e6, 1),
        "client_cpu_us_per_request": round(client_cpu / n * 1e6, 1),
    }


def _http_get(connection: http.client.HTTPConnection, probe: Probe, headers: dict[str, str]) -> None:
    connection.request("GET", probe.path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != probe.status or (probe.case == "frame" and len(body) < FRAME_BYTES):
        raise BenchFailure(f"{probe.case}: status {response.status}, {len(body)} bytes")


# --- the run ------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    data_dir = root / "data"
    with FoveaServer(data_dir, extra_args=["--log-level", "info"]) as server:  # the default level
        uids = store_one_ct(server.base_url)
        selected = [probe for probe in probes(*uids) if args.only in (None, probe.case)]
        http_records = [http_case(server, probe, args.n) for probe in selected]
    # The same data folder, the server stopped: SQLite has one writer at a time.
    records = [*in_process_cases(args, data_dir, uids), *http_records]
    facts = machine_facts(data_dir)
    load = os.getloadavg()[0]
    return [
        {**record, "target": TARGET, "load_avg_1m": round(load, 2), "machine": facts} for record in records
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 requests per case instead of 3000")
    parser.add_argument("--n", type=int, help="requests per case (timed; a warm-up comes first)")
    parser.add_argument("--only", choices=["health", "not_found", "frame"], help="one request only")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each in-process case")
    parser.add_argument("--profile-lines", type=int, default=40, help="functions per profile")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "request_overhead.json")
    parser.add_argument("--tmp-dir", type=Path, help="where the data folder goes (default: $TMPDIR)")
    args = parser.parse_args()
    args.n = args.n or (200 if args.quick else 3000)
    return run_in_scratch_folder("overhead", args, lambda root: run(args, root))


if __name__ == "__main__":  # the app's worker pools start processes (forkserver): no work at import
    sys.exit(main())
