"""What WADO-RS needs from the index: stored metadata for a scope, and the frame table of an instance.

Why here: these are the read-side queries on the index models; the HTTP layer never writes SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, select

from app.imaging.frames import FrameFragment, PixelLayout
from app.store.index import FrameFragmentRow, Instance, InstanceMetadata, Series, Study

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class Scope:
    """A study, a series of it, or one instance of that series (the narrower UIDs may be None)."""

    study_instance_uid: str
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None


def stored_metadata(connection: Connection, scope: Scope) -> list[bytes]:
    """The stored DICOM JSON of every instance in `scope`, by series then instance number.

    An empty list means nothing in the index matches the scope.
    """
    query = _in_scope(
        select(InstanceMetadata.dicom_json).join(Instance, Instance.pk == InstanceMetadata.instance_pk),
        scope,
    ).order_by(Series.series_number, Series.pk, Instance.instance_number, Instance.pk)
    return [bytes(row) for row in connection.execute(query).scalars()]


def _in_scope(query: _Query, scope: Scope) -> _Query:
    """`query` (which selects from Instance) narrowed to the instances of `scope`."""
    query = (
        query.join(Series, Series.pk == Instance.series_pk)
        .join(Study, Study.pk == Series.study_pk)
        .where(Study.study_instance_uid == scope.study_instance_uid)
    )
    if scope.series_instance_uid is not None:
        query = query.where(Series.series_instance_uid == scope.series_instance_uid)
    if scope.sop_instance_uid is not None:
        query = query.where(Instance.sop_instance_uid == scope.sop_instance_uid)
    return query


@dataclass(frozen=True, slots=True)
class StoredFrames:
    """Where the requested frames of one instance are, and how to read them."""

    data_blob_key: str
    transfer_syntax_uid: str
    layout: PixelLayout
    fragments: dict[int, tuple[FrameFragment, ...]]  # requested frame number -> its fragments


class NoPixelData(LookupError):
    """The instance exists but has no pixel data, hence no frames."""


def stored_frames(connection: Connection, scope: Scope, numbers: Sequence[int]) -> StoredFrames | None:
    """The frame table rows of `numbers` in the instance of `scope` (None: no such instance)."""
    row = connection.execute(
        _in_scope(
            select(
                Instance.pk,
                Instance.blob_key,
                Instance.data_blob_key,
                Instance.transfer_syntax_uid,
                Instance.rows,
                Instance.columns,
                Instance.samples_per_pixel,
                Instance.bits_allocated,
                Instance.number_of_frames,
                Instance.photometric_interpretation,
            ),
            scope,
        )
    ).first()
    if row is None:
        return None
    if row.number_of_frames is None:
        raise NoPixelData(scope.sop_instance_uid)
    layout = PixelLayout(
        row.rows,
        row.columns,
        row.samples_per_pixel or 1,
        row.bits_allocated,
        row.number_of_frames,
        row.photometric_interpretation or "",
    )
    fragments: dict[int, list[FrameFragment]] = {}
    table = FrameFragmentRow
    for fragment in connection.execute(
        select(table.frame_number, table.fragment_index, table.offset, table.length, table.bit_offset)
        .where(table.instance_pk == row.pk, table.frame_number.in_(list(numbers)))
        .order_by(table.frame_number, table.fragment_index)
    ):
        fragments.setdefault(fragment.frame_number, []).append(FrameFragment(*fragment))
    return StoredFrames(
        row.data_blob_key or row.blob_key,
        row.transfer_syntax_uid,
        layout,
        {number: tuple(parts) for number, parts in fragments.items()},
    )
