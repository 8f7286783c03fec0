"""Where codec work runs: threads for codecs that release the GIL, processes for those that do not.

Why: a transcode is 5 to 100 ms of CPU. Run in the request's own thread, 32 retrieval threads could
all be encoding at once (memory and thrashing), and codecs that hold the GIL would use one core
whatever the machine has. Both pools are sized to the cores (docs/architecture.md, "Principles"), so codec
work never has more runners than there are cores to run it.

Limits (`CodecLimits`), enforced here, where the codecs run:
- memory: each worker process gets an address-space limit (RLIMIT_AS), so a decoder asking for more
  fails inside the worker instead of taking the machine; `check_budget` refuses up front a frame
  whose decode needs more than that limit. A job that ran out of memory has its worker replaced.
- time: a job running longer than `timeout_s` is abandoned with `CodecTimeout`; in a process, its
  worker is killed and a fresh one takes its place. A thread cannot be killed: a stuck thread job
  keeps its thread and its slot (the codestream header check before every decode is what keeps a
  thread codec from being sent a frame that would run away). A job is handed over only when a
  worker is free, so the limit counts running time, not queueing; a job that finds no free worker
  within the limit fails with `CodecTimeout` too.

A job that kills its worker process (a segfault in a codec on a hostile frame) fails with
`CodecWorkerCrashed`; that worker is replaced, so one bad frame never stops transcoding for the rest
of the server's life. Each process job has a worker of its own (`codec_processes`), so jobs running
beside a crashed, stopped or spoilt worker are not touched.

Worker processes start on first use (most deployments serve what they store and never need them),
from a fork server that has already imported the codecs, so a worker starts in milliseconds and
never inherits a running server's threads or locks. The thread asking for a job writes it to a
worker's pipe and reads the answer itself: no helper thread stands in between.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from app.imaging.codec_processes import WorkerDied, WorkerProcess, WorkerProcesses, WorkerTimedOut
from app.log_setup import LoggingConfiguration, configure_worker_logging, logging_configuration
from app.worker_signals import ignore_interrupts

_P = ParamSpec("_P")
_T = TypeVar("_T")
_PRELOAD = ["app.imaging.frame_transcode", "app.imaging.timed_codecs"]
MIB = 1024 * 1024
# A decode holds the codec's output, its conversion to the frame's sample type and the bytes handed
# back: about three frames at once, beside the worker's own code and libraries.
DECODE_COPIES = 3
WORKER_BASELINE_BYTES = 512 * MIB  # address space of a worker before its job (measured: 180-330 MiB)


class CodecWorkerCrashed(RuntimeError):
    """A codec killed its worker process (a crash in native code, or the memory killer)."""


class CodecLimitExceeded(RuntimeError):
    """A codec job was stopped, or refused, by a limit of `CodecLimits`; the message says which."""


class CodecTimeout(CodecLimitExceeded):
    """A codec job ran longer than the time limit and was abandoned."""


class CodecOutOfMemory(CodecLimitExceeded):
    """A codec job needs, or asked for, more memory than a worker may have."""


@dataclass(frozen=True, slots=True)
class CodecLimits:
    """Per-job limits: 0 means none."""

    memory_bytes: int = 0  # address space of each worker process (RLIMIT_AS)
    timeout_s: float = 0.0  # wall-clock time of one job


class CodecPool:
    """Runs codec jobs in `workers` threads or `workers` processes; `run` blocks until the result."""

    def __init__(self, workers: int = 0, limits: CodecLimits | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.limits = limits or CodecLimits()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="fovea-codec")
        # one slot per worker: a job is handed over only when a worker is free to start it
        self._thread_slots = threading.BoundedSemaphore(self.workers)
        self._process_slots = threading.BoundedSemaphore(self.workers)
        self._processes: WorkerProcesses | None = None  # started on first use
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # worker processes replaced so far (crash, timeout, memory)
        # Imported here, in the server: a worker process unpickles this module for its initializer,
        # and starts faster without prometheus-client and SQLAlchemy.
        from app.metrics import CODEC_JOBS_WAITING, CODEC_WORKERS_BUSY

        self._waiting, self._busy = CODEC_JOBS_WAITING, CODEC_WORKERS_BUSY

    def check_budget(self, needed_bytes: int, what: str) -> None:
        """Refuse, before any work, a job that needs more memory than a worker may have."""
        limit = self.limits.memory_bytes
        if limit and needed_bytes + WORKER_BASELINE_BYTES > limit:
            raise CodecOutOfMemory(
                f"{what} needs about {needed_bytes // MIB} MiB, more than a codec worker may use "
                f"({limit // MIB} MiB with {WORKER_BASELINE_BYTES // MIB} MiB for the worker itself)"
            )

    # A ParamSpec admits no keyword-only parameter, so the flag stays first and positional.
    def run(self, in_process: bool, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:  # noqa: FBT001
        """`function(*args)` in a worker process when `in_process`, else in a worker thread.

        A job for a process must be a module-level function with picklable arguments and result.
        A job waits for a free worker first (at most the time limit), so the time limit counts its
        own running time, not its place in the queue.
        """
        slots = self._process_slots if in_process else self._thread_slots
        runner = "process" if in_process else "thread"
        waiting, busy = self._waiting.labels(runner), self._busy.labels(runner)
        waiting.inc()
        try:
            self._take(slots)
        finally:
            waiting.dec()
        busy.inc()
        if in_process:
            try:
                return self._run_in_process(function, args, kwargs)
            finally:
                slots.release()
                busy.dec()

        def free_slot(_: object) -> None:
            slots.release()
            busy.dec()

        try:
            future = self._threads.submit(function, *args, **kwargs)
        except BaseException:
            free_slot(None)
            raise
        future.add_done_callback(free_slot)  # a stuck thread keeps its slot, and counts as busy
        return self._wait(future)

    def _take(self, slots: threading.BoundedSemaphore) -> None:
        """Wait for a free worker: at most the time limit, else every worker is stuck or overloaded."""
        timeout = self.limits.timeout_s or None
        if not slots.acquire(timeout=timeout):
            raise CodecTimeout(f"every codec worker stayed busy for {timeout:g} s; try again later")

    def _wait(self, future: Future[_T]) -> _T:
        timeout = self.limits.timeout_s or None
        try:
            return future.result(timeout)
        except FutureTimeout as exc:
            raise CodecTimeout(f"the codec took longer than {timeout:g} s and was stopped") from exc
        except MemoryError as exc:
            raise self._out_of_memory() from exc

    def _run_in_process(
        self, function: Callable[..., _T], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> _T:
        """The job in an idle worker process (this thread waits for it); a worker that dies, runs past the
        time limit or runs out of memory is killed and replaced, and the job fails with the reason."""
        workers = self._worker_processes()
        worker = workers.checkout()
        timeout = self.limits.timeout_s or None
        try:
            succeeded, outcome = worker.run((function, args, kwargs), timeout)
        except WorkerTimedOut as exc:
            self._replace(worker)
            raise CodecTimeout(f"the codec took longer than {timeout:g} s and was stopped") from exc
        except WorkerDied as exc:
            self._replace(worker)
            raise CodecWorkerCrashed(f"a codec worker process died: {exc}") from exc
        except BaseException:  # interrupted while the job runs: its worker cannot be trusted to be idle
            self._replace(worker)
            raise
        if not succeeded and isinstance(outcome, MemoryError):
            self._replace(worker)  # its heap may be left fragmented: start afresh
            raise self._out_of_memory() from outcome
        workers.checkin(worker)
        if not succeeded:
            raise outcome
        result: _T = outcome
        return result

    def _out_of_memory(self) -> CodecOutOfMemory:
        limit = self.limits.memory_bytes
        return CodecOutOfMemory(
            f"the codec ran out of memory ({limit // MIB} MiB per worker)" if limit else "out of memory"
        )

    def _worker_processes(self) -> WorkerProcesses:
        with self._lock:
            if self._closed:
                raise RuntimeError("the codec pool is closed")
            if self._processes is None:
                self._processes = WorkerProcesses(
                    self.workers,
                    _PRELOAD,
                    start_codec_worker,
                    (self.limits.memory_bytes, logging_configuration()),
                )
            return self._processes

    def _replace(self, worker: WorkerProcess) -> None:
        """Kill `worker` (dead, stuck or spoilt); the next job that needs one starts a fresh process."""
        with self._lock:
            self.replaced += 1
            processes = self._processes
        if processes is not None:
            processes.discard(worker)
        else:  # pragma: no cover - the pool closed while the job ran
            worker.kill()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            processes, self._processes = self._processes, None
        self._threads.shutdown(wait=False, cancel_futures=True)
        if processes is not None:
            processes.close()


def start_codec_worker(limit_bytes: int, logging_settings: LoggingConfiguration | None = None) -> None:
    """Worker initializer: SIGINT is left to the server process; the address space is capped; records
    and warnings are logged in the server's format."""
    ignore_interrupts()
    configure_worker_logging(logging_settings)
    limit_address_space(limit_bytes)


def limit_address_space(limit_bytes: int) -> None:
    """Worker initializer: cap this process's address space, so a runaway decoder gets MemoryError
    (or dies) instead of taking the machine's memory."""
    if limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
