"""The frame transcoding benchmark still runs end to end (`--quick`): every pair reported, every answer whole.

Timings are never asserted: only that each pair ran against a live server, got a 200 and a part in the
requested transfer syntax for every request (the script fails otherwise), and reported positive figures
in the documented JSON shape (bench/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian

from tests.integration.bench_runs import (
    assert_only_results_left,
    assert_results_file_holds,
    bench_records,
    run_quick_bench,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench" / "bench_transcode.py"
STORED = {"native", "jls", "j2k", "rle"}
LOSSLESS_TARGETS = {"jls", "j2k", "htj2k", "jxl", "rle", "deflate"}  # every layout here fits them all
POSITIVE_FIGURES = (
    *("n", "wall_s", "server_fps", "bare_fps", "ratio", "server_p50_ms", "server_p99_ms"),
    *("frame_bytes_mean", "bare_wall_s", "cached_n", "cached_p50_ms", "cached_p99_ms"),
    *("native_p50_ms", "native_p99_ms", "cached_ratio"),
)
NON_NEGATIVE_FIGURES = (
    *("server_cpu_s", "client_cpu_s", "other_cpu_s", "steal_cpu_s", "server_cpu_ms_per_frame"),
    *("bare_cpu_s", "bare_other_cpu_s", "bare_steal_cpu_s", "bare_cpu_ms_per_frame"),
)
FLAGS = ("meets_throughput_target", "meets_cached_target", "meets_target", "noisy", "lossy")

Run = tuple[list[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("bench") / "transcode.json"
    return bench_records(run_quick_bench(BENCH, out)), out


def pairs_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["case"] == "transcode"]


def test_one_line_per_pair_then_the_summary(quick_run: Run) -> None:
    records, _ = quick_run
    pairs = pairs_of(records)
    assert pairs and records[:-1] == pairs
    assert records[-1]["case"] == "transcode_summary"
    assert len({record["pair"] for record in pairs}) == len(pairs)


def test_every_stored_syntax_to_every_lossless_target_and_octet_stream(quick_run: Run) -> None:
    records, _ = quick_run
    pairs = pairs_of(records)
    for layout in ("ct", "rgb"):
        mine = [record for record in pairs if record["layout"] == layout]
        assert {record["stored"] for record in mine} == STORED, layout
        for stored in STORED:
            requested = {record["requested"] for record in mine if record["stored"] == stored}
            expected = LOSSLESS_TARGETS - {stored}
            assert expected <= requested, (layout, stored, requested)
            assert ("octet" in requested) == (stored != "native"), (layout, stored)
            assert stored not in requested  # serving as stored is not a transcode
    assert all(record["stored_uid"] != record["requested_uid"] for record in pairs)


def test_figures_are_positive_numbers(quick_run: Run) -> None:
    records, _ = quick_run
    for record in pairs_of(records):
        for key in POSITIVE_FIGURES:
            value = record[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
            assert value > 0, (record["pair"], key, value)
        for key in NON_NEGATIVE_FIGURES:
            assert record[key] >= 0, (record["pair"], key)
        for key in FLAGS:
            assert isinstance(record[key], bool), (record["pair"], key)
        assert record["target"] == {"ratio": 0.85, "cached_ratio": 1.2}
        assert record["ratio"] == pytest.approx(record["server_fps"] / record["bare_fps"], rel=0.01)
        assert record["cached_ratio"] == pytest.approx(
            record["cached_p50_ms"] / record["native_p50_ms"], rel=0.01, abs=0.002
        )
        assert record["machine"]["cpu_count"] > 0 and record["machine"]["python"]
        assert record["quick"] is True


def test_media_types_follow_the_requested_syntax(quick_run: Run) -> None:
    records, _ = quick_run
    for record in pairs_of(records):
        if record["requested"] == "octet":
            assert record["media_type"] == "application/octet-stream"
            assert record["requested_uid"] == ExplicitVRLittleEndian
        else:
            assert record["media_type"].startswith(("image/", "application/x-deflate")), record["pair"]


def test_summary_counts_the_pairs(quick_run: Run) -> None:
    records, _ = quick_run
    pairs, summary = pairs_of(records), records[-1]
    assert summary["pairs"] == len(pairs)
    assert summary["layouts"] == ["ct", "rgb"]
    assert summary["meeting_throughput_target"] == sum(r["meets_throughput_target"] for r in pairs)
    assert summary["meeting_cached_target"] == sum(r["meets_cached_target"] for r in pairs)
    assert summary["noisy_pairs"] == sum(r["noisy"] for r in pairs)
    assert summary["worst_ratio"]["ratio"] == min(r["ratio"] for r in pairs)
    assert summary["wall_s"] > 0 and isinstance(summary["meets_target"], bool)


def test_results_file_holds_the_printed_lines(quick_run: Run) -> None:
    records, out = quick_run
    assert_results_file_holds(records, out)


def test_temporary_folders_are_removed(quick_run: Run) -> None:
    _, out = quick_run
    assert_only_results_left(out)


def test_pairs_filter_runs_only_the_matching_pairs(tmp_path: Path) -> None:
    records = bench_records(run_quick_bench(BENCH, tmp_path / "transcode.json", "--pairs", "rgb/native->*"))
    pairs = pairs_of(records)
    assert pairs and all(record["pair"].startswith("rgb/native->") for record in pairs)
    assert records[-1]["pairs"] == len(pairs)


def test_a_filter_matching_nothing_fails(tmp_path: Path) -> None:
    completed = run_quick_bench(BENCH, tmp_path / "transcode.json", "--pairs", "no-such-pair")
    assert completed.returncode == 1
    assert "no pair matches" in completed.stderr
    assert not (tmp_path / "transcode.json").exists()
