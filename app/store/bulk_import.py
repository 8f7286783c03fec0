"""`fovea import`: walk folders and store every file through the same ingest pipeline as STOW-RS.

The originals are never moved: each file is copied into the store's spool folder, and that copy is
what ingest consumes. One run is one batch: a SOP Instance UID found twice in it is reported, not
replaced. Small files (FOVEA_INGEST_INLINE_KB, as for STOW-RS) are stored by threads of this process,
the others by worker processes (store/ingest_pool.py) started only once such a file comes up: their
start costs seconds, which a run of small files never pays. Nothing here draws on the terminal: the
run reports `ImportEvent`s to a callback, and the command line renders them (app/cli_progress.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from pathlib import Path

from app.settings import Settings
from app.store.db import create_index_engine, prepare_index
from app.store.import_events import FileDone, FilesFound, ImportEvent, ImportSummary, Phase
from app.store.ingest import IngestResult
from app.store.ingest_pool import IngestTarget, close_ingestor, ingest_copy_in_worker, start_worker_pool

SKIPPED_NAMES = frozenset({"DICOMDIR"})  # media directories index files; they are not instances
MAX_INLINE_THREADS = 4  # enough to overlap one file's fsync and commit with another's parse (GIL)
IN_FLIGHT_PER_JOB = 4  # files handed out ahead per thread or process: busy lanes, bounded memory


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


def _ignore(_event: ImportEvent) -> None:
    pass


def run_import(
    settings: Settings,
    paths: Sequence[Path],
    *,
    jobs: int,
    on_event: Callable[[ImportEvent], None] = _ignore,
) -> ImportSummary:
    """Import every file under `paths`, reporting each step to `on_event`; return the summary.

    `on_event` is called from this thread only, in order: phases, `FilesFound`, one `FileDone` per
    file (in completion order, not path order).
    """
    on_event(Phase("checking the index"))
    engine = create_index_engine(settings.resolved_database_url)
    try:
        prepare_index(engine, settings)  # migrate (embedded default) or check the schema, once
    finally:
        engine.dispose()
    on_event(Phase("finding files"))
    files = list(iter_files(paths))
    on_event(FilesFound(len(files)))
    summary = ImportSummary(total=len(files))
    target = IngestTarget.from_settings(settings)
    lanes = _Lanes(target, jobs, inline_bytes=_inline_bytes(settings, target), on_event=on_event)
    try:
        for done in lanes.ingest(files):
            summary.count(done)
            on_event(done)
    finally:
        lanes.close()
    return summary


def _inline_bytes(settings: Settings, target: IngestTarget) -> int:
    """The largest file stored in this process; none while ingest converts pixels (codec work)."""
    return settings.ingest_inline_kb * 1024 if target.storage_syntax is None else 0


class _Lanes:
    """Hands files to this process's threads (small ones) or to worker processes (started on the
    first large one), a bounded number ahead, and yields each outcome as it completes."""

    def __init__(
        self, target: IngestTarget, jobs: int, *, inline_bytes: int, on_event: Callable[[ImportEvent], None]
    ) -> None:
        self.target = target
        self.jobs = max(1, jobs)
        self.inline_bytes = inline_bytes
        self.batch_id = uuid.uuid4().hex
        self.on_event = on_event
        self.threads = ThreadPoolExecutor(min(self.jobs, MAX_INLINE_THREADS), thread_name_prefix="import")
        self.processes: Executor | None = None

    def ingest(self, files: Sequence[Path]) -> Iterator[FileDone]:
        pending: set[Future[tuple[Path, int, IngestResult]]] = set()
        window = self.jobs * IN_FLIGHT_PER_JOB
        for path in files:
            if len(pending) >= window:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (FileDone(*future.result()) for future in finished)
            pending.add(self._lane(path).submit(ingest_copy_in_worker, self.target, path, self.batch_id))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (FileDone(*future.result()) for future in finished)

    def _lane(self, path: Path) -> Executor:
        if self._fits_inline(path):
            return self.threads
        if self.processes is None:
            self.on_event(Phase("starting worker processes"))
            self.processes = start_worker_pool(self.jobs)
        return self.processes

    def _fits_inline(self, path: Path) -> bool:
        if self.inline_bytes <= 0:
            return False
        try:
            return path.stat().st_size <= self.inline_bytes
        except OSError:
            return True  # unreadable: the copy reports it the same way wherever it runs

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        if self.processes is not None:
            self.processes.shutdown(wait=True, cancel_futures=True)
        close_ingestor(self.target)
