"""What `fovea import`, `fovea verify` and `fovea transcode` show on stderr, from the plain events store/
reports.

`fovea import`: a live line from the first moment, then a summary table. store/tools/bulk_import.py reports
plain events; this module alone draws them (rich). The line names the
step under way while nothing is stored yet (checking the index, finding files, starting worker
processes), then counts files with the current rate: files over the last few seconds, so a slow
start or a slow stretch does not weigh on the figure for the rest of the run.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from app.store.tools.import_events import FileDone, FilesFound, ImportEvent, ImportSummary, Phase

if TYPE_CHECKING:
    from app.store.tools.batch_transcode import TranscodeEvent
    from app.store.tools.verify_run import VerifyEvent

RATE_WINDOW_S = 5.0
MIN_RATE_SPAN_S = 1.0


class SlidingRate:
    """Events per second over the last `window_s` seconds (or since the first event, if sooner).

    Added to by the import's thread, read by rich's refresh thread: hence the lock.
    """

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._started: float | None = None
        self._lock = threading.Lock()

    def add(self, now: float) -> None:
        with self._lock:
            if self._started is None:
                self._started = now
            self._times.append(now)
            while self._times[0] < now - self.window_s:
                self._times.popleft()

    def per_second(self, now: float) -> float:
        with self._lock:
            if self._started is None:
                return 0.0
            # at least a second: two files a millisecond apart are not a rate of 2,000 a second
            span = min(self.window_s, max(now - self._started, MIN_RATE_SPAN_S))
            recent = sum(1 for moment in self._times if moment >= now - self.window_s)
        return recent / span if span > 0 else 0.0


class CurrentRateColumn(ProgressColumn):
    """Files per second now, worked out at each refresh, so a stall shows as the rate falling."""

    def __init__(self, rate: SlidingRate) -> None:
        super().__init__()
        self.rate = rate

    def render(self, task: Task) -> Text:  # noqa: ARG002 (rich's ProgressColumn.render signature)
        return Text(f"{self.rate.per_second(time.monotonic()):.1f} files/s")


class ImportProgress:
    """The live import line: a spinner and the current step, then files done out of the total."""

    def __init__(self, console: Console) -> None:
        self.rate = SlidingRate()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            CurrentRateColumn(self.rate),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID | None = None

    def __call__(self, event: ImportEvent) -> None:
        if self.task is None:
            raise RuntimeError("the import progress is not started")
        if isinstance(event, Phase):
            self.progress.update(self.task, description=event.description)
            self.progress.refresh()  # shown now, not at the next tick: the step may be long
        elif isinstance(event, FilesFound):
            self.progress.update(self.task, total=event.total, description="importing")
            self.progress.refresh()
        elif isinstance(event, FileDone):
            self.rate.add(time.monotonic())
            self.progress.update(self.task, advance=1, description="importing")

    def __enter__(self) -> ImportProgress:
        self.progress.start()  # draws the first line at once
        self.task = self.progress.add_task("starting", total=None)
        self.progress.refresh()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.stop()


def print_import_summary(console: Console, summary: ImportSummary) -> None:
    """Files per outcome, then every file that was not stored with the reason."""
    from app.store.write.ingest import Outcome  # loaded by the import itself by now

    table = Table(title=f"fovea import: {summary.total} files")
    table.add_column("outcome")
    table.add_column("files", justify="right")
    for outcome in Outcome:
        table.add_row(outcome.value, str(summary.outcomes.get(outcome.value, 0)))
    console.print(table)
    if summary.failed:
        failures = Table(title="failed files")
        failures.add_column("file")
        failures.add_column("reason")
        for path, reason in sorted(summary.failed):  # files finish in any order; listed by path
            failures.add_row(str(path), reason)
        console.print(failures)


class VerifyProgress:
    """`fovea verify`'s bar: bytes read of the estimate, rate, time left, and instances checked."""

    def __init__(self, console: Console) -> None:
        columns = (
            TextColumn("verify {task.fields[instances]} instances"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        # stdout stays the command's (JSON lines), also while the bar is drawn on a terminal.
        self.progress = Progress(*columns, console=console, redirect_stdout=False)
        self.task: TaskID | None = None
        self.expected = 0

    def __call__(self, event: VerifyEvent) -> None:
        from app.store.tools.verify_run import BytesRead, InstanceChecked, VerifyFinished, VerifyStarted

        if self.task is None:
            raise RuntimeError("the verify progress is not started")
        if isinstance(event, VerifyStarted):
            self.expected = event.instances
            self.progress.update(
                self.task, total=event.total_bytes or None, instances=f"0/~{event.instances}"
            )
        elif isinstance(event, BytesRead):
            self.progress.advance(self.task, event.count)
        elif isinstance(event, InstanceChecked):
            self.progress.update(self.task, instances=f"{event.done}/~{self.expected}")
        elif isinstance(event, VerifyFinished):
            self.progress.update(
                self.task, total=event.bytes_read, completed=event.bytes_read, instances=event.instances
            )

    def __enter__(self) -> VerifyProgress:
        self.progress.start()
        self.task = self.progress.add_task("verify", total=None, instances="0")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.stop()


def transcode_report(event: TranscodeEvent) -> None:
    """One stderr line per file `fovea transcode` did not convert; converted files are only counted."""
    from app.store.tools.batch_transcode import Failed, Skipped  # not for `fovea import`: codec modules

    if isinstance(event, Skipped):
        print(f"skipped {event.source}: {event.output} exists (use --overwrite)", file=sys.stderr)
    elif isinstance(event, Failed):
        print(f"failed {event.source}: {event.reason}", file=sys.stderr)
