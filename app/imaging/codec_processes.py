"""Codec worker processes, each behind its own pair of pipes: the thread that needs a job run hands it over.

Why not `ProcessPoolExecutor`: its hand-off goes through two helper threads of the server (a queue
feeder that pickles and writes, a manager that reads results and completes futures), each one more
wake-up and GIL acquisition per job; on a busy server that cost about as much CPU per frame as a cheap
codec's whole work (bench/README.md, bench_transcode). Here the requesting thread pickles the job,
writes it to an idle worker's pipe and reads the answer itself, and pipes are widened to 1 MiB where
the kernel allows, so a frame crosses in one write instead of sixteen 64 KiB ones.

One worker per job, so what goes wrong stays with its job: a worker that dies (a segfault in native
code, the memory killer), runs past the time limit or runs out of memory is killed and replaced alone,
and jobs in other workers run on. `CodecPool` owns the policy (slots, limits, errors); this module
only starts, talks to and stops processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import multiprocessing
import pickle
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerProcess
from typing import Any

PIPE_BYTES = 1024 * 1024  # Linux's default ceiling for an unprivileged pipe (/proc/sys/fs/pipe-max-size)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
OUT_OF_BAND_BYTES = 64 * 1024  # a bytes value this large (a frame) crosses as itself, not inside a pickle


class WorkerDied(Exception):
    """The worker process ended (or its pipe broke) before it answered."""


class WorkerTimedOut(Exception):
    """The worker did not answer within the time given; it has been killed."""


def _widen(connection: Connection) -> None:
    # a lower pipe-max-size: the default 64 KiB still works, in more writes
    with contextlib.suppress(OSError):
        fcntl.fcntl(connection.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)


class _FramePickler(pickle.Pickler):
    """Pickles large bytes values out of band (PEP 574), so a frame is written to the pipe as is and
    read back as the bytes object itself, instead of being copied into and out of a pickle."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is bytes and len(obj) >= OUT_OF_BAND_BYTES:
            return bytes, (pickle.PickleBuffer(obj),)
        return NotImplemented


def send_message(connection: Connection, message: object) -> None:
    """`message` pickled, as one pipe message, followed by one message per large bytes value in it."""
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    stream.write(b"\0\0\0\0")  # room for the count of buffers, so the pickle is sent without a copy
    _FramePickler(stream, pickle.HIGHEST_PROTOCOL, buffer_callback=buffers.append).dump(message)
    view = stream.getbuffer()
    view[:4] = len(buffers).to_bytes(4, "little")
    connection.send_bytes(view)
    del view
    for buffer in buffers:
        connection.send_bytes(buffer.raw())


def receive_message(connection: Connection) -> Any:
    """What `send_message` sent; its large bytes values are the very objects read from the pipe."""
    head = connection.recv_bytes()
    buffers = [connection.recv_bytes() for _ in range(int.from_bytes(head[:4], "little"))]
    return pickle.loads(memoryview(head)[4:], buffers=buffers)


def serve_jobs(
    jobs: Connection, answers: Connection, initializer: Callable[..., None], initargs: Sequence[Any]
) -> None:
    """A worker process's life: run each job read from `jobs`, write its outcome to `answers`, until EOF.

    An outcome is `(True, value)` or `(False, exception)`; an exception or value that cannot be pickled
    comes back as a RuntimeError naming it, so the caller always gets an answer from a live worker.
    """
    initializer(*initargs)
    while True:
        try:
            request = receive_message(jobs)
        except (EOFError, OSError):  # the server closed the pool, or died
            return
        try:
            function, args, kwargs = request
            del request  # the frame is freed as soon as the job drops it
            outcome: tuple[bool, Any] = (True, function(*args, **kwargs))
        except BaseException as exc:  # every failure goes back to the caller
            outcome = (False, exc)
        args = kwargs = None
        try:
            send_message(answers, outcome)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            unsendable = RuntimeError(f"the codec job's outcome cannot be sent back: {exc!r}")
            send_message(answers, (False, unsendable))
        del outcome


class WorkerProcess:
    """One codec worker process and the two pipes to it; used by one job at a time."""

    def __init__(
        self,
        context: multiprocessing.context.ForkServerContext,
        initializer: Callable[..., None],
        initargs: Sequence[Any],
    ) -> None:
        their_jobs, self._jobs = context.Pipe(duplex=False)
        self._answers, their_answers = context.Pipe(duplex=False)
        _widen(self._jobs)
        _widen(self._answers)
        self.process: ForkServerProcess = context.Process(
            target=serve_jobs,
            args=(their_jobs, their_answers, initializer, tuple(initargs)),
            name="fovea-codec-worker",
            daemon=True,
        )
        self.process.start()
        their_jobs.close()  # the worker holds its ends: EOF reaches either side when the other goes
        their_answers.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def run(
        self, job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]], timeout: float | None
    ) -> tuple[bool, Any]:
        """Run `(function, args, kwargs)`; its outcome, `(True, value)` or `(False, exception)`.

        Raises `WorkerDied` when the worker ends first, `WorkerTimedOut` (the worker killed) after
        `timeout` seconds without an answer, and the pickling error of a job that cannot be sent.
        """
        try:
            send_message(self._jobs, job)
            if not self._answers.poll(timeout):
                self.kill()
                raise WorkerTimedOut
            outcome: tuple[bool, Any] = receive_message(self._answers)
        except (EOFError, OSError) as exc:
            raise WorkerDied(self._why_dead()) from exc
        return outcome

    def _why_dead(self) -> str:
        self.process.join(1)
        code = self.process.exitcode
        if code is None:
            return "its pipe broke"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self._close_pipes()

    def stop(self) -> None:
        """Ask the worker to end (EOF on its job pipe), killing it if it does not within a second."""
        self._close_pipes()
        self.process.join(1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def _close_pipes(self) -> None:
        self._jobs.close()
        self._answers.close()


class WorkerProcesses:
    """Up to `size` worker processes, started on first need; `checkout` hands an idle one to a job.

    The caller bounds concurrency (one slot per worker), so a checkout never finds every worker busy.
    """

    def __init__(
        self, size: int, preload: Sequence[str], initializer: Callable[..., None], initargs: Sequence[Any]
    ) -> None:
        self.size = size
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        self._initializer, self._initargs = initializer, tuple(initargs)
        self._idle: list[WorkerProcess] = []
        self._all: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._closed = False

    def checkout(self) -> WorkerProcess:
        """An idle live worker, else a fresh one (a worker that died while idle is dropped)."""
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the codec pool is closed")
                worker = self._idle.pop() if self._idle else None
                if worker is None and len(self._all) >= self.size:
                    raise RuntimeError("every codec worker process is in use")  # the slots prevent this
            if worker is None:
                return self._start()
            if worker.alive():
                return worker
            self.discard(worker)

    def _start(self) -> WorkerProcess:
        worker = WorkerProcess(self._context, self._initializer, self._initargs)
        with self._lock:
            self._all.add(worker)
            closed = self._closed
        if closed:
            self.discard(worker)
            raise RuntimeError("the codec pool is closed")
        return worker

    def checkin(self, worker: WorkerProcess) -> None:
        with self._lock:
            if not self._closed and worker in self._all:
                self._idle.append(worker)
                return
        worker.stop()

    def discard(self, worker: WorkerProcess) -> None:
        """Kill `worker` (stuck, dead or spoilt) and forget it: the next checkout starts a fresh one."""
        with self._lock:
            self._all.discard(worker)
        worker.kill()

    def pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._all if worker.pid is not None]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._all.difference_update(idle)
        for worker in idle:
            worker.stop()
