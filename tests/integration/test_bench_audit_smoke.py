"""The audit benchmark still runs end to end (`--quick`); its figures are reported, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.bench_runs import REPO_ROOT, bench_records, run_quick_bench

BENCH = REPO_ROOT / "bench" / "bench_audit.py"


def test_quick_run_reports_both_cases(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    records = bench_records(run_quick_bench(BENCH, out))
    assert [record["case"] for record in records] == ["middleware", "database_sink"]
    middleware, database = records
    assert middleware["n"] == database["n"] == 2000
    for field in ("plain_us", "audited_us", "audited_process_cpu_us"):
        assert middleware[field] > 0
    assert database["events_per_s"] > 0 and database["record_us"] >= 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == records
    assert not list(tmp_path.glob("fovea-bench-audit-*"))  # its temporary folder is removed
