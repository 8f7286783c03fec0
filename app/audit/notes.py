"""UIDs a handler learns beyond its path, noted on the request for the audit record.

Why: the audit middleware sees the path (study, series, instance UIDs), but only the handler knows
which instances a STOW-RS request stored or which studies a search returned. It notes them here; the
middleware reads them once the response is sent. Notes may be added from the retrieval threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

_STATE_KEY = "audited_uids"
_REJECTIONS_KEY = "audited_rejections"
# (Study, Series, SOP Instance UID) of one rejected instance; a RejectedReference is one.
RejectedUids = tuple[str, str, str]


@dataclass(slots=True)
class AuditedUids:
    studies: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)

    def add(
        self, *, studies: Iterable[str] = (), series: Iterable[str] = (), instances: Iterable[str] = ()
    ) -> None:
        self.studies.extend(uid for uid in studies if uid)
        self.series.extend(uid for uid in series if uid)
        self.instances.extend(uid for uid in instances if uid)


def audited_uids(connection: HTTPConnection) -> AuditedUids:
    """The request's notes (made on first use)."""
    state = connection.scope.setdefault("state", {})
    notes = state.get(_STATE_KEY)
    if not isinstance(notes, AuditedUids):
        notes = state[_STATE_KEY] = AuditedUids()
    return notes


def note_audited_uids(
    connection: HTTPConnection,
    *,
    studies: Iterable[str] = (),
    series: Iterable[str] = (),
    instances: Iterable[str] = (),
) -> None:
    """Add UIDs the request touched to its audit record."""
    audited_uids(connection).add(studies=studies, series=series, instances=instances)


def note_audited_rejections(connection: HTTPConnection, rejected: Iterable[RejectedUids]) -> None:
    """Record instances a rejection note stored by this request rejected: a `reject` event of their own."""
    references = list(rejected)
    if not references:
        return
    notes = connection.scope.setdefault("state", {}).setdefault(_REJECTIONS_KEY, AuditedUids())
    for study, series, instance in references:
        notes.add(studies=(study,), series=(series,), instances=(instance,))


def noted_rejections(state: dict[str, object]) -> AuditedUids | None:
    """The instances rejected by the request, if it stored a rejection note that rejected any."""
    notes = state.get(_REJECTIONS_KEY)
    return notes if isinstance(notes, AuditedUids) else None


def noted_uids(state: dict[str, object]) -> AuditedUids | None:
    """The notes in a request's scope state, if a handler made any."""
    notes = state.get(_STATE_KEY)
    return notes if isinstance(notes, AuditedUids) else None
