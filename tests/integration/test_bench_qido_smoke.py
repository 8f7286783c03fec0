"""The QIDO-RS benchmark still runs end to end (`--quick`): every case on every back end, every answer right.

Timings are never asserted: only that each case ran against a live server on SQLite (and PostgreSQL when
one answers), got a 200 with the number of results the generated index must give for every request,
and reported positive figures in the documented JSON shape (bench/README.md).
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
BENCH = REPO_ROOT / "bench" / "bench_qido.py"
STUDY_CASES = ["study_patient_name", "study_patient_id", "study_date_range", "study_modalities"]
CASES = [*STUDY_CASES, "series_in_study", "instances_in_study", "series_metadata", "series_metadata_gzip"]
POSITIVE_FIGURES = (
    *("n", "wall_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "wire_bytes_mean"),
    *("server_peak_rss_mb", "server_vmhwm_mb", "client_peak_rss_mb"),
)
# The --quick index: 20 studies of 4 series of 5 instances, 12 patients, and a 40-instance series.
QUICK_INDEX = {"studies": 21, "series": 81, "instances": 440, "patients": 12}

Run = tuple[list[dict[str, Any]], Path, str]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("bench") / "qido.json"
    completed = run_quick_bench(BENCH, out, timeout=180)
    return bench_records(completed), out, completed.stderr


def backends(run: Run) -> list[str]:
    """SQLite always; PostgreSQL unless the run said it was skipped (no server answering)."""
    _, _, stderr = run
    return ["sqlite"] if "PostgreSQL skipped" in stderr else ["sqlite", "postgres"]


def by_case(records: list[dict[str, Any]], backend: str, case: str) -> dict[str, Any]:
    return next(r for r in records if r["backend"] == backend and r["case"] == case)


def test_quick_run_reports_every_case_on_every_backend(quick_run: Run) -> None:
    records, _, _ = quick_run
    expected = [(backend, case) for backend in backends(quick_run) for case in CASES]
    assert [(record["backend"], record["case"]) for record in records] == expected


def test_every_answer_held_the_expected_results(quick_run: Run) -> None:
    records, _, _ = quick_run
    for record in records:
        assert record["non_200"] == 0, record
        assert record["bad_payloads"] == 0, record


def test_figures_are_positive_numbers(quick_run: Run) -> None:
    records, _, _ = quick_run
    for record in records:
        for key in POSITIVE_FIGURES:
            value = record[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            assert value > 0, (record["backend"], record["case"], key, value)
        assert record["p50_ms"] <= record["p95_ms"] <= record["max_ms"]
        assert record["baseline"]["health_rtt_p50_ms"] > 0
        assert record["machine"]["cpu_count"] > 0 and record["machine"]["python"]


def test_the_index_is_the_planned_one(quick_run: Run) -> None:
    records, _, _ = quick_run
    for record in records:
        index = record["index"]
        assert {key: index[key] for key in QUICK_INDEX} == QUICK_INDEX
        assert 1_000 < index["metadata_bytes_per_instance"] < 20_000  # a plain CT header
        assert index["generate_s"] >= 0


def test_searches_within_a_study_and_metadata_return_whole_answers(quick_run: Run) -> None:
    records, _, _ = quick_run
    for backend in backends(quick_run):
        assert by_case(records, backend, "series_in_study")["objects_mean"] == 4
        assert by_case(records, backend, "instances_in_study")["objects_mean"] == 20
        plain = by_case(records, backend, "series_metadata")
        gzipped = by_case(records, backend, "series_metadata_gzip")
        assert plain["objects_mean"] == gzipped["objects_mean"] == plain["instances"] == 40
        assert plain["wire_bytes_mean"] == plain["response_bytes_mean"]
        assert gzipped["wire_bytes_mean"] < gzipped["response_bytes_mean"] == plain["response_bytes_mean"]


def test_study_searches_carry_their_target(quick_run: Run) -> None:
    records, _, _ = quick_run
    for record in records:
        if record["case"] in STUDY_CASES:
            assert (record["target_ms"], record["target_stat"]) == (30.0, "p95_ms")
            assert isinstance(record["meets_target"], bool)
            assert (
                record["example"].startswith("GET /dicom-web/studies?") and "limit=101" in record["example"]
            )
        elif record["case"].startswith("series_metadata"):
            assert (record["target_ms"], record["target_stat"]) == (50.0, "p50_ms")
            assert isinstance(record["meets_target"], bool)
        else:
            assert record["target_ms"] is record["meets_target"] is None


def test_results_file_holds_the_printed_lines(quick_run: Run) -> None:
    records, out, _ = quick_run
    assert_results_file_holds(records, out)


def test_temporary_folders_are_removed(quick_run: Run) -> None:
    _, out, _ = quick_run
    assert_only_results_left(out)
