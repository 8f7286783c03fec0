"""Group commit: the index writes of several instances share one transaction and one durable commit.

Why: with SQLite's `synchronous=FULL` every commit fsyncs the write-ahead log, and a PostgreSQL commit
waits for its WAL flush; for small instances that wait, not the statements, bounds the rate. Threads of
one process (the instances of one STOW-RS request, and concurrent requests) queue their writes here;
whichever thread gets the turn writes everything queued, each write in a SAVEPOINT of its own, and
commits once. Nothing is answered before that commit returns, so an acknowledged instance is as durable
as before.

Each instance stays independent (PS3.18: one failing instance does not fail the others): a write that
raises is rolled back to its savepoint and reports its own error; an IntegrityError (concurrent first
stores of one study racing on a unique key) is retried in a fresh savepoint. Should the shared commit
itself fail for a reason other than an outage, each write that had succeeded is tried again alone.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from app.store.infra.outages import INDEX_OUTAGES

T = TypeVar("T")
ATTEMPTS = 3  # tries of one write when it collides on a unique key
MAX_BATCH = 64  # writes per transaction: bounds how long one commit holds SQLite's write lock


@dataclass(eq=False, slots=True)
class IndexWrite(Generic[T]):
    """One instance's index write: `write` runs in the shared transaction; then `result` or `error`."""

    write: Callable[[Connection], T]
    exclusive: bool = False  # passed to `begin`: this write needs the index to itself (a rejection note)
    result: T | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Runs index writes from many threads in shared transactions (thread-safe; one per engine)."""

    def __init__(
        self,
        engine: Engine,
        serialized_writes: Callable[[], AbstractContextManager[None]],
        begin: Callable[[Connection, bool], None],
    ) -> None:
        """`serialized_writes` is held around each transaction (SQLite's writers take turns across
        processes); `begin(connection, exclusive)` runs first in each transaction."""
        self._engine = engine
        self._serialized_writes = serialized_writes
        self._begin = begin
        self._pending: deque[IndexWrite[Any]] = deque()
        self._pending_lock = threading.Lock()
        self._turn = threading.Lock()  # the thread writing a batch; the others wait for it here

    def run(self, writes: Sequence[IndexWrite[T]]) -> None:
        """Run `writes` (each in a transaction some thread commits); return once all are done."""
        with self._pending_lock:
            self._pending.extend(writes)
        while not all(write.done for write in writes):
            with self._turn:
                if all(write.done for write in writes):
                    break  # another thread committed them while this one waited for the turn
                batch = self._take()
                try:
                    self._commit(batch)
                finally:
                    for write in batch:  # whatever happened, no thread waits on them any longer
                        write.done = True

    def _take(self) -> list[IndexWrite[Any]]:
        with self._pending_lock:
            count = min(len(self._pending), MAX_BATCH)
            return [self._pending.popleft() for _ in range(count)]

    def _commit(self, batch: list[IndexWrite[Any]]) -> None:
        if len(batch) == 1:
            self._commit_alone(batch[0])
            return
        try:
            with self._transaction(exclusive=any(write.exclusive for write in batch)) as connection:
                _begin_for_savepoints(connection)
                for write in batch:
                    self._write_in_savepoint(connection, write)
        except INDEX_OUTAGES as exc:  # each alone would wait out the same timeouts
            for write in batch:
                write.result, write.error = None, exc
        except Exception:
            for write in batch:  # the commit failed: what had succeeded is tried alone
                if write.error is None:
                    write.result = None
                    self._commit_alone(write)

    def _commit_alone(self, write: IndexWrite[Any]) -> None:
        """One write in its own transaction, retried whole after a unique-key collision."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._transaction(exclusive=write.exclusive) as connection:
                    result = write.write(connection)
                write.result, write.error = result, None
                return
            except IntegrityError as exc:
                write.error = exc
                if attempt == ATTEMPTS:
                    return
            except Exception as exc:
                write.error = exc
                return

    def _write_in_savepoint(self, connection: Connection, write: IndexWrite[Any]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with connection.begin_nested():
                    result = write.write(connection)
                write.result, write.error = result, None
                return
            except INDEX_OUTAGES:
                raise  # the connection is gone: the whole transaction is
            except IntegrityError as exc:
                write.error = exc
                if attempt == ATTEMPTS:
                    return
            except Exception as exc:
                write.error = exc
                return

    @contextmanager
    def _transaction(self, *, exclusive: bool) -> Iterator[Connection]:
        with self._serialized_writes(), self._engine.begin() as connection:
            self._begin(connection, exclusive)
            yield connection


def _begin_for_savepoints(connection: Connection) -> None:
    """SQLite's Python driver opens a transaction only before a data change, so a SAVEPOINT issued
    first would open (and its RELEASE end) the transaction itself: BEGIN explicitly, so savepoints nest
    inside the one transaction that commits. PostgreSQL needs nothing."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
