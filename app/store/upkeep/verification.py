"""Fixity checks: re-read stored files and compare them with the size and SHA-256 recorded at ingest.

What a check finds for an instance (`Status`):
- intact: the size and digest recorded (an instance stored before Fovea recorded digests gets its
  digest recorded now, its size being right);
- corrupt: another size or another digest, or the store could not read the bytes (a media error);
- missing: no blob under its key (nor, for a deflated instance, its inflated copy);
- unreadable: the blob store failed (an outage): reported, not flagged, tried again next time.
Across the whole store it also finds orphaned blobs, which no instance refers to (`fovea gc` removes
them; the same rule as `garbage.find_orphans`).

Corrupt and missing instances are flagged in the index (`instance.fixity_problem`) and WADO-RS answers
410 Gone for them rather than bad bytes. A check that finds the file intact again (restored from a
backup) clears the flag; storing the instance again replaces the row, and the flag with it. Only an
inflated copy's presence is checked: no digest of it is recorded.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, func, nulls_first, or_, select, update

from app.store.infra.blobs import BlobNotFound, BlobStore, BlobStoreError
from app.store.infra.db import write_serializer_for
from app.store.tables import Instance, Series, Study

PAGE = 500
_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


class Status(StrEnum):
    INTACT = "intact"
    CORRUPT = "corrupt"
    MISSING = "missing"
    UNREADABLE = "unreadable"
    ORPHANED = "orphaned"


FLAGGED = frozenset({Status.CORRUPT, Status.MISSING})  # what is written into the index


@dataclass(frozen=True, slots=True)
class Candidate:
    """An instance to check, with what the index recorded about its file."""

    pk: int
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    blob_key: str
    data_blob_key: str | None  # an inflated copy, when the stored file is deflated
    size: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    """What checking one instance (or, for an orphan, one blob) found."""

    status: Status
    blob_key: str
    reason: str = ""
    candidate: Candidate | None = None  # None for an orphan
    size: int | None = None  # as found
    sha256: str | None = None  # as found (None: not read to the end)

    @property
    def records_digest(self) -> bool:
        """An intact file of an instance stored before digests were recorded: its digest is kept now."""
        return self.status is Status.INTACT and self.candidate is not None and self.candidate.sha256 is None

    def as_dict(self) -> dict[str, Any]:
        """The JSON line `fovea verify` prints for a problem."""
        line: dict[str, Any] = {"status": self.status.value, "blob": self.blob_key}
        if self.candidate is not None:
            line |= {
                "study": self.candidate.study_instance_uid,
                "series": self.candidate.series_instance_uid,
                "instance": self.candidate.sop_instance_uid,
                "recorded_size": self.candidate.size,
                "recorded_sha256": self.candidate.sha256,
            }
        line |= {"size": self.size, "sha256": self.sha256, "reason": self.reason}
        return line


@dataclass(frozen=True, slots=True)
class Selection:
    """Which instances a check reads: a study's, those stored since a time, a random sample."""

    study_instance_uid: str | None = None
    since: datetime | None = None  # stored (created) at or after
    sample_percent: float | None = None  # each instance chosen with this chance

    @property
    def is_whole_store(self) -> bool:
        """Only a check of everything may call a blob orphaned."""
        return self.study_instance_uid is None and self.since is None and self.sample_percent is None


@dataclass
class Tally:
    """What a check found so far, by status, and how much it read."""

    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))
    bytes_read: int = 0
    digests_recorded: int = 0

    def add(self, finding: Finding) -> None:
        self.counts[finding.status] += 1
        self.digests_recorded += finding.records_digest

    @property
    def checked(self) -> int:
        return sum(n for status, n in self.counts.items() if status is not Status.ORPHANED)

    @property
    def problems(self) -> int:
        return sum(n for status, n in self.counts.items() if status is not Status.INTACT)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "summary",
            "checked": self.checked,
            "bytes_read": self.bytes_read,
            **{status.value: n for status, n in self.counts.items()},
            "digests_recorded": self.digests_recorded,
            "problems": self.problems,
        }


_CANDIDATE_COLUMNS = (
    Instance.pk,
    Study.study_instance_uid,
    Series.series_instance_uid,
    Instance.sop_instance_uid,
    Instance.blob_key,
    Instance.data_blob_key,
    Instance.blob_size,
    Instance.sha256,
)


def _selected(query: _Query, selection: Selection) -> _Query:
    query = query.join(Series, Series.pk == Instance.series_pk).join(Study, Study.pk == Series.study_pk)
    if selection.study_instance_uid is not None:
        query = query.where(Study.study_instance_uid == selection.study_instance_uid)
    if selection.since is not None:
        query = query.where(Instance.created_at >= selection.since)
    return query


def selection_size(engine: Engine, selection: Selection) -> tuple[int, int]:
    """How many instances, and bytes, the selection holds before sampling."""
    query = _selected(select(func.count(Instance.pk), func.sum(Instance.blob_size)), selection)
    with engine.connect() as connection:
        count, size = connection.execute(query).one()
    return int(count), int(size or 0)


def _candidate(row: Any) -> Candidate:
    return Candidate(*row)


def iter_selected(
    engine: Engine, selection: Selection, *, chance: Callable[[], float] = random.random
) -> Iterator[list[Candidate]]:
    """The selected instances in pages, by primary key (a short read of the index per page)."""
    after = -1
    while True:
        query = _selected(select(*_CANDIDATE_COLUMNS), selection)
        query = query.where(Instance.pk > after).order_by(Instance.pk).limit(PAGE)
        with engine.connect() as connection:
            page = [_candidate(row) for row in connection.execute(query)]
        if not page:
            return
        after = page[-1].pk
        if selection.sample_percent is not None:
            page = [c for c in page if chance() * 100 < selection.sample_percent]
        if page:
            yield page


def due_for_verification(engine: Engine, verified_before: datetime, limit: int) -> list[Candidate]:
    """Up to `limit` instances never verified, or last verified before `verified_before`; oldest first."""
    query = (
        _selected(select(*_CANDIDATE_COLUMNS), Selection())
        .where(or_(Instance.verified_at.is_(None), Instance.verified_at < verified_before))
        .order_by(nulls_first(Instance.verified_at), Instance.pk)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [_candidate(row) for row in connection.execute(query)]


def check_instance(
    blobs: BlobStore, candidate: Candidate, on_read: Callable[[int], None] = lambda _n: None
) -> Finding:
    """Read the instance's file to the end and compare it with the record; `on_read(n)` per chunk."""
    key = candidate.blob_key

    def found(status: Status, reason: str, size: int | None = None, digest: str | None = None) -> Finding:
        return Finding(status, key, reason, candidate, size, digest)

    try:
        size = blobs.size(key)
    except BlobNotFound:
        return found(Status.MISSING, "no stored file under its key")
    except BlobStoreError as exc:
        return found(Status.UNREADABLE, str(exc))
    if size != candidate.size:
        return found(Status.CORRUPT, f"{size} bytes stored, {candidate.size} recorded", size)
    digest = hashlib.sha256()
    read = 0
    try:
        for chunk in blobs.iter_range(key, 0, size):
            digest.update(chunk)
            read += len(chunk)
            on_read(len(chunk))
    except BlobNotFound:
        return found(Status.MISSING, "the stored file went away while it was read")
    except BlobStoreError as exc:
        return found(Status.UNREADABLE, str(exc))
    except OSError as exc:  # a media error reading a local file: its bytes are lost
        return found(Status.CORRUPT, f"reading failed: {exc}", size)
    if read != size:
        return found(Status.CORRUPT, f"{read} bytes could be read, {size} stored", read)
    sha256 = digest.hexdigest()
    if candidate.sha256 is not None and sha256 != candidate.sha256:
        return found(Status.CORRUPT, "SHA-256 differs from the one recorded at ingest", size, sha256)
    if candidate.data_blob_key and candidate.data_blob_key != key:
        try:
            blobs.size(candidate.data_blob_key)
        except BlobNotFound:
            return Finding(Status.MISSING, candidate.data_blob_key, "the inflated copy is missing", candidate)
        except BlobStoreError as exc:
            return found(Status.UNREADABLE, str(exc))
    return found(Status.INTACT, "", size, sha256)


def record_findings(
    engine: Engine, findings: Iterable[Finding], now: datetime | None = None
) -> list[Finding]:
    """Write what was found into the index: the problem (or none) and the time, and a missing digest.

    Returns the findings still true of the index: an instance replaced or deleted while it was read is
    left out (what was read is no longer what is served). Unreadable instances are not written.
    """
    now = now or datetime.now(UTC)
    current: list[Finding] = []
    with write_serializer_for(engine)(), engine.begin() as connection:
        for finding in findings:
            candidate = finding.candidate
            if candidate is None:
                current.append(finding)
                continue
            same_file = (Instance.pk == candidate.pk) & (Instance.blob_key == candidate.blob_key)
            if finding.status is Status.UNREADABLE:  # nothing learnt: only whether it is still current
                changed = len(connection.execute(select(Instance.pk).where(same_file)).all())
            else:
                values: dict[str, object] = {
                    "verified_at": now,
                    "fixity_problem": finding.status.value if finding.status in FLAGGED else None,
                }
                if finding.records_digest:
                    values["sha256"] = finding.sha256
                changed = connection.execute(update(Instance).where(same_file).values(**values)).rowcount
            if changed:
                current.append(finding)
    return current
