"""The per-request overhead benchmark still runs end to end (`--quick`): every case, every answer right.

Timings are never asserted: only that each request got its expected status (the run fails otherwise) and
that the figures are positive numbers in the documented JSON shape (bench/README.md).
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
BENCH = REPO_ROOT / "bench" / "bench_request_overhead.py"
REQUESTS = ("health", "not_found", "frame")
CASES = [*(f"asgi_{name}" for name in REQUESTS), *(f"http_{name}" for name in REQUESTS)]
FIGURES = {
    "asgi": ("n", "cpu_us_per_request", "wall_us_per_request"),
    "http": ("n", "p50_ms", "p90_ms", "server_cpu_us_per_request", "client_cpu_us_per_request"),
}

Run = tuple[list[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("bench") / "request_overhead.json"
    completed = run_quick_bench(BENCH, out)
    return bench_records(completed), out


def test_quick_run_reports_every_case(quick_run: Run) -> None:
    records, _ = quick_run
    assert [record["case"] for record in records] == CASES


def test_figures_are_positive_numbers(quick_run: Run) -> None:
    records, _ = quick_run
    for record in records:
        for key in FIGURES[record["case"].split("_", 1)[0]]:
            value = record[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            # Server CPU over HTTP is read in clock ticks: a quick run of cheap requests may read 0.
            assert value > 0 or key == "server_cpu_us_per_request", (record["case"], key, value)
        assert record["target"]
        assert record["machine"]["cpu_count"] > 0 and record["machine"]["python"]


def test_results_file_holds_the_printed_lines(quick_run: Run) -> None:
    records, out = quick_run
    assert_results_file_holds(records, out)


def test_temporary_folders_are_removed(quick_run: Run) -> None:
    _, out = quick_run
    assert_only_results_left(out)
