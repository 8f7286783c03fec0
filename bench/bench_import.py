"""`fovea import` benchmark: a folder of small CT instances imported, against STOW-RS of the same files.

Why: an import is judged by the person watching it, from pressing Enter to the summary, so each import
case times the whole command (start-up, index check, ingest) run as a user runs it, with stderr on a
pseudo-terminal so the live line is drawn as it would be: when its first output came, and when it first
counted a stored file. The same files are then sent by STOW-RS to `fovea serve` (timed once the server
is up and warm, as `bench_stow.py` does), the rate an import should at least reach. Prints one JSON
line per case and writes them to bench/results/import.json. `--quick` shrinks the folder for the smoke
test.

    .venv/bin/python bench/bench_import.py [--quick] [--files N] [--jobs J] [--concurrency C]
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bench_stow import multipart_body, post_concurrently, small_instances, stow_headers
from common import (
    MB,
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    add_server_arguments,
    emit,
    machine_facts,
    server_arguments,
    stop_on_sigterm,
    write_results,
)

FULL_FILES = 300
QUICK_FILES = 8
PER_REQUEST = 10  # STOW-RS: instances per request, as in bench_stow's stow_small
FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]


@dataclass
class TerminalRun:
    """What `fovea import` wrote to its terminal, and when (seconds since it was started)."""

    returncode: int
    wall_s: float
    output: str
    first_output_s: float | None
    first_file_s: float | None
    last_file_s: float | None


def run_in_terminal(command: Sequence[str], env: dict[str, str], files: int) -> TerminalRun:
    """Run `command` with stdout and stderr on a pseudo-terminal; note when the count first showed a
    stored file, and when it first showed them all."""
    counted = re.compile(rf"(?<![0-9])[1-9][0-9]*/{files}(?![0-9])".encode())  # between colour codes
    all_counted = re.compile(rf"(?<![0-9]){files}/{files}(?![0-9])".encode())
    controller, terminal = pty.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=terminal, stderr=terminal, env=env, cwd=REPO_ROOT)
    os.close(terminal)
    output = bytearray()
    first_output = first_file = last_file = None
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            now = time.perf_counter() - start
            first_output = now if first_output is None else first_output
            output += chunk
            if first_file is None and counted.search(output):
                first_file = now
            if last_file is None and all_counted.search(output):
                last_file = now
    finally:
        os.close(controller)
        returncode = process.wait(timeout=600)
    wall = time.perf_counter() - start
    return TerminalRun(returncode, wall, output.decode(errors="replace"), first_output, first_file, last_file)


def import_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without the caller's FOVEA_* settings, drawn like a real terminal."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FOVEA_")}
    env.pop("NO_COLOR", None)
    env.update({"TERM": "xterm", "COLUMNS": "160", "LINES": "50", **extra})
    return env


def run_import_case(
    case: str, folder: Path, files: int, payload: int, jobs: int, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    """One `fovea import` of `folder` into a fresh data folder, timed from start to exit."""
    data_dir = work / f"data-{case}"
    command = [*FOVEA, "import", str(folder), "--data-dir", str(data_dir), "--jobs", str(jobs)]
    run = run_in_terminal(command, import_env(env), files)
    shutil.rmtree(data_dir, ignore_errors=True)
    if run.returncode != 0:
        raise BenchFailure(f"{case}: fovea import exited with {run.returncode}:\n{run.output[-3000:]}")
    stored = re.search(r"stored\s*│\s*(\d+)", run.output)
    return {
        "case": case,
        "n": files,
        "jobs": jobs,
        "env": env,
        "payload_bytes": payload,
        "wall_s": round(run.wall_s, 3),
        "files_per_s": round(files / run.wall_s, 1),
        "mb_per_s": round(payload / MB / run.wall_s, 1),
        "first_output_s": None if run.first_output_s is None else round(run.first_output_s, 3),
        "first_file_s": None if run.first_file_s is None else round(run.first_file_s, 3),
        "last_file_s": None if run.last_file_s is None else round(run.last_file_s, 3),
        "storing_files_per_s": _rate(files - 1, run.first_file_s, run.last_file_s),
        "after_first_files_per_s": _rate(files - 1, run.first_file_s, run.wall_s),
        "stored": int(stored.group(1)) if stored else 0,
    }


def _rate(files: int, start: float | None, end: float | None) -> float | None:
    return round(files / (end - start), 1) if start is not None and end is not None and end > start else None


def run_stow_case(
    instances: list[bytes], concurrency: int, work: Path, server_args: Sequence[str]
) -> dict[str, Any]:
    """The same files by STOW-RS, `PER_REQUEST` a request, timed once the server is up and warm."""
    boundary = f"bench-{uuid.uuid4().hex}"
    requests = [
        (multipart_body(instances[i : i + PER_REQUEST], boundary), len(instances[i : i + PER_REQUEST]))
        for i in range(0, len(instances), PER_REQUEST)
    ]
    warm_up = multipart_body(small_instances(2), boundary)  # other UIDs, not timed
    with FoveaServer(work / "data-stow", server_args) as server:
        clients = [httpx.Client(timeout=120.0, headers=stow_headers(boundary)) for _ in range(concurrency)]
        try:
            for client in clients:
                client.get(f"{server.base_url}/health").raise_for_status()
            clients[0].post(f"{server.base_url}/dicom-web/studies", content=warm_up).raise_for_status()
            start = time.perf_counter()
            tally = post_concurrently(clients, f"{server.base_url}/dicom-web/studies", requests)
            wall = time.perf_counter() - start
        finally:
            for client in clients:
                client.close()
    return {
        "case": "stow_same_files",
        "n": len(instances),
        "concurrency": concurrency,
        "instances_per_request": PER_REQUEST,
        "payload_bytes": sum(len(instance) for instance in instances),
        "wall_s": round(wall, 3),
        "files_per_s": round(len(instances) / wall, 1),
        "mb_per_s": round(sum(len(instance) for instance in instances) / MB / wall, 1),
        "non_200": tally.non_200,
        "failed_instances": tally.failed_instances,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few files, for the smoke test")
    parser.add_argument("--files", type=int, help=f"files in the folder (default {FULL_FILES})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="`fovea import --jobs J`")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel STOW-RS clients")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "import.json")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.concurrency < 1:
        parser.error("--jobs and --concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    files = args.files or (QUICK_FILES if args.quick else FULL_FILES)
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-import-", dir=args.tmp_dir))
    common_fields = {"quick": args.quick, "machine": machine_facts(work)}
    results: list[dict[str, Any]] = []
    try:
        instances = small_instances(files)
        folder = work / "incoming"
        folder.mkdir()
        for i, data in enumerate(instances):
            (folder / f"IM{i:05d}.dcm").write_bytes(data)
        payload = sum(len(data) for data in instances)
        stow = run_stow_case(instances, args.concurrency, work, server_arguments(args))
        emit({**stow, **common_fields}, results)
        if stow["non_200"] or stow["failed_instances"]:
            raise BenchFailure(f"stow_same_files: {stow['failed_instances']} instance(s) not stored")
        cases = {
            "import_small": {},  # as an operator runs it: small files stored by the command's threads
            "import_small_in_processes": {"FOVEA_INGEST_INLINE_KB": "0"},  # every file to the workers
        }
        for case, env in cases.items():
            record = run_import_case(case, folder, files, payload, args.jobs, work, env)
            # At least STOW-RS's rate while storing: STOW-RS is timed on a started, warm server, so
            # the import's start-up (first_file_s) and its summary and exit are reported beside.
            record["target"] = {"storing_files_per_s": stow["files_per_s"]}
            record["meets_target"] = (record["storing_files_per_s"] or 0) >= stow["files_per_s"]
            emit({**record, "instance_bytes": len(instances[0]), **common_fields}, results)
            if record["stored"] != files:
                raise BenchFailure(f"{case}: {record['stored']} of {files} files stored")
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_import: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
