"""The import benchmark still runs end to end (`--quick`): STOW-RS of the files, then both imports.

Timings are never asserted (they depend on the machine): only that every case stored every file, and
that the figures a reader compares are there and positive.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.bench_runs import REPO_ROOT, bench_records, run_quick_bench

BENCH = REPO_ROOT / "bench" / "bench_import.py"


def test_quick_run_stores_every_file_in_every_case(tmp_path: Path) -> None:
    out = tmp_path / "import.json"
    records = bench_records(run_quick_bench(BENCH, out))
    assert [record["case"] for record in records] == [
        "stow_same_files",
        "import_small",
        "import_small_in_processes",
    ]
    stow, *imports = records
    assert stow["non_200"] == 0 and stow["failed_instances"] == 0
    for record in imports:
        assert record["stored"] == record["n"] == stow["n"], record
        assert record["payload_bytes"] == stow["payload_bytes"]
        assert record["target"] == {"storing_files_per_s": stow["files_per_s"]}
        assert 0 < record["first_output_s"] <= record["first_file_s"] <= record["last_file_s"], record
        assert record["last_file_s"] < record["wall_s"], record
        assert record["files_per_s"] > 0 and record["after_first_files_per_s"] > 0
    assert imports[1]["env"] == {"FOVEA_INGEST_INLINE_KB": "0"}
    assert [json.loads(line) for line in out.read_text().splitlines()] == records
