"""The QIDO-RS keys Fovea knows: one row per attribute, at its level, with the index column that holds it.

Why one table: the query parser (which keys a level matches), the search (which columns to select,
which attributes to return unasked, which are counted from other rows), the parser of stored instances
(which attributes to read into which column) and the index writer all read these rows, so adding a key
is adding a row (and, for a column, a migration). Extended query tags (app/store/query_tags.py) are
rows of the same kind made at run time. Nothing here touches SQL: a column is named as "table.column".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import MappingProxyType

from pydicom.datadict import dictionary_VR, tag_for_keyword


class QueryLevel(StrEnum):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


LEVELS = (QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.INSTANCE)


class Source(StrEnum):
    """Where the value of a key comes from."""

    ATTRIBUTE = "attribute"  # read by keyword from the stored data set into its column
    IDENTITY = "identity"  # a UID or patient identifier the index writes as part of the hierarchy
    PIXEL = "pixel"  # from the instance's pixel description
    COMPUTED = "computed"  # counted or collected from other rows, or a constant
    EXTENDED = "extended"  # an extended query tag: values in the `query_tag_value` table


@cache
def _path_of_keyword(keyword: str) -> tuple[int, ...]:
    path = []
    for part in keyword.split("."):
        tag = tag_for_keyword(part)
        if tag is None:
            raise ValueError(f"{part} is not a PS3.6 keyword")
        path.append(tag)
    return tuple(path)


def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


@dataclass(frozen=True, slots=True)
class QueryKey:
    """One attribute of one level: a matching key, a return key, or one the index just holds.

    `keyword` is a PS3.6 keyword, or a dotted path into a sequence's items; `column` is the index
    column holding the value ("table.column"; for a computed key, the column it is made from), None
    when the index holds no column for it.
    """

    keyword: str
    level: QueryLevel
    column: str | None
    source: Source
    matched: bool = False  # a matching key at its level (PS3.18 Table 10.6.1-5)
    returned: bool = False  # returned unasked (PS3.18 Tables 10.6.3-3 to -5)
    path: tuple[int, ...] = ()  # set from the keyword when not given
    vr: str = ""  # set from PS3.6 when not given

    def __post_init__(self) -> None:
        if not self.path:
            object.__setattr__(self, "path", _path_of_keyword(self.keyword))
        if not self.vr:
            object.__setattr__(self, "vr", _dictionary_vr(self.path[-1]))

    @property
    def tag(self) -> int:
        return self.path[0]

    @property
    def table(self) -> str | None:
        return None if self.column is None else self.column.split(".")[0]

    @property
    def column_name(self) -> str | None:
        return None if self.column is None else self.column.split(".")[1]

    @property
    def in_sequence(self) -> bool:
        return len(self.path) > 1


def _key(keyword: str, level: QueryLevel, column: str | None, source: Source, flags: str = "") -> QueryKey:
    """A row; `flags` holds "m" for matched and "r" for returned."""
    return QueryKey(keyword, level, column, source, matched="m" in flags, returned="r" in flags)


_A, _I, _P, _C = Source.ATTRIBUTE, Source.IDENTITY, Source.PIXEL, Source.COMPUTED
_STUDY, _SERIES, _INSTANCE = QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.INSTANCE

# The built-in keys. Within a level, columns are selected in this order; the search returns a deeper
# level's TimezoneOffsetFromUTC when it is known.
KEYS: tuple[QueryKey, ...] = (
    _key("StudyDate", _STUDY, "study.study_date", _A, "mr"),
    _key("StudyTime", _STUDY, "study.study_time", _A, "mr"),
    _key("AccessionNumber", _STUDY, "study.accession_number", _A, "mr"),
    _key("ReferringPhysicianName", _STUDY, "study.referring_physician_name", _A, "mr"),
    _key("TimezoneOffsetFromUTC", _STUDY, "study.timezone_offset_from_utc", _A, "r"),
    _key("StudyDescription", _STUDY, "study.study_description", _A, "mr"),
    _key("PatientName", _STUDY, "patient.patient_name", _A, "mr"),
    _key("PatientID", _STUDY, "patient.patient_id", _I, "mr"),
    _key("IssuerOfPatientID", _STUDY, "patient.issuer_of_patient_id", _I),
    _key("PatientBirthDate", _STUDY, "patient.patient_birth_date", _A, "mr"),
    _key("PatientSex", _STUDY, "patient.patient_sex", _A, "mr"),
    _key("StudyInstanceUID", _STUDY, "study.study_instance_uid", _I, "mr"),
    _key("StudyID", _STUDY, "study.study_id", _A, "mr"),
    _key("ModalitiesInStudy", _STUDY, "series.modality", _C, "mr"),
    _key("NumberOfStudyRelatedSeries", _STUDY, None, _C, "r"),
    _key("NumberOfStudyRelatedInstances", _STUDY, None, _C, "r"),
    _key("InstanceAvailability", _STUDY, None, _C, "r"),
    _key("Modality", _SERIES, "series.modality", _A, "mr"),
    _key("SeriesDescription", _SERIES, "series.series_description", _A, "mr"),
    _key("SeriesInstanceUID", _SERIES, "series.series_instance_uid", _I, "mr"),
    _key("SeriesNumber", _SERIES, "series.series_number", _A, "mr"),
    _key("PerformedProcedureStepStartDate", _SERIES, "series.performed_procedure_step_start_date", _A, "mr"),
    _key("PerformedProcedureStepStartTime", _SERIES, "series.performed_procedure_step_start_time", _A, "mr"),
    _key("TimezoneOffsetFromUTC", _SERIES, "series.timezone_offset_from_utc", _A, "r"),
    _key("NumberOfSeriesRelatedInstances", _SERIES, None, _C, "r"),
    _key("RequestAttributesSequence", _SERIES, None, _C, "r"),
    _key(
        "RequestAttributesSequence.ScheduledProcedureStepID",
        _SERIES,
        "request_attribute.scheduled_procedure_step_id",
        _A,
        "m",
    ),
    _key(
        "RequestAttributesSequence.RequestedProcedureID",
        _SERIES,
        "request_attribute.requested_procedure_id",
        _A,
        "m",
    ),
    _key("SOPClassUID", _INSTANCE, "instance.sop_class_uid", _I, "mr"),
    _key("SOPInstanceUID", _INSTANCE, "instance.sop_instance_uid", _I, "mr"),
    _key("InstanceNumber", _INSTANCE, "instance.instance_number", _A, "mr"),
    _key("TimezoneOffsetFromUTC", _INSTANCE, "instance.timezone_offset_from_utc", _A, "r"),
    _key("AvailableTransferSyntaxUID", _INSTANCE, "instance.transfer_syntax_uid", _I),
    _key("Rows", _INSTANCE, "instance.rows", _P, "r"),
    _key("Columns", _INSTANCE, "instance.columns", _P, "r"),
    _key("BitsAllocated", _INSTANCE, "instance.bits_allocated", _P, "r"),
    _key("BitsStored", _INSTANCE, "instance.bits_stored", _P),
    _key("SamplesPerPixel", _INSTANCE, "instance.samples_per_pixel", _P),
    _key("PhotometricInterpretation", _INSTANCE, "instance.photometric_interpretation", _P),
    _key("NumberOfFrames", _INSTANCE, "instance.number_of_frames", _P, "r"),
    _key("InstanceAvailability", _INSTANCE, None, _C, "r"),
)

# A date and the time of the same moment, matched as one range (PS3.4 C.2.2.2.5.1).
DATE_TIME_PAIRS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = tuple(
    (_path_of_keyword(date), _path_of_keyword(time))
    for date, time in (
        ("StudyDate", "StudyTime"),
        ("PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime"),
    )
)
# The levels a search at each level matches on: its own and those above it.
LEVELS_SEARCHED: Mapping[QueryLevel, tuple[QueryLevel, ...]] = MappingProxyType(
    {level: LEVELS[: LEVELS.index(level) + 1] for level in LEVELS}
)


def keys_at(level: QueryLevel, keys: Iterable[QueryKey] = KEYS) -> tuple[QueryKey, ...]:
    return tuple(key for key in keys if key.level is level)


def held_columns(level: QueryLevel) -> tuple[QueryKey, ...]:
    """The level's keys its own rows (or its patient's) hold as columns, in selection order."""
    return tuple(
        key
        for key in keys_at(level)
        if key.column is not None and key.source is not Source.COMPUTED and not key.in_sequence
    )


def ingested_columns(table: str) -> dict[str, QueryKey]:
    """The columns of `table` read by keyword from each stored data set, by column name."""
    return {
        key.column_name: key
        for key in KEYS
        if key.table == table and key.source is Source.ATTRIBUTE and key.column_name is not None
    }


def person_name_form_columns(table: str) -> tuple[str, ...]:
    """The matching forms the index keeps beside each PN column of `table` (app/store/write/attributes.py)."""
    return tuple(
        f"{key.column_name}{suffix}"
        for key in KEYS
        if key.table == table and key.vr == "PN" and key.source is not Source.COMPUTED
        for suffix in ("_folded", "_fuzzy")
    )
