"""Running a benchmark script's `--quick` version for its smoke test, and reading its JSON lines.

Why shared: every bench script takes the same `--quick --out --tmp-dir` arguments and prints one JSON
record per line; the smoke tests only differ in what they check in those records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_quick_bench(
    bench: Path, out: Path, *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`bench --quick`, writing its results to `out` and its temporary files beside it."""
    return subprocess.run(
        [sys.executable, str(bench), "--quick", "--out", str(out), "--tmp-dir", str(out.parent), *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bench_records(completed: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The JSON records a successful run printed, one per non-empty line."""
    name = Path(str(completed.args[1])).name
    assert completed.returncode == 0, f"{name} failed:\n{completed.stdout}\n{completed.stderr}"
    return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]


def assert_results_file_holds(records: list[dict[str, Any]], out: Path) -> None:
    """The run's results file holds exactly the records it printed."""
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == records


def assert_only_results_left(out: Path) -> None:
    """The run removed its temporary files: only the results file is left in its folder."""
    assert [path.name for path in out.parent.iterdir()] == [out.name]
