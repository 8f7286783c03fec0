"""The shared-cache benchmark still runs end to end (`--quick`): two servers, one Redis, every frame the
second asked for read from the cache the first filled.

Timings are never asserted: only the counters the run reports (what each process made, the second's
shared hits), the sizes it received and that its figures are positive, in the documented JSON shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.bench_runs import REPO_ROOT, bench_records, run_quick_bench

BENCH = REPO_ROOT / "bench" / "bench_shared_cache.py"
FIGURES = (
    "native_p50_ms",
    "cold_p50_ms",
    "shared_first_p50_ms",
    "local_again_p50_ms",
    "cold_to_shared_ratio",
)


@pytest.mark.usefixtures("redis_prefix")
def test_quick_run_serves_the_second_process_from_the_shared_cache(tmp_path: Path) -> None:
    out = tmp_path / "shared_cache.json"
    [record] = bench_records(run_quick_bench(BENCH, out))  # redis_prefix: skipped without a Redis
    assert record["case"] == "shared_transcode"
    frames = record["frames"]
    assert (record["made_on_a"], record["made_on_b"], record["shared_hits_on_b"]) == (frames, 0, frames)
    assert record["native_frame_bytes"] == record["rows"] * record["columns"] * 2
    assert 0 < record["encoded_frame_bytes_mean"] < record["native_frame_bytes"]
    for key in FIGURES:
        assert isinstance(record[key], int | float) and record[key] > 0, (key, record[key])
    assert record["baseline"]["health_rtt_p50_ms"] > 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == [record]
