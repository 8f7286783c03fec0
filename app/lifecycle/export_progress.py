"""The export's progress bar on stderr: instances' stored bytes done, rate and time left (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


@contextmanager
def export_progress(console: Console, total_bytes: int) -> Iterator[Callable[[int], None]]:
    """A bar over `total_bytes` of stored instances; yields the function that advances it."""
    columns = (
        TextColumn("[bold]exporting"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("export", total=total_bytes)
        yield lambda done: progress.advance(task, done)
