"""Audit trail benchmark: what recording a request costs the request, and how fast events reach the index.

Why in process: the audit middleware's cost is a few microseconds, far below the noise of HTTP on
loopback, so the app is called as ASGI directly, with and without the middleware, on the frames route
(the hot path). Both sinks are on: JSON lines to a file and the SQLite index of a temporary folder.
`database_sink` then measures how many events per second the writer thread inserts (batched).
Prints one JSON line per case and writes them to bench/results/audit.json.

    .venv/bin/python bench/bench_audit.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO_ROOT, emit, machine_facts, write_results

sys.path.insert(0, str(REPO_ROOT))

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from app.api.audit_middleware import AuditMiddleware
from app.audit.actions import Action
from app.audit.events import AuditEvent
from app.audit.trail import AuditTrail, open_audit_trail
from app.store.infra.db import create_index_engine, migrate

FRAMES = "/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/{frame_list}"
FRAME = b"\0" * 8192
UIDS = ("1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2", "1.2.826.0.1.3680043.8.498.3")


async def frame(_request: Request) -> Response:
    return Response(FRAME, media_type="application/octet-stream")


def frames_app(trail: AuditTrail, *, audited: bool) -> Starlette:
    app = Starlette(routes=[Route(FRAMES, frame)])
    if audited:
        app.add_middleware(AuditMiddleware)
    app.state.audit = trail
    return app


async def time_requests(app: Starlette, count: int) -> float:
    """CPU seconds per request on the calling thread, calling the ASGI app directly (no sockets).

    CPU time, not wall time: on a shared machine other processes' turns would swamp microseconds.
    """
    path = "/dicom-web/studies/{}/series/{}/instances/{}/frames/1".format(*UIDS)
    scope_base: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "app": app,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    for _ in range(200):  # warm up
        await app(dict(scope_base), receive, send)
    started = time.thread_time()
    for _ in range(count):
        await app(dict(scope_base), receive, send)
    return (time.thread_time() - started) / count


def middleware_case(folder: Path, count: int) -> dict[str, Any]:
    engine = create_index_engine(f"sqlite:///{folder / 'index.db'}")
    migrate(engine)
    trail = open_audit_trail(str(folder / "audit.jsonl"), engine)
    try:
        plain_app, audited_app = frames_app(trail, audited=False), frames_app(trail, audited=True)
        plain = min(asyncio.run(time_requests(plain_app, count)) for _ in range(3))
        cpu_before = time.process_time()
        audited = min(asyncio.run(time_requests(audited_app, count)) for _ in range(3))
        trail.flush(600)
        process_cpu = (time.process_time() - cpu_before) / (3 * count)  # with the sinks' threads
    finally:
        trail.close()
        engine.dispose()
    return {
        "case": "middleware",
        "n": count,
        "plain_us": round(plain * 1e6, 2),
        "audited_us": round(audited * 1e6, 2),
        "overhead_us": round((audited - plain) * 1e6, 2),
        "audited_process_cpu_us": round(process_cpu * 1e6, 2),
    }


def database_case(folder: Path, count: int) -> dict[str, Any]:
    engine = create_index_engine(f"sqlite:///{folder / 'sink.db'}")
    migrate(engine)
    trail = open_audit_trail("", engine)
    events = [
        AuditEvent(
            datetime.now(UTC),
            Action.READ_FRAMES,
            "api-key",
            "bench",
            None,
            "127.0.0.1",
            "GET",
            FRAMES,
            200,
            0,
            len(FRAME),
            UIDS[:1],
            UIDS[1:2],
            UIDS[2:],
        )
        for _ in range(count)
    ]
    started, cpu_started = time.perf_counter(), time.thread_time()
    for event in events:
        trail.record(event)
    queued = time.thread_time() - cpu_started
    trail.flush(600)
    written = time.perf_counter() - started
    trail.close()
    engine.dispose()
    return {
        "case": "database_sink",
        "n": count,
        "record_us": round(queued / count * 1e6, 2),
        "events_per_s": round(count / written),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand requests")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "audit.json")
    args = parser.parse_args()
    count = 2000 if args.quick else args.requests
    folder = Path(tempfile.mkdtemp(prefix="fovea-bench-audit-", dir=args.tmp_dir))
    results: list[dict[str, Any]] = []
    try:
        facts = machine_facts(folder)
        emit({**middleware_case(folder, count), **facts}, results)
        emit({**database_case(folder, count), **facts}, results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_results(results, args.out)


if __name__ == "__main__":
    main()
