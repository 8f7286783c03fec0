"""`fovea import`: walk folders and store every file through the same ingest pipeline as STOW-RS.

The files are spread over worker processes (store/ingest_pool.py), one per core by default. The
originals are never moved: each file is copied into the store's spool folder, and that copy is what
ingest consumes. One run is one batch: a SOP Instance UID found twice in it is reported, not replaced.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
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
from app.store.db import create_index_engine, prepare_index
from app.store.ingest import Outcome
from app.store.ingest_pool import IngestTarget, ingest_copy_in_worker, start_worker_pool

SKIPPED_NAMES = frozenset({"DICOMDIR"})  # media directories index files; they are not instances


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


def run_import(
    settings: Settings, paths: Sequence[Path], *, jobs: int, console: Console | None = None
) -> ImportSummary:
    """Import every file under `paths`; show progress; print and return a summary."""
    console = console or Console(stderr=True)
    engine = create_index_engine(settings.resolved_database_url)
    try:
        prepare_index(engine, settings)  # migrate (embedded default) or check the schema, once
    finally:
        engine.dispose()
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
    target = IngestTarget.from_settings(settings)
    store_copy = partial(ingest_copy_in_worker, target, batch_id=uuid.uuid4().hex)
    pool = start_worker_pool(jobs)
    with Progress(*columns, console=console) as progress, pool:
        task = progress.add_task("import", total=len(files), rate=0.0)
        for path, size, result in pool.map(store_copy, files, chunksize=4):
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
