"""`fovea import`: walk folders and store every file through the same ingest pipeline as STOW-RS.

Why processes: parsing is CPU work under the GIL, so each worker process has its own ingestor (engine
and blob store) and the files are spread over all cores. The originals are never moved: each file is
copied into the store's spool folder, and that copy is what ingest consumes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app.settings import Settings
from app.store.ingest import Ingestor, IngestResult, Outcome
from app.store.parse import Problem

SKIPPED_NAMES = frozenset({"DICOMDIR"})  # media directories index files; they are not instances

_worker_ingestor: Ingestor | None = None  # one per worker process, set by the pool initializer


@dataclass
class ImportSummary:
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    bytes_read: int = 0


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every regular file under `paths`, in a stable order, skipping DICOMDIR and hidden files."""
    for path in paths:
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name not in SKIPPED_NAMES and not name.startswith("."):
                    yield Path(root) / name


def _open_worker(settings: Settings) -> None:
    global _worker_ingestor
    from app.services import open_blob_store_from
    from app.store.db import create_index_engine

    engine = create_index_engine(settings.resolved_database_url)
    _worker_ingestor = Ingestor(engine, open_blob_store_from(settings), settings.duplicate_policy)


def _ingest_copy(path: Path) -> tuple[Path, int, IngestResult]:
    ingestor = _worker_ingestor
    if ingestor is None:
        raise RuntimeError("import worker was not initialised")
    handle, name = tempfile.mkstemp(prefix="import-", suffix=".dcm", dir=ingestor.blobs.spool_directory)
    os.close(handle)
    copy = Path(name)
    try:
        shutil.copyfile(path, copy)
    except OSError as exc:
        copy.unlink(missing_ok=True)
        return (
            path,
            0,
            IngestResult(Outcome.FAILED, problem=Problem.NOT_DICOM, message=f"cannot read file: {exc}"),
        )
    return path, copy.stat().st_size, ingestor.ingest(copy)


def run_import(
    settings: Settings, paths: Sequence[Path], *, jobs: int, console: Console | None = None
) -> ImportSummary:
    """Import every file under `paths`; show progress; print and return a summary."""
    from app.services import open_services

    console = console or Console(stderr=True)
    open_services(settings).close()  # migrate (embedded default) or check the schema, once
    files = list(iter_files(paths))
    summary = ImportSummary()
    columns = (
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} files/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with (
        Progress(*columns, console=console) as progress,
        ProcessPoolExecutor(max_workers=max(1, jobs), initializer=_open_worker, initargs=(settings,)) as pool,
    ):
        task = progress.add_task("import", total=len(files), rate=0.0)
        for path, size, result in pool.map(_ingest_copy, files, chunksize=4):
            summary.bytes_read += size
            summary.outcomes[result.outcome.value] += 1
            if not result.stored:
                summary.failed.append((path, result.message or str(result.problem)))
            progress.advance(task)
            elapsed = progress.tasks[0].elapsed or 0.0
            progress.update(task, rate=progress.tasks[0].completed / elapsed if elapsed else 0.0)
    _print_summary(console, summary, len(files))
    return summary


def _print_summary(console: Console, summary: ImportSummary, total: int) -> None:
    table = Table(title=f"fovea import: {total} files")
    table.add_column("outcome")
    table.add_column("files", justify="right")
    for outcome in Outcome:
        table.add_row(outcome.value, str(summary.outcomes.get(outcome.value, 0)))
    console.print(table)
    if summary.failed:
        failures = Table(title="failed files")
        failures.add_column("file")
        failures.add_column("reason")
        for path, reason in summary.failed:
            failures.add_row(str(path), reason)
        console.print(failures)
