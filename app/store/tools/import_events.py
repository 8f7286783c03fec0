"""What a `fovea import` run reports as it goes, and its tally: plain values, no terminal.

Why a module of its own: the command line starts drawing progress before the ingest modules (pydicom,
SQLAlchemy) are loaded, so the event types must not pull them in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.store.write.ingest import IngestResult


@dataclass(frozen=True, slots=True)
class Phase:
    """What the run is doing while no file is being stored: the wait has a name from the first moment."""

    description: str


@dataclass(frozen=True, slots=True)
class FilesFound:
    """The files to import are known: `total` of them."""

    total: int


@dataclass(frozen=True, slots=True)
class FileDone:
    """One file went through ingest (stored or not): its size and what became of it."""

    path: Path
    size: int
    result: IngestResult


ImportEvent = Phase | FilesFound | FileDone


@dataclass
class ImportSummary:
    """Files per outcome (`Outcome` values), the files not stored with the reason, bytes read."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    bytes_read: int = 0
    total: int = 0

    def count(self, done: FileDone) -> None:
        self.bytes_read += done.size
        self.outcomes[done.result.outcome.value] += 1
        if not done.result.stored:
            self.failed.append((done.path, done.result.message or str(done.result.problem)))
