"""Idle memory of the embedded default (`fovea serve`: SQLite + folder), per process, and after first use.

Why: a small installation (a laptop, a modality's side box) runs `make run` and leaves it idle most of
the day; the whole process tree should stay under 150 MB RSS there (issue 16). Worker processes are
started on first use, so this also reports what each kind of work adds once it has been asked for:
one small STOW (ingested inline, in the server's threads), one STOW larger than FOVEA_INGEST_INLINE_KB
(ingest worker processes), and one frame transcoded by a codec that runs in worker processes. Last, the
server is restarted on the same data folder and measured idle again: the first start migrated a new
index (alembic stays loaded), a restart finds it current.

Reads VmRSS (/proc/PID/status) and Pss, USS (/proc/PID/smaps_rollup) of every process in the server's
tree. RSS counts shared pages (the Python runtime, libraries) once per process; PSS divides them among
the processes sharing them, so the PSS sum is what the tree really costs the machine. Prints one JSON
line per snapshot and writes them to bench/results/idle_memory.json.

    .venv/bin/python bench/bench_idle_memory.py [--quick] [--idle-s S]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_frames import check_frame, part10, store
from bench_stow import ct_dataset, random_frames
from common import (
    BenchFailure,
    FoveaServer,
    add_server_arguments,
    kb_to_mb,
    machine_facts,
    process_tree,
    run_in_scratch_folder,
    server_arguments,
    status_kb,
)
from pydicom.uid import generate_uid

TARGET_IDLE_RSS_MB = 150.0
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"  # its encoder holds the GIL: codec worker processes
INLINE_LIMIT_KB = 2048  # FOVEA_INGEST_INLINE_KB's default; the large STOW must exceed it


def smaps_kb(pid: int) -> dict[str, int]:
    """Pss and USS (Private_Clean + Private_Dirty) of one process in kB, from /proc/PID/smaps_rollup."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in ("Pss", "Private_Clean", "Private_Dirty"):
                    fields[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def role(pid: int, server_pid: int) -> str:
    """What a process of the tree is, from its command line and its parent's."""
    if pid == server_pid:
        return "server"
    line = command_line(pid)
    if "multiprocessing.resource_tracker" in line:
        return "resource tracker"
    if "multiprocessing.forkserver" in line:
        # a fork server's children are pool workers (ingest or codec): they inherit its command line
        return "pool worker" if "multiprocessing.forkserver" in command_line(parent_of(pid)) else "forkserver"
    if "multiprocessing.spawn" in line:
        return "server worker"  # `fovea serve --workers N`
    return "other"


def snapshot(server: FoveaServer, label: str) -> dict[str, Any]:
    """RSS, PSS and USS of every process in the server's tree, and their sums."""
    processes: list[dict[str, Any]] = []
    for pid in process_tree(server.pid):
        smaps = smaps_kb(pid)
        processes.append(
            {
                "pid": pid,
                "role": role(pid, server.pid),
                "rss_mb": kb_to_mb(status_kb(pid, "VmRSS")),
                "pss_mb": kb_to_mb(smaps["pss"]),
                "uss_mb": kb_to_mb(smaps["uss"]),
            }
        )
    total_rss = round(sum(p["rss_mb"] for p in processes), 1)
    return {
        "case": label,
        "processes": len(processes),
        "total_rss_mb": total_rss,
        "total_pss_mb": round(sum(p["pss_mb"] for p in processes), 1),
        "total_uss_mb": round(sum(p["uss_mb"] for p in processes), 1),
        "by_process": processes,
    }


def wait_ready(client: httpx.Client, base_url: str) -> None:
    response = client.get(f"{base_url}/readyz")
    if response.status_code != 200:
        raise BenchFailure(f"GET /readyz: {response.status_code} {response.text[:300]}")


def instance_url(base_url: str, study: str, series: str, sop: str) -> str:
    return f"{base_url}/dicom-web/studies/{study}/series/{series}/instances/{sop}"


def run(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    idle_s = 1.0 if args.quick else args.idle_s
    rng = np.random.default_rng(16)
    small = ct_dataset(generate_uid(), generate_uid(), instance_number=1)
    small.PixelData = random_frames(rng, 1)  # 512 KiB: ingested inline
    large_frames = INLINE_LIMIT_KB * 1024 // len(small.PixelData) + 2  # just over the inline limit
    large = ct_dataset(generate_uid(), generate_uid(), instance_number=1, frames=large_frames)
    large.PixelData = random_frames(rng, large_frames)
    snapshots = []
    with FoveaServer(root / "data", server_arguments(args)) as server, httpx.Client(timeout=120) as client:
        wait_ready(client, server.base_url)
        time.sleep(idle_s)
        snapshots.append(snapshot(server, "idle"))
        store(client, server.base_url, [part10(small)])
        url = instance_url(
            server.base_url, small.StudyInstanceUID, small.SeriesInstanceUID, small.SOPInstanceUID
        )
        check_frame(client, f"{url}/frames/1", small.PixelData)
        time.sleep(idle_s)
        snapshots.append(snapshot(server, "after_small_stow"))
        store(client, server.base_url, [part10(large)])
        time.sleep(idle_s)
        snapshots.append(snapshot(server, "after_large_stow"))
        accept = f"image/jls; transfer-syntax={JPEG_LS_LOSSLESS}"
        response = client.get(f"{url}/frames/1", headers={"Accept": accept})
        if response.status_code != 200 or JPEG_LS_LOSSLESS not in response.headers.get("content-type", ""):
            raise BenchFailure(f"transcoded frame: {response.status_code} {response.text[:300]}")
        time.sleep(idle_s)
        snapshots.append(snapshot(server, "after_transcoded_frame"))
    # the same data folder again: no migration to run this time (a server restarted, the usual case)
    with FoveaServer(root / "data", server_arguments(args)) as server, httpx.Client(timeout=120) as client:
        wait_ready(client, server.base_url)
        time.sleep(idle_s)
        snapshots.append(snapshot(server, "idle_after_restart"))
    facts = {
        "idle_s": idle_s,
        "small_instance_bytes": len(part10(small)),
        "large_instance_frames": large_frames,
        "server_args": server_arguments(args),
        "quick": args.quick,
        "machine": machine_facts(root),
    }
    for record in snapshots:
        record.update(facts)
    snapshots[0]["target_idle_rss_mb"] = TARGET_IDLE_RSS_MB
    snapshots[0]["meets_target"] = snapshots[0]["total_rss_mb"] < TARGET_IDLE_RSS_MB
    return snapshots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="idle 1 s between snapshots")
    parser.add_argument("--idle-s", type=float, default=5.0, help="seconds idle before each snapshot")
    parser.add_argument("--out", type=Path, default=Path("bench/results/idle_memory.json"))
    add_server_arguments(parser)
    args = parser.parse_args()
    return run_in_scratch_folder("idle", args, lambda root: run(args, root))


if __name__ == "__main__":
    raise SystemExit(main())
