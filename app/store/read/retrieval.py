"""What WADO-RS needs from the index: stored metadata for a scope, and the frame table of an instance.

Why here: these are the read-side queries on the index models; the HTTP layer never writes SQL.
Every lookup by UIDs sees only instances no rejection note rejected (app/store/read/visibility.py), so a
rejected instance, and a series or study left with none, is 404 to every WADO-RS resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, select

from app.dicomweb.scope import Scope
from app.imaging.frame_table import FrameFragment, PixelLayout
from app.imaging.pixel_description import PixelDescription, stored_syntax
from app.store.read.visibility import VISIBLE
from app.store.tables import BulkDataRow, FrameFragmentRow, Instance, InstanceMetadata, Series, Study

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


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
        .where(Study.study_instance_uid == scope.study_instance_uid, VISIBLE)
    )
    if scope.series_instance_uid is not None:
        query = query.where(Series.series_instance_uid == scope.series_instance_uid)
    if scope.sop_instance_uid is not None:
        query = query.where(Instance.sop_instance_uid == scope.sop_instance_uid)
    return query


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """One stored instance: its UIDs, blobs, syntax and Image Pixel attributes (no frame table)."""

    pk: int
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    blob_key: str  # the file as received
    data_blob_key: str  # the file offsets point into (an inflated copy for a deflated data set)
    blob_size: int
    updated_at: datetime
    pixels: PixelDescription | None  # None: no pixel data
    pixel_data_tag: int | None
    lossy_image_compression: str
    fixity_problem: str | None = None  # "corrupt", "missing": a fixity check flagged its file

    @property
    def scope(self) -> Scope:
        return Scope(self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)

    @property
    def unavailable_reason(self) -> str | None:
        """Why the instance's bytes are not served (a flagged file), or None: they are."""
        if self.fixity_problem is None:
            return None
        return (
            f"instance {self.sop_instance_uid} is unavailable: a fixity check found its stored file "
            f"{self.fixity_problem}; it can be stored again, or its file restored and verified"
        )


_INSTANCE_COLUMNS = (
    Instance.pk,
    Study.study_instance_uid,
    Series.series_instance_uid,
    Instance.sop_instance_uid,
    Instance.transfer_syntax_uid,
    Instance.blob_key,
    Instance.data_blob_key,
    Instance.blob_size,
    Instance.updated_at,
    Instance.rows,
    Instance.columns,
    Instance.samples_per_pixel,
    Instance.bits_allocated,
    Instance.bits_stored,
    Instance.pixel_representation,
    Instance.planar_configuration,
    Instance.number_of_frames,
    Instance.photometric_interpretation,
    Instance.pixel_data_tag,
    Instance.lossy_image_compression,
    Instance.fixity_problem,
)


def _stored_instance(row: Any) -> StoredInstance:
    pixels = None
    if row.number_of_frames is not None and row.rows is not None and row.bits_allocated is not None:
        layout = PixelLayout(
            row.rows,
            row.columns,
            row.samples_per_pixel or 1,
            row.bits_allocated,
            row.number_of_frames,
            row.photometric_interpretation or "",
        )
        pixels = PixelDescription.of(
            layout,
            stored_syntax(row.transfer_syntax_uid),
            bits_stored=row.bits_stored,
            pixel_representation=row.pixel_representation,
            planar_configuration=row.planar_configuration,
            lossy_image_compression=row.lossy_image_compression,
        )
    return StoredInstance(
        row.pk,
        row.study_instance_uid,
        row.series_instance_uid,
        row.sop_instance_uid,
        row.transfer_syntax_uid,
        row.blob_key,
        row.data_blob_key or row.blob_key,
        row.blob_size,
        _aware(row.updated_at),
        pixels,
        row.pixel_data_tag,
        row.lossy_image_compression or "",
        row.fixity_problem,
    )


def _aware(moment: datetime) -> datetime:
    """In UTC: SQLite returns naive datetimes (stored as UTC), PostgreSQL the session's time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored_instances(connection: Connection, scope: Scope) -> list[StoredInstance]:
    """Every instance of `scope`, by series then instance number (empty: nothing matches)."""
    query = _in_scope(select(*_INSTANCE_COLUMNS), scope).order_by(
        Series.series_number, Series.pk, Instance.instance_number, Instance.pk
    )
    return [_stored_instance(row) for row in connection.execute(query)]


def scope_exists(connection: Connection, scope: Scope) -> bool:
    """Whether any instance is stored in `scope`."""
    return connection.execute(_in_scope(select(Instance.pk), scope).limit(1)).first() is not None


def shown_instance(connection: Connection, scope: Scope) -> StoredInstance | None:
    """The instance a rendered study or series shows: the middle instance with pixel data (by Instance
    Number) of the first series (by Series Number) that has any; an instance shows itself.

    Three small statements whatever the size of the series, rather than listing every instance.
    """
    images = _in_scope(select(Series.pk).select_from(Instance), scope).where(
        Instance.number_of_frames.is_not(None)
    )
    series_pk = connection.execute(images.order_by(Series.series_number, Series.pk).limit(1)).scalar()
    if series_pk is None:
        return None
    in_series: list[ColumnElement[bool]] = [
        Instance.series_pk == series_pk,
        Instance.number_of_frames.is_not(None),
        VISIBLE,
    ]
    if scope.sop_instance_uid is not None:
        in_series.append(Instance.sop_instance_uid == scope.sop_instance_uid)
    count = connection.execute(select(func.count()).select_from(Instance).where(*in_series)).scalar_one()
    query = (
        select(*_INSTANCE_COLUMNS)
        .join(Series, Series.pk == Instance.series_pk)
        .join(Study, Study.pk == Series.study_pk)
        .where(*in_series)
        .order_by(Instance.instance_number, Instance.pk)
        .offset((count - 1) // 2)
        .limit(1)
    )
    row = connection.execute(query).first()
    return None if row is None else _stored_instance(row)


@dataclass(frozen=True, slots=True)
class ScopeVersion:
    """What changes whenever anything in a scope changes: for ETag and Last-Modified."""

    instances: int
    last_modified: datetime | None
    fingerprint: str  # stable text that differs whenever an instance is added, replaced or removed


def scope_version(connection: Connection, scope: Scope) -> ScopeVersion:
    """Count, newest update and a fingerprint of the instances of `scope`, in one aggregate query."""
    row = connection.execute(
        _in_scope(
            select(
                func.count(Instance.pk),
                func.max(Instance.updated_at),
                func.max(Instance.pk),
                func.sum(Instance.pk),
            ),
            scope,
        )
    ).one()
    count, newest, max_pk, sum_pk = row
    last = _aware(newest) if newest is not None else None
    stamp = last.isoformat() if last is not None else ""
    return ScopeVersion(count, last, f"{count}:{max_pk}:{sum_pk}:{stamp}")


def stored_instances_with_version(
    connection: Connection, scope: Scope
) -> tuple[list[StoredInstance], ScopeVersion]:
    """`stored_instances` and `scope_version` read in one transaction, so they describe the same state."""
    with connection.begin():
        return stored_instances(connection, scope), scope_version(connection, scope)


def stored_metadata_with_version(connection: Connection, scope: Scope) -> tuple[list[bytes], ScopeVersion]:
    """`stored_metadata` and `scope_version` read in one transaction, so they describe the same state."""
    with connection.begin():
        return stored_metadata(connection, scope), scope_version(connection, scope)


@dataclass(frozen=True, slots=True)
class StoredBulkData:
    """Where one bulk data value of one instance lies in its data blob."""

    instance: StoredInstance
    path: str  # as in the BulkDataURI: "00420011", "54000100/0/54001010"
    vr: str
    offset: int
    length: int
    little_endian: bool


def stored_bulkdata(
    connection: Connection, instances: Sequence[StoredInstance], path: str | None = None
) -> list[StoredBulkData]:
    """The bulk data values of `instances` (only `path`, when given), in the order of `instances`.

    One statement from the instance rows, so that an instance replaced since it was looked up is told
    apart from one without bulk data (InstanceChanged), and another version's rows are never applied to
    this version's blob (SQLite may give a replacement the primary key of the original).
    """
    by_pk = {instance.pk: instance for instance in instances}
    if not by_pk:
        return []
    table = BulkDataRow
    joined = table.instance_pk == Instance.pk
    if path is not None:
        joined &= table.path == path
    query = (
        select(
            Instance.pk,
            Instance.blob_key,
            table.path,
            table.vr,
            table.offset,
            table.length,
            table.little_endian,
        )
        .outerjoin(table, joined)
        .where(Instance.pk.in_(list(by_pk)))
    )
    rows = list(connection.execute(query))
    stored = {(row.pk, row.blob_key) for row in rows}
    for instance in instances:
        if (instance.pk, instance.blob_key) not in stored:
            raise InstanceChanged(instance.sop_instance_uid)
    order = {pk: index for index, pk in enumerate(by_pk)}
    values = sorted((row for row in rows if row.path is not None), key=lambda row: (order[row.pk], row.path))
    return [
        StoredBulkData(by_pk[row.pk], row.path, row.vr, row.offset, row.length, row.little_endian)
        for row in values
    ]


@dataclass(frozen=True, slots=True)
class StoredFrames:
    """Where the requested frames of one instance are, and how to read them."""

    instance: StoredInstance
    pixels: PixelDescription  # the instance's, never None here
    fragments: dict[int, tuple[FrameFragment, ...]]  # requested frame number -> its fragments
    pixel_vr: str | None = None  # read only where it matters: 8-bit OW words are swapped in Big Endian

    @property
    def data_blob_key(self) -> str:
        return self.instance.data_blob_key

    @property
    def transfer_syntax_uid(self) -> str:
        return self.instance.transfer_syntax_uid

    @property
    def layout(self) -> PixelLayout:
        return self.pixels.layout


_BIG_ENDIAN = "1.2.840.10008.1.2.2"


class NoPixelData(LookupError):
    """The instance exists but has no pixel data, hence no frames."""


class InstanceChanged(LookupError):
    """The instance looked up earlier has been replaced or removed since: its frame table is gone.

    Its blob is still readable for a while (deferred deletion), but the rows describing it are not, so
    the caller looks the instance up again (`stored_frames` of its scope) or starts over.
    """


def stored_frames(connection: Connection, scope: Scope) -> StoredFrames | None:
    """The instance of `scope` (all three UIDs set) with its whole frame table; None: no such instance.

    Raises NoPixelData for an instance without pixel data. One prebuilt statement: this is the lookup
    behind every frame a viewer asks for (and what `FrameTableCache` keeps).
    """
    rows = connection.execute(
        _INSTANCE_WITH_FRAMES,
        {
            "study": scope.study_instance_uid,
            "series": scope.series_instance_uid,
            "sop": scope.sop_instance_uid,
        },
    ).all()
    if not rows:
        return None
    instance = _stored_instance(rows[0])
    if instance.pixels is None:
        raise NoPixelData(instance.sop_instance_uid)
    if instance.transfer_syntax_uid == _BIG_ENDIAN:
        return frames_of(connection, instance)  # also needs the pixel data VR
    fragments: dict[int, list[FrameFragment]] = {}
    for row in rows:
        if row.frame_number is not None:
            fragment = FrameFragment(
                row.frame_number, row.fragment_index, row.offset, row.length, row.bit_offset
            )
            fragments.setdefault(row.frame_number, []).append(fragment)
    return StoredFrames(
        instance, instance.pixels, {number: tuple(parts) for number, parts in fragments.items()}
    )


# Built once: a statement object reused as is skips SQLAlchemy's per-call construction, cache-key
# and result-column matching work, which cost more than the query itself on SQLite.
_INSTANCE_WITH_FRAMES = (
    select(
        *_INSTANCE_COLUMNS,
        FrameFragmentRow.frame_number,
        FrameFragmentRow.fragment_index,
        FrameFragmentRow.offset,
        FrameFragmentRow.length,
        FrameFragmentRow.bit_offset,
    )
    .select_from(Instance)
    .join(Series, Series.pk == Instance.series_pk)
    .join(Study, Study.pk == Series.study_pk)
    .outerjoin(FrameFragmentRow, FrameFragmentRow.instance_pk == Instance.pk)
    .where(
        Study.study_instance_uid == bindparam("study"),
        Series.series_instance_uid == bindparam("series"),
        Instance.sop_instance_uid == bindparam("sop"),
        VISIBLE,
    )
    .order_by(FrameFragmentRow.frame_number, FrameFragmentRow.fragment_index)
)


def frames_of(connection: Connection, instance: StoredInstance) -> StoredFrames:
    """The whole frame table of `instance` (an instance already looked up, in an earlier statement).

    Rows are matched by primary key *and* blob key: a replacement deletes the instance row and inserts
    a new one, which SQLite may give the same primary key; only the blob key names one stored file.
    Raises InstanceChanged when that row is gone by now (an empty table would otherwise pass for an
    instance without frames, and another version's table would be applied to this version's blob).
    """
    if instance.pixels is None:
        raise NoPixelData(instance.sop_instance_uid)
    table = FrameFragmentRow
    query = (
        select(table.frame_number, table.fragment_index, table.offset, table.length, table.bit_offset)
        .join(Instance, Instance.pk == table.instance_pk)
        .where(table.instance_pk == instance.pk, Instance.blob_key == instance.blob_key)
        .order_by(table.frame_number, table.fragment_index)
    )
    fragments: dict[int, list[FrameFragment]] = {}
    for fragment in connection.execute(query):
        fragments.setdefault(fragment.frame_number, []).append(FrameFragment(*fragment))
    if not fragments and not _is_stored(connection, instance):
        raise InstanceChanged(instance.sop_instance_uid)
    pixel_vr = None
    if instance.transfer_syntax_uid == _BIG_ENDIAN and instance.pixel_data_tag is not None:
        pixel_vr = connection.execute(
            select(BulkDataRow.vr)
            .join(Instance, Instance.pk == BulkDataRow.instance_pk)
            .where(
                BulkDataRow.instance_pk == instance.pk,
                Instance.blob_key == instance.blob_key,
                BulkDataRow.path == f"{instance.pixel_data_tag:08X}",
            )
        ).scalar()
    return StoredFrames(
        instance, instance.pixels, {number: tuple(parts) for number, parts in fragments.items()}, pixel_vr
    )


def _is_stored(connection: Connection, instance: StoredInstance) -> bool:
    """Whether the index still holds this version of the instance (same row, same blob)."""
    query = select(Instance.pk).where(Instance.pk == instance.pk, Instance.blob_key == instance.blob_key)
    return connection.execute(query).first() is not None
