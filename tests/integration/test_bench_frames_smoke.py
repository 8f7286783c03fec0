"""The WADO-RS retrieval benchmark still runs end to end (`--quick`): every case reported, every answer whole.

Timings are never asserted: only that each case ran against a live server, got a 200 and the expected
payload for every request, and reported positive figures in the documented JSON shape (bench/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.bench_runs import (
    assert_only_results_left,
    assert_results_file_holds,
    bench_records,
    run_quick_bench,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench" / "bench_frames.py"
CASES = [
    "frames_big_random",
    "frames_small",
    "frame_last_vs_first",
    "frames_concurrent",
    "series_metadata",
    "frames_uncached",
]
FRAME_BYTES = 512 * 512 * 2
POSITIVE_FIGURES = ("n", "wall_s", "server_peak_rss_mb", "server_vmhwm_mb", "client_peak_rss_mb")
FRAME_CASE_FIGURES = ("payload_bytes", "frames_per_s", "mb_per_s", "p50_ms", "p99_ms", "max_ms")
VARIANT_FIGURES = (
    *("variant_n", "multipart_p50_ms", "compressed_p50_ms", "compressed_wire_bytes"),
    "httpx_client_p50_ms",
)
PER_CASE_FIGURES = {
    "frames_big_random": (*FRAME_CASE_FIGURES, "p90_ms", *VARIANT_FIGURES),
    "frames_small": (*FRAME_CASE_FIGURES, "p90_ms", *VARIANT_FIGURES),
    "frame_last_vs_first": ("payload_bytes", "last_frame_p50_ms", "small_frame_p50_ms", "ratio"),
    "frames_concurrent": (*FRAME_CASE_FIGURES, "concurrency"),
    "series_metadata": (
        *("instances", "response_bytes", "p50_ms", "p95_ms", "max_ms"),
        *("compressed_p50_ms", "compressed_wire_bytes"),
    ),
    "frames_uncached": ("payload_bytes", "frame_bytes", "p50_ms", "p99_ms", "max_ms"),
}

Run = tuple[list[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("bench") / "frames.json"
    completed = run_quick_bench(BENCH, out)
    return bench_records(completed), out


def by_case(records: list[dict[str, Any]], case: str) -> dict[str, Any]:
    return next(record for record in records if record["case"] == case)


def test_quick_run_reports_every_case(quick_run: Run) -> None:
    records, _ = quick_run
    assert [record["case"] for record in records] == CASES


def test_every_request_got_its_payload(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        assert record["non_200"] == 0, record
        assert record["bad_payloads"] == 0, record


def test_figures_are_positive_numbers(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        for key in (*POSITIVE_FIGURES, *PER_CASE_FIGURES[record["case"]]):
            value = record[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            assert value > 0, (record["case"], key, value)
        assert record["baseline"]["health_rtt_p50_ms"] > 0
        assert record["server_cpu_s"] >= 0 and record["steal_cpu_s"] >= 0
        assert isinstance(record["meets_target"], bool)
        assert record["target"], record["case"]
        assert record["machine"]["cpu_count"] > 0 and record["machine"]["python"]


def test_every_frame_received_is_one_whole_frame(quick_run: Run) -> None:
    records, _ = quick_run
    for case in ("frames_big_random", "frames_small", "frames_concurrent"):
        record = by_case(records, case)
        assert record["frame_bytes"] == FRAME_BYTES
        assert record["payload_bytes"] == record["n"] * FRAME_BYTES, case
    pair = by_case(records, "frame_last_vs_first")
    assert pair["payload_bytes"] == 2 * pair["n"] * FRAME_BYTES
    assert pair["last_frame_number"] == by_case(records, "frames_big_random")["instance_frames"] > 1


def test_series_metadata_lists_every_instance(quick_run: Run) -> None:
    records, _ = quick_run
    metadata = by_case(records, "series_metadata")
    assert metadata["instances"] == 20  # the --quick series; the run fails when an answer lacks one


def test_results_file_holds_the_printed_lines(quick_run: Run) -> None:
    records, out = quick_run
    assert_results_file_holds(records, out)


def test_temporary_folders_are_removed(quick_run: Run) -> None:
    _, out = quick_run
    assert_only_results_left(out)
