"""`fovea verify`: check the selected instances' files, print problems as JSON lines, report progress.

stdout carries only JSON lines (one per problem, then a summary line), so it can be piped into `jq` or
kept as evidence. Progress goes to a callback as plain events; the command line draws them on stderr
(app/cli_progress.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import Engine

from app.store.infra.blobs import BlobStore
from app.store.infra.throttle import ByteRateLimit
from app.store.upkeep.garbage import find_orphans
from app.store.upkeep.verification import (
    Finding,
    Selection,
    Status,
    Tally,
    check_instance,
    iter_selected,
    record_findings,
    selection_size,
)

FLUSH_EVERY = 100  # findings written to the index per transaction


@dataclass(frozen=True, slots=True)
class VerifyStarted:
    """About how many instances and bytes the run will read (a sample's share of the selection)."""

    instances: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class BytesRead:
    count: int


@dataclass(frozen=True, slots=True)
class InstanceChecked:
    done: int  # instances checked so far


@dataclass(frozen=True, slots=True)
class VerifyFinished:
    instances: int
    bytes_read: int


VerifyEvent = VerifyStarted | BytesRead | InstanceChecked | VerifyFinished


def _ignore(_event: VerifyEvent) -> None:
    pass


def run_verify(
    engine: Engine,
    blobs: BlobStore,
    selection: Selection,
    *,
    orphan_grace_s: float,
    bytes_per_s: float = 0,
    emit: Callable[[str], None] = print,
    on_event: Callable[[VerifyEvent], None] = _ignore,
) -> Tally:
    """Check every selected instance (and, for the whole store, look for orphans); return the tally."""
    tally = Tally()
    limit = ByteRateLimit(bytes_per_s)
    count, size = selection_size(engine, selection)
    share = (selection.sample_percent or 100) / 100
    on_event(VerifyStarted(instances=round(count * share), total_bytes=round(size * share)))

    def report(findings: list[Finding]) -> None:
        for finding in record_findings(engine, findings):
            tally.add(finding)
            if finding.status is not Status.INTACT:
                emit(orjson.dumps(finding.as_dict()).decode())

    def read(n: int) -> None:
        tally.bytes_read += n
        on_event(BytesRead(n))
        limit.consumed(n)

    pending: list[Finding] = []
    done = 0
    for page in iter_selected(engine, selection):
        for candidate in page:
            pending.append(check_instance(blobs, candidate, read))
            done += 1
            on_event(InstanceChecked(done))
            if len(pending) >= FLUSH_EVERY:
                report(pending)
                pending = []
    report(pending)
    on_event(VerifyFinished(instances=done, bytes_read=tally.bytes_read))
    if selection.is_whole_store:
        older_than = datetime.now(UTC) - timedelta(seconds=orphan_grace_s)
        for blob in find_orphans(engine, blobs, older_than=older_than):
            finding = Finding(Status.ORPHANED, blob.key, "no instance refers to it", size=blob.size)
            tally.add(finding)
            emit(orjson.dumps(finding.as_dict()).decode())
    emit(orjson.dumps(tally.as_dict()).decode())
    return tally


def summary_lines(tally: Tally) -> list[str]:
    """The readable summary: `1,204 instances checked (3.1 GB read): 1,202 intact, 1 corrupt, ...`."""
    counts = ", ".join(f"{n:,} {status.value}" for status, n in tally.counts.items())
    lines = [f"{tally.checked:,} instances checked ({tally.bytes_read:,} bytes read): {counts}"]
    if tally.digests_recorded:
        lines.append(f"{tally.digests_recorded:,} digests recorded for instances stored without one")
    if tally.counts[Status.ORPHANED]:
        lines.append("orphaned blobs are removed by `fovea gc` once older than FOVEA_ORPHAN_GRACE_S")
    if tally.counts[Status.CORRUPT] or tally.counts[Status.MISSING]:
        lines.append(
            "corrupt and missing instances are flagged and answered 410 Gone: store them again, "
            "or restore their files and run `fovea verify` again"
        )
    return lines
