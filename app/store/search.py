"""QIDO-RS on the index: a `SearchQuery` becomes SQL, and one page of matches their attributes.

Why this shape: a search is one statement that filters, orders and pages the rows of its level (the
page is `limit + 1` rows, so "there are more" costs nothing), then a few statements over just that
page for what is counted or collected from other tables (related series and instances, modalities,
request attributes) and, only when asked for an attribute the index does not hold, the stored DICOM
JSON of a representative instance. Every filter is on a column with an index or on a few rows already
narrowed by one, so searches stay fast as the archive grows.

Matching (PS3.4 C.2.2.2) on the index's text columns:
- single value: equality; PN: equality of the case-folded forms; IS: equality of the integers;
- UID and CS lists: `IN`;
- wildcard `*`/`?`: SQLite's `GLOB` (case-sensitive, the same two wildcards) or PostgreSQL's `LIKE`
  (columns of PN forms use the "C" collation so that a literal prefix uses the index);
- range: text comparison (DA, TM and DT sort as text); an upper end covers every value it is the start
  of (`-1300` includes 13:00:59, by padding it with nines), and empty values are in no range;
- fuzzy PN: every folded query word starts a word of the stored name (app/dicomweb/person_names.py).
`emptyvaluematching=true` also returns the rows whose value for a matched key is empty.

Instances an IHE IOCM rejection note rejected are not seen, nor counted, nor do they keep a series or
study in the results (app/store/visibility.py), unless the query says `includerejected`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute

from app.dicomweb.person_names import fold_case, fuzzy_words
from app.dicomweb.query import Match, MatchKind, QueryLevel, SearchQuery
from app.dicomweb.search_results import StoredElement
from app.store.index import Instance, InstanceMetadata, Patient, RequestAttribute, Series, Study
from app.store.visibility import ANY_REJECTED, REJECTED, SERIES_VISIBLE, STUDY_VISIBLE, VISIBLE

# Tags (PS3.6) the index answers for, by level.
STUDY_DATE, STUDY_TIME, ACCESSION_NUMBER = 0x00080020, 0x00080030, 0x00080050
INSTANCE_AVAILABILITY, MODALITIES_IN_STUDY, REFERRING_PHYSICIAN = 0x00080056, 0x00080061, 0x00080090
TIMEZONE_OFFSET, STUDY_DESCRIPTION, RETRIEVE_URL = 0x00080201, 0x00081030, 0x00081190
PATIENT_NAME, PATIENT_ID, ISSUER_OF_PATIENT_ID = 0x00100010, 0x00100020, 0x00100021
PATIENT_BIRTH_DATE, PATIENT_SEX = 0x00100030, 0x00100040
STUDY_UID, STUDY_ID = 0x0020000D, 0x00200010
STUDY_RELATED_SERIES, STUDY_RELATED_INSTANCES, SERIES_RELATED_INSTANCES = 0x00201206, 0x00201208, 0x00201209
MODALITY, SERIES_DESCRIPTION, SERIES_UID, SERIES_NUMBER = 0x00080060, 0x0008103E, 0x0020000E, 0x00200011
PPS_START_DATE, PPS_START_TIME = 0x00400244, 0x00400245
REQUEST_ATTRIBUTES, SCHEDULED_STEP_ID, REQUESTED_PROCEDURE_ID = 0x00400275, 0x00400009, 0x00401001
SOP_CLASS_UID, SOP_INSTANCE_UID, INSTANCE_NUMBER = 0x00080016, 0x00080018, 0x00200013
AVAILABLE_TRANSFER_SYNTAX = 0x00083002
SAMPLES_PER_PIXEL, PHOTOMETRIC, NUMBER_OF_FRAMES = 0x00280002, 0x00280004, 0x00280008
ROWS, COLUMNS, BITS_ALLOCATED, BITS_STORED = 0x00280010, 0x00280011, 0x00280100, 0x00280101

Column = InstrumentedAttribute[Any]

# The attributes each level's rows hold as columns (a PN column is matched through its folded forms).
_COLUMNS: Mapping[QueryLevel, Mapping[int, Column]] = {
    QueryLevel.STUDY: {
        STUDY_DATE: Study.study_date,
        STUDY_TIME: Study.study_time,
        ACCESSION_NUMBER: Study.accession_number,
        REFERRING_PHYSICIAN: Study.referring_physician_name,
        TIMEZONE_OFFSET: Study.timezone_offset_from_utc,
        STUDY_DESCRIPTION: Study.study_description,
        PATIENT_NAME: Patient.patient_name,
        PATIENT_ID: Patient.patient_id,
        ISSUER_OF_PATIENT_ID: Patient.issuer_of_patient_id,
        PATIENT_BIRTH_DATE: Patient.patient_birth_date,
        PATIENT_SEX: Patient.patient_sex,
        STUDY_UID: Study.study_instance_uid,
        STUDY_ID: Study.study_id,
    },
    QueryLevel.SERIES: {
        MODALITY: Series.modality,
        SERIES_DESCRIPTION: Series.series_description,
        SERIES_UID: Series.series_instance_uid,
        SERIES_NUMBER: Series.series_number,
        PPS_START_DATE: Series.performed_procedure_step_start_date,
        PPS_START_TIME: Series.performed_procedure_step_start_time,
        TIMEZONE_OFFSET: Series.timezone_offset_from_utc,
    },
    QueryLevel.INSTANCE: {
        SOP_CLASS_UID: Instance.sop_class_uid,
        SOP_INSTANCE_UID: Instance.sop_instance_uid,
        INSTANCE_NUMBER: Instance.instance_number,
        TIMEZONE_OFFSET: Instance.timezone_offset_from_utc,
        AVAILABLE_TRANSFER_SYNTAX: Instance.transfer_syntax_uid,
        ROWS: Instance.rows,
        COLUMNS: Instance.columns,
        BITS_ALLOCATED: Instance.bits_allocated,
        BITS_STORED: Instance.bits_stored,
        SAMPLES_PER_PIXEL: Instance.samples_per_pixel,
        PHOTOMETRIC: Instance.photometric_interpretation,
        NUMBER_OF_FRAMES: Instance.number_of_frames,
    },
}
# Attributes made from other rows than the level's own (counted or collected over the page).
_COMPUTED: Mapping[QueryLevel, frozenset[int]] = {
    QueryLevel.STUDY: frozenset(
        {MODALITIES_IN_STUDY, STUDY_RELATED_SERIES, STUDY_RELATED_INSTANCES, INSTANCE_AVAILABILITY}
    ),
    QueryLevel.SERIES: frozenset({SERIES_RELATED_INSTANCES, REQUEST_ATTRIBUTES}),
    QueryLevel.INSTANCE: frozenset({INSTANCE_AVAILABILITY}),
}
# What a result carries unasked (PS3.18 Tables 10.6.3-3 to -5), besides the matched keys.
_RETURNED: Mapping[QueryLevel, frozenset[int]] = {
    QueryLevel.STUDY: frozenset(
        {
            STUDY_DATE,
            STUDY_TIME,
            ACCESSION_NUMBER,
            INSTANCE_AVAILABILITY,
            MODALITIES_IN_STUDY,
            REFERRING_PHYSICIAN,
            TIMEZONE_OFFSET,
            STUDY_DESCRIPTION,
            PATIENT_NAME,
            PATIENT_ID,
            PATIENT_BIRTH_DATE,
            PATIENT_SEX,
            STUDY_UID,
            STUDY_ID,
            STUDY_RELATED_SERIES,
            STUDY_RELATED_INSTANCES,
        }
    ),
    QueryLevel.SERIES: frozenset(
        {
            MODALITY,
            TIMEZONE_OFFSET,
            SERIES_DESCRIPTION,
            SERIES_UID,
            SERIES_NUMBER,
            SERIES_RELATED_INSTANCES,
            PPS_START_DATE,
            PPS_START_TIME,
            REQUEST_ATTRIBUTES,
        }
    ),
    QueryLevel.INSTANCE: frozenset(
        {
            SOP_CLASS_UID,
            SOP_INSTANCE_UID,
            INSTANCE_AVAILABILITY,
            TIMEZONE_OFFSET,
            INSTANCE_NUMBER,
            ROWS,
            COLUMNS,
            BITS_ALLOCATED,
            NUMBER_OF_FRAMES,
        }
    ),
}
_LEVELS = (QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.INSTANCE)
_HELD = frozenset().union(*(set(_COLUMNS[lv]) | _COMPUTED[lv] | _RETURNED[lv] for lv in _LEVELS))
_PERSON_NAME_FORMS: Mapping[int, tuple[Column, Column]] = {
    PATIENT_NAME: (Patient.patient_name_folded, Patient.patient_name_fuzzy),
    REFERRING_PHYSICIAN: (Study.referring_physician_name_folded, Study.referring_physician_name_fuzzy),
}
_REQUEST_ATTRIBUTE_COLUMNS: Mapping[int, Column] = {
    SCHEDULED_STEP_ID: RequestAttribute.scheduled_procedure_step_id,
    REQUESTED_PROCEDURE_ID: RequestAttribute.requested_procedure_id,
}
ONLINE = "ONLINE"


@dataclass(frozen=True, slots=True)
class SearchScope:
    """The UIDs of the search's URL: `/studies/{study}/series/{series}/instances` and the like."""

    study_instance_uid: str | None = None
    series_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One matching study, series or instance: its attributes by tag, and its place in the hierarchy."""

    attributes: dict[int, Any]
    study_instance_uid: str
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[SearchResult]
    has_more: bool  # matches exist beyond this page
    limit: int  # the page size applied (the client's limit, or the server's maximum)


def search(connection: Connection, query: SearchQuery, scope: SearchScope, *, max_results: int) -> SearchPage:
    """One page of what `query` matches within `scope`, at most `max_results` long."""
    level = query.level
    limit = min(query.limit if query.limit is not None else max_results, max_results)
    levels = _LEVELS[: _LEVELS.index(level) + 1]
    columns = [column for searched in levels for column in _COLUMNS[searched].values()]
    keys = (Study.pk, Series.pk, Instance.pk)[: len(levels)]  # the rows' own keys, first
    # Last, after the columns `_result` reads: whether anything is hidden at all.
    hiding = false() if query.include_rejected else ANY_REJECTED
    statement = _joined(select(*keys, *columns, hiding.label("any_hidden")), level)
    statement = statement.where(*_scope_conditions(scope), *_match_conditions(query, connection))
    if not query.include_rejected:
        statement = statement.where(_visible_at(level))
    statement = statement.order_by(*_order(level, scope)).limit(limit + 1).offset(query.offset)
    rows = connection.execute(statement).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    wanted = _wanted_tags(query, scope)
    results = [_result(row, levels, wanted) for row in rows]
    if results:
        shown = not rows[0].any_hidden  # nothing rejected, or asked to show it
        _add_computed(connection, level, rows, results, wanted, shown_rejected=shown)
        _add_from_stored_metadata(connection, level, rows, results, wanted, shown_rejected=shown)
    return SearchPage(results, has_more, limit)


def _joined(statement: Select[*tuple[Any, ...]], level: QueryLevel) -> Select[*tuple[Any, ...]]:
    statement = statement.select_from(Study).join(Patient, Patient.pk == Study.patient_pk)
    if level is not QueryLevel.STUDY:
        statement = statement.join(Series, Series.study_pk == Study.pk)
    if level is QueryLevel.INSTANCE:
        statement = statement.join(Instance, Instance.series_pk == Series.pk)
    return statement


def _visible_at(level: QueryLevel) -> ColumnElement[bool]:
    """A result of `level` has an instance no rejection note rejected (the instance itself, at its level)."""
    if level is QueryLevel.STUDY:
        return STUDY_VISIBLE
    if level is QueryLevel.SERIES:
        return SERIES_VISIBLE
    return VISIBLE


def _scope_conditions(scope: SearchScope) -> list[ColumnElement[bool]]:
    conditions = []
    if scope.study_instance_uid is not None:
        conditions.append(Study.study_instance_uid == scope.study_instance_uid)
    if scope.series_instance_uid is not None:
        conditions.append(Series.series_instance_uid == scope.series_instance_uid)
    return conditions


def _order(level: QueryLevel, scope: SearchScope) -> list[Any]:
    """Stable orders for paging: natural order inside a scope, storage order across the archive."""
    if level is QueryLevel.STUDY:
        return [Study.pk]
    if level is QueryLevel.SERIES:
        if scope.study_instance_uid is None:
            return [Series.pk]
        return [Series.series_number.asc().nulls_last(), Series.pk]
    if scope.study_instance_uid is None and scope.series_instance_uid is None:
        return [Instance.pk]
    return [
        Series.series_number.asc().nulls_last(),
        Series.pk,
        Instance.instance_number.asc().nulls_last(),
        Instance.pk,
    ]


# --- Matching ---


def _match_conditions(query: SearchQuery, connection: Connection) -> list[ColumnElement[bool]]:
    dialect = connection.dialect.name
    conditions = []
    for match in query.matches:
        if match.kind is MatchKind.UNIVERSAL:
            continue
        condition = _condition(match, query, dialect)
        if query.empty_value_matching and match.vr != "UI":
            condition = or_(condition, _is_empty(match))
        conditions.append(condition)
    return conditions


def _condition(match: Match, query: SearchQuery, dialect: str) -> ColumnElement[bool]:
    tag = match.path[0]
    if tag == MODALITIES_IN_STUDY:
        conditions = [Series.study_pk == Study.pk, _value_condition(Series.modality, match, dialect)]
        if not query.include_rejected:
            conditions.append(SERIES_VISIBLE)
        return exists().where(*conditions)
    if tag == REQUEST_ATTRIBUTES:
        column = _REQUEST_ATTRIBUTE_COLUMNS[match.tag]
        return exists().where(
            RequestAttribute.series_pk == Series.pk, _value_condition(column, match, dialect)
        )
    if tag in _PERSON_NAME_FORMS:
        folded, fuzzy = _PERSON_NAME_FORMS[tag]
        if query.fuzzy:
            words = fuzzy_words(match.values[0]) if match.kind is not MatchKind.UID_LIST else []
            return and_(true(), *(fuzzy.like(f"% {word}%") for word in words))
        folded_match = Match(match.path, match.vr, match.kind, tuple(fold_case(v) for v in match.values))
        return _value_condition(folded, folded_match, dialect)
    return _value_condition(_column_of(tag), match, dialect)


def _column_of(tag: int) -> Column:
    for level in _LEVELS:
        if tag in _COLUMNS[level]:
            return _COLUMNS[level][tag]
    raise KeyError(f"{tag:08X} is not an index column")  # query.py admits only indexed keys


def _value_condition(column: Column, match: Match, dialect: str) -> ColumnElement[bool]:
    kind, values = match.kind, match.values
    if match.vr == "IS":
        return column == int(values[0])
    if kind in (MatchKind.UID_LIST, MatchKind.VALUE_LIST):
        return column.in_(values)
    if kind is MatchKind.WILDCARD:
        return _wildcard(column, values[0], dialect)
    if kind is MatchKind.RANGE:
        low, high = values
        bounds = [column != ""]
        if low:
            bounds.append(column >= low)
        if high:
            bounds.append(column <= _last_value_starting_with(high, match.vr))
        return and_(*bounds)
    return column == values[0]


def _last_value_starting_with(value: str, vr: str) -> str:
    """The greatest DA/TM/DT text that begins with `value`, so that an upper end `08` covers 08:59:59.

    Padding with nines (digits only, plus the "." DICOM writes) orders the same in every collation,
    which a sentinel character would not: locale collations skip punctuation.
    """
    if vr == "DA":
        return value  # always whole: eight digits
    if vr == "DT":
        value = re.split(r"[+-]", value)[0]  # an offset cannot be ordered as text; the local time is
    whole, _, fraction = value.partition(".")
    digits = 6 if vr == "TM" else 14
    return f"{whole.ljust(digits, '9')}.{fraction.ljust(6, '9')}"


def _wildcard(column: Column, pattern: str, dialect: str) -> ColumnElement[bool]:
    """DICOM's `*` and `?` in the database's own pattern syntax, every other character literal."""
    if dialect == "sqlite":
        return column.op("GLOB")(pattern.replace("[", "[[]"))
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")


def _is_empty(match: Match) -> ColumnElement[bool]:
    tag = match.path[0]
    if tag == MODALITIES_IN_STUDY:
        return ~exists().where(Series.study_pk == Study.pk, Series.modality != "")
    if tag == REQUEST_ATTRIBUTES:
        return ~exists().where(RequestAttribute.series_pk == Series.pk)
    if tag in _PERSON_NAME_FORMS:
        return _PERSON_NAME_FORMS[tag][0] == ""
    column = _column_of(tag)
    if match.vr == "IS":
        return column.is_(None)
    return or_(column == "", column.is_(None)) if column.nullable else column == ""


# --- What each result carries ---


def _wanted_tags(query: SearchQuery, scope: SearchScope) -> frozenset[int]:
    """The attributes to return: the level's keys, the keys of the levels the URL leaves open
    (PS3.18 10.6.3.3: `/series` returns study keys too), the matched keys, and the included ones."""
    level = query.level
    index = _LEVELS.index(level)
    wanted = set(_RETURNED[level]) | {STUDY_UID}
    if level is QueryLevel.INSTANCE:
        wanted.add(SERIES_UID)
    if level is not QueryLevel.STUDY and scope.study_instance_uid is None:
        wanted |= _RETURNED[QueryLevel.STUDY]
    if level is QueryLevel.INSTANCE and scope.series_instance_uid is None:
        wanted |= _RETURNED[QueryLevel.SERIES]
    wanted.update(match.path[0] for match in query.matches)
    if query.include_all:
        for searched in _LEVELS[: index + 1]:
            wanted |= set(_COLUMNS[searched]) | _COMPUTED[searched] | _RETURNED[searched]
    lower = {tag for deeper in _LEVELS[index + 1 :] for tag in (*_COLUMNS[deeper], *_RETURNED[deeper])}
    wanted.update(path[0] for path in query.include if path[0] not in lower)
    return frozenset(wanted)


def _result(row: Any, levels: Sequence[QueryLevel], wanted: frozenset[int]) -> SearchResult:
    values = iter(row[len(levels) :])
    attributes: dict[int, Any] = {}
    for level in levels:
        for tag in _COLUMNS[level]:
            value = next(values)
            if tag in wanted and (value not in ("", None) or tag not in attributes):
                attributes[tag] = value  # a deeper level's TimezoneOffsetFromUTC wins when known
    if INSTANCE_AVAILABILITY in wanted:
        attributes[INSTANCE_AVAILABILITY] = ONLINE
    return SearchResult(
        attributes,
        attributes.get(STUDY_UID) or row.study_instance_uid,
        row.series_instance_uid if len(levels) > 1 else None,
        row.sop_instance_uid if len(levels) > 2 else None,
    )


def _add_computed(
    connection: Connection,
    level: QueryLevel,
    rows: Sequence[Any],
    results: list[SearchResult],
    wanted: frozenset[int],
    *,
    shown_rejected: bool,
) -> None:
    study_pks = [row[0] for row in rows]
    series_shown = [] if shown_rejected else [SERIES_VISIBLE]
    if wanted & {STUDY_RELATED_SERIES, STUDY_RELATED_INSTANCES}:
        in_studies = Series.study_pk.in_(set(study_pks))
        counts: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
        rejected = {} if shown_rejected else _rejected_counts(connection, in_studies)
        for series_pk, study_pk, instances in connection.execute(
            select(Series.pk, Series.study_pk, func.count(Instance.pk))
            .join(Instance, Instance.series_pk == Series.pk)
            .where(in_studies)
            .group_by(Series.pk, Series.study_pk)
        ):
            shown = instances - rejected.get(series_pk, 0)
            if shown:
                series, total = counts[study_pk]
                counts[study_pk] = (series + 1, total + shown)
        for pk, result in zip(study_pks, results, strict=True):
            series, instances = counts.get(pk, (0, 0))
            _set_if_wanted(result, wanted, STUDY_RELATED_SERIES, series)
            _set_if_wanted(result, wanted, STUDY_RELATED_INSTANCES, instances)
    if MODALITIES_IN_STUDY in wanted:
        modalities: dict[int, set[str]] = defaultdict(set)
        for pk, modality in connection.execute(
            select(Series.study_pk, Series.modality)
            .where(Series.study_pk.in_(set(study_pks)), Series.modality != "", *series_shown)
            .distinct()
        ):
            modalities[pk].add(modality)
        for pk, result in zip(study_pks, results, strict=True):
            result.attributes[MODALITIES_IN_STUDY] = sorted(modalities[pk])
    if level is QueryLevel.STUDY:
        return
    series_pks = [row[1] for row in rows]
    if SERIES_RELATED_INSTANCES in wanted:
        counts_by_series = dict(
            connection.execute(
                select(Instance.series_pk, func.count())
                .where(Instance.series_pk.in_(set(series_pks)))
                .group_by(Instance.series_pk)
            ).all()
        )
        rejected = {} if shown_rejected else _rejected_counts(connection, Series.pk.in_(set(series_pks)))
        for pk, result in zip(series_pks, results, strict=True):
            result.attributes[SERIES_RELATED_INSTANCES] = counts_by_series.get(pk, 0) - rejected.get(pk, 0)
    if REQUEST_ATTRIBUTES in wanted:
        items: dict[int, list[dict[int, str]]] = defaultdict(list)
        for pk, step, procedure in connection.execute(
            select(
                RequestAttribute.series_pk,
                RequestAttribute.scheduled_procedure_step_id,
                RequestAttribute.requested_procedure_id,
            )
            .where(RequestAttribute.series_pk.in_(set(series_pks)))
            .order_by(RequestAttribute.pk)
        ):
            items[pk].append({SCHEDULED_STEP_ID: step, REQUESTED_PROCEDURE_ID: procedure})
        for pk, result in zip(series_pks, results, strict=True):
            result.attributes[REQUEST_ATTRIBUTES] = items.get(pk, [])


def _rejected_counts(connection: Connection, series_condition: ColumnElement[bool]) -> dict[int, int]:
    """Rejected instances per series (of those `series_condition` selects).

    Why counted apart and subtracted: filtering the totals on the flag would read every instance row;
    this reads only the partial index of rejected rows (none, in most archives).
    """
    return dict(
        connection.execute(
            select(Instance.series_pk, func.count())
            .join(Series, Series.pk == Instance.series_pk)
            .where(REJECTED, series_condition)
            .group_by(Instance.series_pk)
        ).all()
    )


def _set_if_wanted(result: SearchResult, wanted: frozenset[int], tag: int, value: Any) -> None:
    if tag in wanted:
        result.attributes[tag] = value


def _add_from_stored_metadata(
    connection: Connection,
    level: QueryLevel,
    rows: Sequence[Any],
    results: list[SearchResult],
    wanted: frozenset[int],
    *,
    shown_rejected: bool,
) -> None:
    """Attributes asked for that the index does not hold, from each result's first instance."""
    missing = wanted - _HELD
    if not missing:
        return
    position = _LEVELS.index(level)
    owner = (Series.study_pk, Instance.series_pk, Instance.pk)[position]
    owner_pks = [row[position] for row in rows]
    first_instance = _first_instances(connection, level, owner, owner_pks, shown_rejected=shown_rejected)
    stored = dict(
        connection.execute(
            select(InstanceMetadata.instance_pk, InstanceMetadata.dicom_json).where(
                InstanceMetadata.instance_pk.in_(set(first_instance.values()))
            )
        ).all()
    )
    keys = {tag: f"{tag:08X}" for tag in missing}
    for pk, result in zip(owner_pks, results, strict=True):
        instance_pk = first_instance.get(pk)
        if instance_pk is None or instance_pk not in stored:
            continue
        dataset = orjson.loads(stored[instance_pk])
        for tag, key in keys.items():
            if key in dataset:
                result.attributes[tag] = StoredElement(dataset[key])


def _first_instances(
    connection: Connection, level: QueryLevel, owner: Column, owner_pks: list[int], *, shown_rejected: bool
) -> dict[int, int]:
    """The first stored instance (shown) of each study or series (an instance stands for itself)."""
    if level is QueryLevel.INSTANCE:
        return {pk: pk for pk in owner_pks}
    statement = select(owner, func.min(Instance.pk)).select_from(Instance)
    if level is QueryLevel.STUDY:
        statement = statement.join(Series, Series.pk == Instance.series_pk)
    if not shown_rejected:
        statement = statement.where(VISIBLE)
    rows = connection.execute(statement.where(owner.in_(set(owner_pks))).group_by(owner))
    return {pk: first for pk, first in rows}
