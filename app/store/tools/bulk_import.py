"""`fovea import`: walk folders and store every file through the same ingest pipeline as STOW-RS.

The originals are never moved: each file is copied into the store's spool folder, and that copy is
what ingest consumes. One run is one batch: a SOP Instance UID found twice in it is reported, not
replaced. Small files (FOVEA_INGEST_INLINE_KB, as for STOW-RS) are stored by threads of this process,
the others by worker processes (store/write/ingest_pool.py) started only once such a file comes up: their
start costs seconds, which a run of small files never pays (unless it is long enough, on more cores
than the threads can use, for the processes to share it: `_Lanes`). Nothing here draws on the terminal: the
run reports `ImportEvent`s to a callback, and the command line renders them (app/cli_progress.py).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from app.store.infra.db import create_index_engine, prepare_index
from app.store.tools.import_events import FileDone, FilesFound, ImportEvent, ImportSummary, Phase
from app.store.write.ingest import IngestResult
from app.store.write.ingest_pool import IngestTarget, close_ingestor, ingest_copy_in_worker, start_worker_pool

SKIPPED_NAMES = frozenset({"DICOMDIR"})  # media directories index files; they are not instances
MAX_INLINE_THREADS = 4  # enough to overlap one file's fsync and commit with another's parse (GIL)
IN_FLIGHT_PER_JOB = 4  # files handed out ahead per thread or process: busy lanes, bounded memory
FILES_PER_EXTRA_JOB = 100  # a run this long per job pays for starting worker processes beside the threads


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
    target: IngestTarget,
    paths: Sequence[Path],
    *,
    jobs: int,
    inline_bytes: int,
    auto_migrate: bool,
    on_event: Callable[[ImportEvent], None] = _ignore,
) -> ImportSummary:
    """Import every file under `paths`, reporting each step to `on_event`; return the summary.

    Files up to `inline_bytes` are stored in this process's threads, larger ones by `jobs` worker
    processes; `auto_migrate` says whether an out-of-date index is migrated first or refused.

    `on_event` is called from this thread only, in order: phases, `FilesFound`, one `FileDone` per
    file (in completion order, not path order).
    """
    on_event(Phase("checking the index"))
    engine = create_index_engine(target.database_url)
    try:
        prepare_index(engine, auto_migrate=auto_migrate)  # once, before any worker opens the index
    finally:
        engine.dispose()
    on_event(Phase("finding files"))
    files = list(iter_files(paths))
    on_event(FilesFound(len(files)))
    summary = ImportSummary(total=len(files))
    # While ingest converts pixels (codec work) every file goes to the workers.
    inline_bytes = inline_bytes if target.storage_syntax is None else 0
    lanes = _Lanes(target, jobs, inline_bytes=inline_bytes, on_event=on_event)
    try:
        for done in lanes.ingest(files):
            summary.count(done)
            on_event(done)
    finally:
        lanes.close()
    return summary


class _Lanes:
    """Hands files to this process's threads (small ones) or to worker processes, a bounded number
    ahead, and yields each outcome as it completes.

    The worker processes start on the first large file. On a machine with more cores than the threads
    can use, a run of many files also starts them in the background from the outset, and small files
    then go to whichever lane has less waiting: the threads store from the first moment, the processes
    add every core once they are up.
    """

    def __init__(
        self,
        target: IngestTarget,
        jobs: int,
        *,
        inline_bytes: int,
        on_event: Callable[[ImportEvent], None],
    ) -> None:
        self.target = target
        self.jobs = max(1, jobs)
        self.inline_bytes = inline_bytes
        self.batch_id = uuid.uuid4().hex
        self.on_event = on_event
        self.thread_count = min(self.jobs, MAX_INLINE_THREADS)
        self.threads = ThreadPoolExecutor(self.thread_count, thread_name_prefix="import")
        self.processes: Executor | None = None
        self._processes_lock = threading.Lock()
        self._processes_ready = threading.Event()  # started and every worker forked
        self._warming: threading.Thread | None = None

    def ingest(self, files: Sequence[Path]) -> Iterator[FileDone]:
        if (
            self.inline_bytes > 0
            and self.jobs > self.thread_count
            and len(files) >= FILES_PER_EXTRA_JOB * self.jobs
        ):
            self._warming = threading.Thread(target=self._warm_processes, name="import-workers", daemon=True)
            self._warming.start()
        lanes: dict[Future[tuple[Path, int, IngestResult]], Executor] = {}
        window = (self.thread_count + (self.jobs if self._warming else 0)) * IN_FLIGHT_PER_JOB
        for path in files:
            if len(lanes) >= window:
                yield from self._finished(lanes)
            lane = self._lane(path, Counter(lanes.values()))
            lanes[lane.submit(ingest_copy_in_worker, self.target, path, self.batch_id)] = lane
        while lanes:
            yield from self._finished(lanes)

    @staticmethod
    def _finished(lanes: dict[Future[tuple[Path, int, IngestResult]], Executor]) -> Iterator[FileDone]:
        finished, _ = wait(lanes, return_when=FIRST_COMPLETED)
        for future in finished:
            del lanes[future]
            yield FileDone(*future.result())

    def _lane(self, path: Path, waiting: Counter[Executor]) -> Executor:
        if not self._fits_inline(path):
            if self.processes is None:
                self.on_event(Phase("starting worker processes"))
            return self._start_processes()
        processes = self.processes if self._processes_ready.is_set() else None
        if (
            processes is not None
            and waiting[processes] / self.jobs < waiting[self.threads] / self.thread_count
        ):
            return processes
        return self.threads

    def _start_processes(self) -> Executor:
        with self._processes_lock:
            if self.processes is None:
                self.processes = start_worker_pool(self.jobs)
            return self.processes

    def _warm_processes(self) -> None:
        """Start the worker processes and fork every one (in a thread of its own: this takes seconds)."""
        try:
            pool = self._start_processes()
            for started in [pool.submit(os.getpid) for _ in range(self.jobs)]:
                started.result()
        except (OSError, RuntimeError, BrokenProcessPool):
            return  # the threads carry on alone; a large file will try the processes again
        self._processes_ready.set()

    def _fits_inline(self, path: Path) -> bool:
        if self.inline_bytes <= 0:
            return False
        try:
            return path.stat().st_size <= self.inline_bytes
        except OSError:
            return True  # unreadable: the copy reports it the same way wherever it runs

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        if self._warming is not None:
            self._warming.join()
        if self.processes is not None:
            self.processes.shutdown(wait=True, cancel_futures=True)
        close_ingestor(self.target)
