"""The whole-instance streaming benchmark still runs end to end (`--quick`): every target decoded bit-exact.

Timings are never asserted: only that each target syntax was served (the script decodes every frame
and fails on a mismatch) and reported in the documented shape.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.bench_runs import bench_records, run_quick_bench

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench" / "bench_instance_stream.py"


def test_every_target_is_reported_with_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "instance_stream.json"
    records = bench_records(run_quick_bench(BENCH, out))
    assert [record["target"] for record in records] == ["jls", "j2k", "htj2k", "rle"]
    for record in records:
        assert record["case"] == "instance_stream" and record["frames"] == 16
        for name in ("bare_encode_ms", "ttfb_ms", "total_s", "body_bytes", "codec_workers"):
            assert record[name] > 0, name
        assert record["ttfb_ms"] <= record["total_s"] * 1000
    assert out.read_text().count("\n") == len(records)
