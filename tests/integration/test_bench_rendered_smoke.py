"""The rendered/thumbnail benchmark still runs end to end (`--quick`): every case reported, every answer a
JPEG of the expected size.

Timings are never asserted: only that each case ran against a live server, got a 200 and a decodable
JPEG of the right size for every request (cold and cached), and reported positive figures in the
documented JSON shape (bench/README.md).
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
BENCH = REPO_ROOT / "bench" / "bench_rendered.py"
CASES = [
    "rendered_ct_512",
    "thumbnail_ct_512",
    "rendered_ct_512_j2k",
    "rendered_xray_3000",
    "thumbnail_xray_3000",
]
TARGETS = {"rendered_ct_512": 15.0, "thumbnail_xray_3000": 120.0}
# The --quick sizes: 160x160 CT slices, 400x400 radiographs; thumbnails fit 128 pixels.
OUTPUT_SIZES = {
    "rendered_ct_512": [160, 160],
    "thumbnail_ct_512": [128, 128],
    "rendered_ct_512_j2k": [160, 160],
    "rendered_xray_3000": [400, 400],
    "thumbnail_xray_3000": [128, 128],
}
POSITIVE_FIGURES = (
    *("cold_n", "cold_wall_s", "cold_p50_ms", "cold_p95_ms", "cold_max_ms"),
    *("cached_n", "cached_p50_ms", "cached_p95_ms", "cached_max_ms"),
    *("jpeg_bytes_mean", "bare_render_p50_ms", "cold_instances"),
    *("server_peak_rss_mb", "server_vmhwm_mb", "client_peak_rss_mb"),
)

Run = tuple[list[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("bench") / "rendered.json"
    completed = run_quick_bench(BENCH, out)
    return bench_records(completed), out


def test_quick_run_reports_every_case(quick_run: Run) -> None:
    records, _ = quick_run
    assert [record["case"] for record in records] == CASES


def test_every_answer_was_a_jpeg_of_the_expected_size(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        assert record["non_200"] == 0, record
        assert record["bad_payloads"] == 0, record
        assert record["output_size"] == OUTPUT_SIZES[record["case"]]


def test_figures_are_positive_numbers(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        for key in POSITIVE_FIGURES:
            value = record[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            assert value > 0, (record["case"], key, value)
        assert record["cold_p50_ms"] <= record["cold_p95_ms"] <= record["cold_max_ms"]
        assert record["cached_p50_ms"] <= record["cached_p95_ms"] <= record["cached_max_ms"]
        assert record["baseline"]["health_rtt_p50_ms"] > 0
        assert record["server_cpu_s"] >= 0 and record["steal_cpu_s"] >= 0
        assert record["machine"]["cpu_count"] > 0 and record["machine"]["python"]


def test_cold_requests_each_missed_the_caches(quick_run: Run) -> None:
    """CT: one instance per cold request; x-ray: 2 instances at 3 qualities (the --quick sizes)."""
    records, _ = quick_run
    for record in records:
        assert record["cold_means"].startswith("neither the rendered image nor a decoded frame")
        if "xray" in record["case"]:
            assert (record["cold_instances"], record["cold_n"]) == (2, 6)
            assert "?quality=90" in record["example"]
        else:
            assert record["cold_instances"] == record["cold_n"] == 10


def test_the_window_header_says_how_grey_levels_were_chosen(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        if record["source"]["modality"] == "CT":
            assert record["fovea_window"].startswith("dataset; center=40; width=400")
        else:
            assert record["source"]["window_in_data_set"] == "none (automatic)"
            assert record["fovea_window"].startswith("automatic;")


def test_targets_are_reported_where_set(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        if record["case"] in TARGETS:
            assert record["target"] == {"cold_p50_ms": TARGETS[record["case"]]}
            assert isinstance(record["meets_target"], bool)
        else:
            assert record["target"] is record["meets_target"] is None


def test_results_file_holds_the_printed_lines(quick_run: Run) -> None:
    records, out = quick_run
    assert_results_file_holds(records, out)


def test_temporary_folders_are_removed(quick_run: Run) -> None:
    _, out = quick_run
    assert_only_results_left(out)
