"""A client-side deadline for every PostgreSQL round trip: a connection that outlives it is cut.

Why: `statement_timeout` is enforced by the server, so it cannot help when the server, the network or
a pooler in between stops answering altogether: libpq then waits on its socket for ever, and so would
the request. The watchdog shuts the socket of a call that outlives its deadline; libpq wakes with
"server closed the connection", SQLAlchemy treats that as a disconnect and discards the connection,
and the request is answered 503 instead of hanging. Normally the server's own `statement_timeout`
(the same number of seconds, minus the grace below) fires first and the connection stays usable.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)
GRACE_S = 1.0  # the server's statement_timeout gets this long to answer before the socket is cut
_POLL_S = 0.1


class StatementWatchdog:
    """Shuts a socket whose watched call has not returned by its deadline (one thread per process)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[float, int]] = {}  # token -> (deadline, socket fd)
        self._next_token = 0
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, fd: int) -> Iterator[None]:
        with self._lock:
            self._next_token += 1
            token = self._next_token
            self._deadlines[token] = (time.monotonic() + self.timeout_s, fd)
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="fovea-db-watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(_POLL_S)
            now = time.monotonic()
            with self._lock:
                expired = [t for t, (deadline, _) in self._deadlines.items() if deadline <= now]
                for token in expired:
                    _, fd = self._deadlines.pop(token)
                    _shut(fd)


def _shut(fd: int) -> None:
    """Shut down the socket behind `fd` (its owner sees the connection closed; the fd stays its own)."""
    try:
        with socket.socket(fileno=socket.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        log.warning("database did not answer in time: connection cut")
    except OSError:  # already closed: nothing to cut
        pass


def watch_round_trips(engine: Engine, timeout_s: float) -> None:
    """Run every statement, commit, rollback and ping of `engine` under a watchdog of `timeout_s`.

    The dialect's `do_*` methods are the one place every round trip passes through (events miss
    commits, rollbacks and pool pings), so they are wrapped on this engine's dialect instance.
    """
    watchdog = StatementWatchdog(timeout_s)
    dialect: Any = engine.dialect

    def through_connection(method: Callable[..., Any]) -> Callable[..., Any]:
        def watched(dbapi_connection: Any, *args: Any, **kwargs: Any) -> Any:
            with watchdog.watching(dbapi_connection.fileno()):
                return method(dbapi_connection, *args, **kwargs)

        return watched

    def through_cursor(method: Callable[..., Any]) -> Callable[..., Any]:
        def watched(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            with watchdog.watching(cursor.connection.fileno()):
                return method(cursor, *args, **kwargs)

        return watched

    for name in ("do_commit", "do_rollback", "do_ping"):
        setattr(dialect, name, through_connection(getattr(dialect, name)))
    for name in ("do_execute", "do_execute_no_params", "do_executemany"):
        setattr(dialect, name, through_cursor(getattr(dialect, name)))
