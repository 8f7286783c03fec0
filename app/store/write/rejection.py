"""IHE IOCM rejection notes: recognising one at ingest, recording what it rejects, and the re-store check.

Why at ingest, in the note's own index transaction: the note and the hiding of what it names commit
together, so no reader ever sees the note without its effect (or the reverse). A rejected SOP Instance
UID is kept in `rejected_instance` whether or not the instance is stored (a note may come first, and the
rejection must outlive a deletion); the instance row carries a copy (`instance.rejected`) so that every
search and read filters without a join (app/store/read/visibility.py).

The note is read from its DICOM JSON (sequences are always metadata, never bulk data), so the parser
needs to know nothing about Key Object Selection Documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Table, delete, select, text, update

from app.store.tables import Instance, RejectedInstance
from app.store.write.parse import ParsedInstance

KEY_OBJECT_SELECTION_DOCUMENT = "1.2.840.10008.5.1.4.1.1.88.59"
DCM = "DCM"
# IHE RAD TF-3 (IOCM) Key Object Selection titles that reject (PS3.16 CID 7011), Code Value -> meaning.
REJECTION_CODES: dict[str, str] = {
    "113001": "Rejected for Quality Reasons",
    "113037": "Rejected for Patient Safety Reasons",
    "113038": "Incorrect Modality Worklist Entry",
    "113039": "Data Retention Policy Expired",
}

# DICOM JSON keys (PS3.6 tags) of the attributes a rejection note is read from.
_CONCEPT_NAME_CODE_SEQUENCE = "0040A043"
_CODE_VALUE, _CODING_SCHEME = "00080100", "00080102"
_EVIDENCE_SEQUENCE = "0040A375"  # Current Requested Procedure Evidence Sequence
_STUDY_UID, _SERIES_UID = "0020000D", "0020000E"
_REFERENCED_SERIES_SEQUENCE, _REFERENCED_SOP_SEQUENCE = "00081115", "00081199"
_REFERENCED_SOP_INSTANCE_UID = "00081155"
_CHUNK = 500  # UIDs per IN (...) list: well under every database's parameter limit
_REJECTION_LOCK_KEY = 0x464F5645  # PostgreSQL advisory lock of rejections ("FOVE"); any constant would do


@dataclass(frozen=True, slots=True)
class RejectedReference:
    """One instance a rejection note names, with the study and series the note files it under."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class RejectionNote:
    sop_instance_uid: str  # the note's own
    reason_code: str  # a key of REJECTION_CODES
    references: tuple[RejectedReference, ...]

    @property
    def reason(self) -> str:
        return REJECTION_CODES[self.reason_code]


def rejection_note_of(parsed: ParsedInstance) -> RejectionNote | None:
    """The rejection note `parsed` is; None when it is not a Key Object Selection Document titled with
    a rejection code."""
    if parsed.sop_class_uid != KEY_OBJECT_SELECTION_DOCUMENT:
        return None
    dataset = orjson.loads(parsed.metadata_json)
    concept = _items(dataset, _CONCEPT_NAME_CODE_SEQUENCE)
    if not concept:
        return None
    code, scheme = _text(concept[0], _CODE_VALUE), _text(concept[0], _CODING_SCHEME)
    if scheme != DCM or code not in REJECTION_CODES:
        return None
    references: dict[str, RejectedReference] = {}
    for study in _items(dataset, _EVIDENCE_SEQUENCE):
        study_uid = _text(study, _STUDY_UID)
        for series in _items(study, _REFERENCED_SERIES_SEQUENCE):
            series_uid = _text(series, _SERIES_UID)
            for sop in _items(series, _REFERENCED_SOP_SEQUENCE):
                uid = _text(sop, _REFERENCED_SOP_INSTANCE_UID)
                if uid and uid != parsed.sop_instance_uid:  # a note never hides itself
                    references.setdefault(uid, RejectedReference(study_uid, series_uid, uid))
    return RejectionNote(parsed.sop_instance_uid, code, tuple(references.values()))


def _items(dataset: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = dataset.get(key, {}).get("Value", [])
    return [item for item in value if isinstance(item, dict)]


def _text(dataset: dict[str, Any], key: str) -> str:
    value = dataset.get(key, {}).get("Value", [])
    return str(value[0]).strip() if value and value[0] is not None else ""


_rejected = cast(Table, RejectedInstance.__table__)
_instance = cast(Table, Instance.__table__)


def record_rejection(
    connection: Connection, note: RejectionNote, now: datetime
) -> tuple[RejectedReference, ...]:
    """Record what `note` rejects and hide the stored instances among them (in the open transaction).

    Returns the references rejected by this note; those rejected before keep their first rejection.
    """
    fresh: list[RejectedReference] = []
    for chunk in _chunks(note.references):
        known = set(
            connection.execute(
                select(_rejected.c.sop_instance_uid).where(
                    _rejected.c.sop_instance_uid.in_([ref.sop_instance_uid for ref in chunk])
                )
            ).scalars()
        )
        fresh.extend(ref for ref in chunk if ref.sop_instance_uid not in known)
    if fresh:
        connection.execute(
            _rejected.insert(),
            [
                {
                    "sop_instance_uid": ref.sop_instance_uid,
                    "study_instance_uid": ref.study_instance_uid,
                    "series_instance_uid": ref.series_instance_uid,
                    "reason_code": note.reason_code,
                    "note_sop_instance_uid": note.sop_instance_uid,
                    "rejected_at": now,
                }
                for ref in fresh
            ],
        )
    for chunk in _chunks(note.references):
        connection.execute(
            update(_instance)
            .where(_instance.c.sop_instance_uid.in_([ref.sop_instance_uid for ref in chunk]))
            .values(rejected=True, updated_at=now)
        )
    return tuple(fresh)


def _chunks(references: Sequence[RejectedReference]) -> Iterable[Sequence[RejectedReference]]:
    for start in range(0, len(references), _CHUNK):
        yield references[start : start + _CHUNK]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why and by which note a SOP Instance UID was rejected."""

    reason_code: str
    note_sop_instance_uid: str

    @property
    def reason(self) -> str:
        return REJECTION_CODES.get(self.reason_code, self.reason_code)


_SELECT_REJECTION = select(_rejected.c.reason_code, _rejected.c.note_sop_instance_uid)


def lock_rejections(connection: Connection, *, exclusive: bool) -> None:
    """First thing in an ingest transaction: a note (`exclusive`) and the instances it may reject
    (shared) take turns, so neither commits unseen by the other.

    Why: under PostgreSQL's read committed, an instance checked against the rejections just before a
    note's transaction commits, and committed just after it, would escape the note's UPDATE. Instances
    share the lock, so only notes wait or are waited for. Taken before any row lock, so no deadlock.
    SQLite needs nothing: its writers already take turns (`WriteSerializer`).
    """
    if connection.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    connection.execute(text(f"SELECT {function}(:key)"), {"key": _REJECTION_LOCK_KEY})


def find_rejection(connection: Connection, sop_instance_uid: str) -> Rejection | None:
    """The rejection of `sop_instance_uid`, if a rejection note named it."""
    row = connection.execute(
        _SELECT_REJECTION.where(_rejected.c.sop_instance_uid == sop_instance_uid)
    ).first()
    return None if row is None else Rejection(row.reason_code, row.note_sop_instance_uid)


def lift_rejection(connection: Connection, sop_instance_uid: str) -> None:
    """Forget the rejection of `sop_instance_uid` (a re-store accepted by FOVEA_REJECTED_RESTORE=accept)."""
    connection.execute(delete(_rejected).where(_rejected.c.sop_instance_uid == sop_instance_uid))
