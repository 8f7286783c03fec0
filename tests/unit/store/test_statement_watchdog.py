"""The client-side deadline that cuts a database connection whose server stopped answering."""

from __future__ import annotations

import socket
import threading

from app.store.infra.statement_watchdog import StatementWatchdog


def test_a_call_that_outlives_its_deadline_finds_its_socket_shut() -> None:
    ours, silent_server = socket.socketpair()  # the server end never writes: a stalled database
    watchdog = StatementWatchdog(timeout_s=0.3)
    received: list[bytes] = []

    def wait_for_an_answer() -> None:
        with watchdog.watching(ours.fileno()):
            received.append(ours.recv(10))  # blocks until the watchdog shuts the socket

    waiter = threading.Thread(target=wait_for_an_answer, daemon=True)
    waiter.start()
    waiter.join(timeout=10)  # generous: the deadline is 0.3 s

    assert not waiter.is_alive()
    assert received == [b""]  # end of stream: the caller sees the connection closed
    ours.close()
    silent_server.close()


def test_a_call_that_returns_in_time_leaves_its_socket_alone() -> None:
    ours, server = socket.socketpair()
    watchdog = StatementWatchdog(timeout_s=0.2)
    server.sendall(b"row")
    with watchdog.watching(ours.fileno()):
        assert ours.recv(10) == b"row"

    threading.Event().wait(0.6)  # past the deadline the call would have had
    server.sendall(b"next")
    assert ours.recv(10) == b"next"  # still connected
    ours.close()
    server.close()
