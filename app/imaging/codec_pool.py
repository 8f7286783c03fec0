"""Where codec work runs: threads for codecs that release the GIL, processes for those that do not.

Why: a transcode is 5 to 100 ms of CPU. Run in the request's own thread, 32 retrieval threads could
all be encoding at once (memory and thrashing), and codecs that hold the GIL would use one core
whatever the machine has. Both pools are sized to the cores (ARCHITECTURE principle 5), so codec
work never has more runners than there are cores to run it.

A job that kills its worker process (a segfault in a codec on a hostile frame) fails with
`CodecWorkerCrashed`, as do the jobs in flight beside it; the pool is then replaced, so one bad frame
never stops transcoding for the rest of the server's life.

The process pool starts on first use (most deployments serve what they store and never need it),
from a fork server that has already imported the codecs, so a worker starts in milliseconds and
never inherits a running server's threads or locks.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from app.worker_signals import ignore_interrupts

_P = ParamSpec("_P")
_T = TypeVar("_T")
_PRELOAD = ["app.imaging.frame_transcode"]


class CodecWorkerCrashed(RuntimeError):
    """A codec killed its worker process (a crash in native code, or the memory killer)."""


class CodecPool:
    """Runs codec jobs in `workers` threads or `workers` processes; `run` blocks until the result."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="fovea-codec")
        self._processes: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def run(self, in_process: bool, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`function(*args)` in a worker process when `in_process`, else in a worker thread.

        A job for a process must be a module-level function with picklable arguments and result.
        """
        if not in_process:
            return self._threads.submit(function, *args, **kwargs).result()
        processes = self._process_pool()
        try:
            return processes.submit(function, *args, **kwargs).result()
        except BrokenProcessPool as exc:
            # every job in flight fails with it; later jobs get a fresh pool
            self._replace_broken(processes)
            raise CodecWorkerCrashed(f"a codec worker process died: {exc}") from exc

    def _process_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the codec pool is closed")
            if self._processes is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(_PRELOAD)
                self._processes = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=ignore_interrupts
                )
            return self._processes

    def _replace_broken(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._processes is broken:
                self._processes = None
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            processes, self._processes = self._processes, None
        self._threads.shutdown(wait=False, cancel_futures=True)
        if processes is not None:
            processes.shutdown(wait=True, cancel_futures=True)
