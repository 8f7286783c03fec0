"""The STOW-RS benchmark still runs end to end (`--quick`): every case reported, every request stored.

Timings are never asserted: only that each case ran against a live server, stored what it sent, and
reported positive figures in the documented JSON shape (bench/README.md).
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
BENCH = REPO_ROOT / "bench" / "bench_stow.py"
POSITIVE_FIGURES = (
    "n",
    "payload_bytes",
    "wall_s",
    "instances_per_s",
    "mb_per_s",
    "server_peak_rss_mb",
    "server_vmhwm_mb",
    "client_peak_rss_mb",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    out = tmp_path_factory.mktemp("bench") / "stow.json"
    completed = run_quick_bench(BENCH, out)
    return bench_records(completed), out


def test_quick_run_reports_both_cases(quick_run: tuple[list[dict[str, Any]], Path]) -> None:
    records, _ = quick_run
    assert [record["case"] for record in records] == ["stow_small", "stow_large"]


def test_every_request_was_stored(quick_run: tuple[list[dict[str, Any]], Path]) -> None:
    records, _ = quick_run
    for record in records:
        assert record["non_200"] == 0, record
        assert record["failed_instances"] == 0, record
    large = next(record for record in records if record["case"] == "stow_large")
    assert large["status"] == 200


def test_figures_are_positive_numbers(quick_run: tuple[list[dict[str, Any]], Path]) -> None:
    records, _ = quick_run
    for record in records:
        for key in POSITIVE_FIGURES:
            value = record[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            assert value > 0, (record["case"], key, value)
        assert isinstance(record["meets_target"], bool)
        assert record["target"], record["case"]
        assert record["machine"]["cpu_count"] > 0 and record["machine"]["python"]


def test_small_case_sends_every_instance(quick_run: tuple[list[dict[str, Any]], Path]) -> None:
    records, _ = quick_run
    small = next(record for record in records if record["case"] == "stow_small")
    assert small["n"] == small["requests"] * small["instances_per_request"]
    assert small["payload_bytes"] > small["n"] * small["instance_bytes"]  # parts plus multipart framing


def test_results_file_holds_the_printed_lines(quick_run: tuple[list[dict[str, Any]], Path]) -> None:
    records, out = quick_run
    assert_results_file_holds(records, out)


def test_temporary_folders_are_removed(quick_run: tuple[list[dict[str, Any]], Path]) -> None:
    _, out = quick_run
    assert_only_results_left(out)
