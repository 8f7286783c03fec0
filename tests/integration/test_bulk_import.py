"""`fovea import`'s run: what it reports and when, where each file is stored, what the terminal shows.

The run is real (a fresh SQLite data folder, real files, real worker processes where they are used);
only the order of events and the files' fate are asserted, never how long anything took.
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from app.settings import Settings
from app.store.tools import bulk_import
from app.store.tools.bulk_import import run_import as run_store_import
from app.store.tools.import_events import FileDone, FilesFound, ImportEvent, ImportSummary, Phase
from tests.dicom_files import make_instance
from tests.integration.test_cli import FOVEA, count_instances


def run_import(
    settings: Settings, paths: list[Path], *, jobs: int, on_event: Callable[[ImportEvent], None] | None = None
) -> ImportSummary:
    """`run_import` with what `fovea import` takes from these settings."""
    return run_store_import(
        settings.ingest_target(),
        paths,
        jobs=jobs,
        inline_bytes=settings.ingest_inline_bytes,
        auto_migrate=settings.migrate_at_startup,
        **({"on_event": on_event} if on_event else {}),
    )


def write_instances(folder: Path, sizes: list[int]) -> list[Path]:
    """One file per entry, `rows` x `rows` pixels each, all in one study."""
    folder.mkdir(parents=True)
    study = generate_uid()
    paths = []
    for i, rows in enumerate(sizes):
        path = folder / f"IM{i}.dcm"
        path.write_bytes(make_instance(study_uid=study, rows=rows, columns=rows, seed=i))
        paths.append(path)
    return paths


def test_the_first_event_comes_before_the_index_exists_and_the_total_before_any_file(
    tmp_path: Path,
) -> None:
    write_instances(tmp_path / "incoming", [16, 16, 16])
    data_dir = tmp_path / "data"
    seen: list[tuple[ImportEvent, bool, int]] = []

    def record(event: ImportEvent) -> None:
        index = data_dir / "fovea.db"
        seen.append((event, index.exists(), count_instances(data_dir) if index.exists() else 0))

    summary = run_import(Settings(data_dir=data_dir), [tmp_path / "incoming"], jobs=2, on_event=record)

    first, index_existed, _ = seen[0]
    assert isinstance(first, Phase) and not index_existed
    kinds = [type(event) for event, _, _ in seen]
    found_at = kinds.index(FilesFound)
    assert FileDone not in kinds[:found_at]
    assert seen[found_at][0] == FilesFound(3) and seen[found_at][2] == 0  # nothing stored yet
    assert kinds.count(FileDone) == 3
    assert Phase("starting worker processes") not in [event for event, _, _ in seen]  # small files only
    assert summary.outcomes["stored"] == 3 and summary.total == 3 and not summary.failed
    assert count_instances(data_dir) == 3


def test_files_above_the_inline_size_are_stored_by_worker_processes(tmp_path: Path) -> None:
    # 16 x 16 pixels: under 2 KiB; 128 x 128: over 32 KiB
    paths = write_instances(tmp_path / "incoming", [16, 128, 16, 128])
    data_dir = tmp_path / "data"
    events: list[ImportEvent] = []

    settings = Settings(data_dir=data_dir, ingest_inline_kb=8)
    summary = run_import(settings, [tmp_path / "incoming"], jobs=2, on_event=events.append)

    assert events.count(Phase("starting worker processes")) == 1
    assert sorted(event.path for event in events if isinstance(event, FileDone)) == paths
    assert summary.outcomes["stored"] == 4 and not summary.failed
    assert count_instances(data_dir) == 4
    spool = data_dir / "blobs" / ".spool"
    assert [p for p in spool.rglob("*") if p.is_file() and p.name != ".lock"] == []


def test_a_long_run_on_more_cores_than_threads_stores_everything_with_workers_started_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 jobs: one more than the threads; a threshold of 1 file per job makes 10 files a long run, so
    # the worker processes start in the background while the threads store (which lane stores which
    # file depends on timing: only the outcome is asserted, and that the run ends with nothing left)
    monkeypatch.setattr(bulk_import, "FILES_PER_EXTRA_JOB", 1)
    write_instances(tmp_path / "incoming", [16] * 10)
    data_dir = tmp_path / "data"

    summary = run_import(Settings(data_dir=data_dir), [tmp_path / "incoming"], jobs=5)

    assert summary.outcomes["stored"] == 10 and not summary.failed
    assert count_instances(data_dir) == 10
    spool = data_dir / "blobs" / ".spool"
    assert [p for p in spool.rglob("*") if p.is_file() and p.name != ".lock"] == []


def run_in_terminal(*args: str) -> str:
    """`fovea ARGS` with stderr on a pseudo-terminal (rich draws live there); all it wrote."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "50"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([*FOVEA, *args], stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    output = bytearray()
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
        process.wait(timeout=120)
    assert process.returncode == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


def test_the_terminal_shows_the_step_under_way_then_zero_of_the_total_before_the_first_file(
    tmp_path: Path,
) -> None:
    write_instances(tmp_path / "incoming", [16, 16, 16])

    output = run_in_terminal("import", str(tmp_path / "incoming"), "--data-dir", str(tmp_path / "data"))

    checking = output.index("checking the index")
    zero = output.index("0/3")
    assert checking < zero < output.index("3/3")  # every file counted after the empty count
    assert "files/s" in output
    assert count_instances(tmp_path / "data") == 3
