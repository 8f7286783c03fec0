"""The import line's rate is the current one: files over the last seconds, not since the start."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from app.cli_progress import SlidingRate, VerifyProgress
from app.store.tools.verify_run import BytesRead, InstanceChecked, VerifyFinished, VerifyStarted


def test_no_file_yet_is_no_rate() -> None:
    assert SlidingRate().per_second(100.0) == 0.0


def test_a_slow_start_does_not_weigh_on_the_rate_once_out_of_the_window() -> None:
    rate = SlidingRate(window_s=5.0)
    rate.add(0.0)  # one file, then a long wait
    for tenth in range(100):  # then ten files a second for ten seconds
        rate.add(20.0 + tenth / 10)
    assert rate.per_second(30.0) == pytest.approx(10.0, abs=0.5)  # cumulative: 101 / 30 s = 3.4


def test_the_rate_before_a_full_window_counts_from_the_first_file() -> None:
    rate = SlidingRate(window_s=5.0)
    for tenth in range(20):  # twenty files in two seconds
        rate.add(10.0 + tenth / 10)
    assert rate.per_second(12.0) == pytest.approx(10.0)


def test_a_stall_brings_the_rate_down_to_zero() -> None:
    rate = SlidingRate(window_s=5.0)
    for second in range(10):
        rate.add(float(second))
    assert rate.per_second(20.0) == 0.0


def test_the_first_files_do_not_make_a_rate_of_their_own_moment() -> None:
    rate = SlidingRate(window_s=5.0)
    rate.add(10.0)
    rate.add(10.001)
    assert rate.per_second(10.002) == 2.0  # over the first second, not 2 files in 2 ms


def test_the_verify_bar_shows_instances_checked_of_the_estimate_and_ends_at_the_bytes_read() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120)
    with VerifyProgress(console) as progress:
        progress(VerifyStarted(instances=3, total_bytes=3000))
        progress(BytesRead(1000))
        progress(InstanceChecked(1))
        assert progress.task is not None
        task = progress.progress.tasks[0]
        assert (task.total, task.completed, task.fields["instances"]) == (3000, 1000, "1/~3")
        progress(VerifyFinished(instances=1, bytes_read=1000))
        assert (task.total, task.completed, task.fields["instances"]) == (1000, 1000, 1)
    assert "verify 1 instances" in output.getvalue()
