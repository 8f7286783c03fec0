"""The log writer thread: every record written, in order, in batches, whatever a record holds."""

from __future__ import annotations

import io
import logging
import time

from app.log_setup import BATCH_WINDOW_S, BatchWriter


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def written_lines(stream: io.StringIO, count: int) -> list[str]:
    """The stream's lines once `count` are there (the writer thread may be slow on a busy machine)."""
    deadline = time.monotonic() + 30
    while len(stream.getvalue().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(BATCH_WINDOW_S)
    return stream.getvalue().splitlines()


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("fovea.test", logging.INFO, __file__, 1, message, args, None)


def test_a_burst_of_records_is_written_in_order_with_one_write() -> None:
    stream = CountedWrites()
    writer = BatchWriter(logging.Formatter("%(message)s"), stream)
    for number in range(200):
        writer.put(record("line %d", number))
    assert written_lines(stream, 200) == [f"line {n}" for n in range(200)]
    # Put within a few microseconds, they share a batch (a pre-empted test thread could split it).
    assert stream.writes <= 3
    writer.stop()


def test_stopping_writes_what_is_queued_at_once() -> None:
    stream = CountedWrites()
    writer = BatchWriter(logging.Formatter("%(message)s"), stream)
    writer.put(record("last words"))
    writer.stop()
    assert stream.getvalue() == "last words\n"


def test_a_record_that_cannot_be_formatted_does_not_stop_the_others() -> None:
    stream = CountedWrites()
    writer = BatchWriter(logging.Formatter("%(message)s"), stream)
    writer.put(record("%d items", "not a number"))
    writer.put(record("next"))
    writer.stop()
    assert stream.getvalue().splitlines() == [
        "unformattable log record from fovea.test: '%d items'",
        "next",
    ]


def test_records_after_a_batch_start_the_next_one() -> None:
    stream = CountedWrites()
    writer = BatchWriter(logging.Formatter("%(message)s"), stream)
    writer.put(record("first"))
    assert written_lines(stream, 1) == ["first"]
    writer.put(record("second"))
    assert written_lines(stream, 2) == ["first", "second"]
    assert stream.writes == 2
    writer.stop()
