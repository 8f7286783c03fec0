"""The idle-memory benchmark still runs end to end (`--quick`): one idle process at first, worker
processes once a large instance came, one process again after a restart.

Memory figures are never asserted (they depend on the machine): only the snapshots' shape, which
processes each one found, and that their figures add up.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.bench_runs import REPO_ROOT, bench_records, run_quick_bench

BENCH = REPO_ROOT / "bench" / "bench_idle_memory.py"
CASES = ["idle", "after_small_stow", "after_large_stow", "after_transcoded_frame", "idle_after_restart"]


def test_quick_run_finds_worker_processes_only_once_they_were_needed(tmp_path: Path) -> None:
    out = tmp_path / "idle_memory.json"
    records = bench_records(run_quick_bench(BENCH, out))
    assert [record["case"] for record in records] == CASES
    roles = {record["case"]: sorted(p["role"] for p in record["by_process"]) for record in records}
    assert roles["idle"] == roles["after_small_stow"] == roles["idle_after_restart"] == ["server"]
    assert {"forkserver", "pool worker", "resource tracker"} <= set(roles["after_large_stow"])
    for record in records:
        assert record["processes"] == len(record["by_process"])
        for field in ("rss_mb", "pss_mb", "uss_mb"):
            figures = [p[field] for p in record["by_process"]]
            assert all(figure > 0 for figure in figures), (record["case"], field)
            assert abs(record[f"total_{field}"] - sum(figures)) < 0.5
    assert records[0]["target_idle_rss_mb"] == 150.0
    assert [json.loads(line) for line in out.read_text().splitlines()] == records
