"""The authentication benchmark still runs end to end (`--quick`): every case reported, every frame whole.

Timings are never asserted: only that each case ran against live servers (auth off and on), every
request got its frame (the run fails otherwise), and the figures have the documented JSON shape.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.bench_runs import REPO_ROOT, bench_records, run_quick_bench

BENCH = REPO_ROOT / "bench" / "bench_auth.py"
HTTP_CASES = ["frame_auth_off", "frame_api_key", "frame_oidc", "frame_share_token"]


def test_quick_run_reports_every_case_with_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "out" / "auth.json"
    out.parent.mkdir()
    records = bench_records(run_quick_bench(BENCH, out))

    assert [record["case"] for record in records] == [*HTTP_CASES, "authenticate_in_process"]
    for record in records[:4]:
        assert record["n"] == 20
        assert all(record[key] > 0 for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")), record
        assert isinstance(record["added_p50_ms"], float | int)
    assert records[0]["added_p50_ms"] == 0
    in_process = records[4]
    assert in_process["per_request_ms"] > 0
    assert in_process["target"] == {"per_request_ms": 0.1}
    assert isinstance(in_process["meets_target"], bool)
    assert out.read_text().count("\n") == 5
    assert [path.name for path in out.parent.iterdir()] == ["auth.json"]
