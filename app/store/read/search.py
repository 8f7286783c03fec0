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
study in the results (app/store/read/visibility.py), unless the query says `includerejected`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

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
from app.dicomweb.query import Match, MatchKind, SearchQuery
from app.dicomweb.query_keys import KEYS, LEVELS, QueryLevel, Source, held_columns, keys_at
from app.dicomweb.scope import Scope
from app.dicomweb.search_results import StoredElement
from app.store.query_tags import ExtendedKey
from app.store.read.visibility import ANY_REJECTED, REJECTED, SERIES_VISIBLE, STUDY_VISIBLE, VISIBLE
from app.store.tables import (
    Base,
    Instance,
    InstanceMetadata,
    Patient,
    QueryTagValue,
    RequestAttribute,
    Series,
    Study,
)

# Tags (PS3.6) the search treats by name: computed keys, the hierarchy's UIDs, RetrieveURL.
STUDY_UID, SERIES_UID = 0x0020000D, 0x0020000E
INSTANCE_AVAILABILITY, MODALITIES_IN_STUDY, RETRIEVE_URL = 0x00080056, 0x00080061, 0x00081190
STUDY_RELATED_SERIES, STUDY_RELATED_INSTANCES, SERIES_RELATED_INSTANCES = 0x00201206, 0x00201208, 0x00201209
REQUEST_ATTRIBUTES = 0x00400275

Column = InstrumentedAttribute[Any]

_MODELS: Mapping[str, type[Base]] = {
    "patient": Patient,
    "study": Study,
    "series": Series,
    "instance": Instance,
    "request_attribute": RequestAttribute,
}


def model_column(name: str) -> Column:
    """The index column a key names as "table.column"."""
    table, column = name.split(".")
    return cast(Column, getattr(_MODELS[table], column))


# Everything below is derived from the key table (app/dicomweb/query_keys.py).
# The attributes each level's rows hold as columns (a PN column is matched through its folded forms).
_COLUMNS: Mapping[QueryLevel, Mapping[int, Column]] = {
    level: {key.tag: model_column(key.column) for key in held_columns(level) if key.column}
    for level in LEVELS
}
# Attributes made from other rows than the level's own (counted or collected over the page).
_COMPUTED: Mapping[QueryLevel, frozenset[int]] = {
    level: frozenset(key.tag for key in keys_at(level) if key.source is Source.COMPUTED) for level in LEVELS
}
# What a result carries unasked, besides the matched keys.
_RETURNED: Mapping[QueryLevel, frozenset[int]] = {
    level: frozenset(key.tag for key in keys_at(level) if key.returned) for level in LEVELS
}
_LEVELS = LEVELS
_HELD = frozenset().union(*(set(_COLUMNS[lv]) | _COMPUTED[lv] | _RETURNED[lv] for lv in _LEVELS))
_PERSON_NAME_FORMS: Mapping[int, tuple[Column, Column]] = {
    key.tag: (model_column(f"{key.column}_folded"), model_column(f"{key.column}_fuzzy"))
    for key in KEYS
    if key.vr == "PN" and key.column and key.source is not Source.COMPUTED
}
# Keys inside Request Attributes Sequence items, one row of `request_attribute` per item.
_REQUEST_ATTRIBUTE_COLUMNS: Mapping[int, Column] = {
    key.path[-1]: model_column(key.column)
    for key in KEYS
    if key.tag == REQUEST_ATTRIBUTES and key.in_sequence and key.column
}
# Extended query tag values: the row a level's search filters, and the value column naming it.
_VALUE_OWNERS: Mapping[QueryLevel, tuple[Column, Column]] = {
    QueryLevel.STUDY: (Study.pk, QueryTagValue.study_pk),
    QueryLevel.SERIES: (Series.pk, QueryTagValue.series_pk),
    QueryLevel.INSTANCE: (Instance.pk, QueryTagValue.instance_pk),
}
_INTEGER_VRS = frozenset({"IS", "US", "UL", "SS", "SL", "SV", "UV"})
ONLINE = "ONLINE"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One matching study, series or instance: its attributes by tag, and its place in the hierarchy."""

    attributes: dict[int, Any]
    study_instance_uid: str
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope(self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[SearchResult]
    has_more: bool  # matches exist beyond this page
    limit: int  # the page size applied (the client's limit, or the server's maximum)


def search(
    connection: Connection,
    query: SearchQuery,
    scope: Scope | None,
    *,
    max_results: int,
    extended: Sequence[ExtendedKey] = (),
) -> SearchPage:
    """One page of what `query` matches within `scope`, at most `max_results` long; `extended` are the
    extended query tags the query was parsed with."""
    level = query.level
    limit = min(query.limit if query.limit is not None else max_results, max_results)
    levels = _LEVELS[: _LEVELS.index(level) + 1]
    columns = [column for searched in levels for column in _COLUMNS[searched].values()]
    keys = (Study.pk, Series.pk, Instance.pk)[: len(levels)]  # the rows' own keys, first
    # Last, after the columns `_result` reads: whether anything is hidden at all.
    hiding = false() if query.include_rejected else ANY_REJECTED
    statement = _joined(select(*keys, *columns, hiding.label("any_hidden")), level)
    statement = statement.where(
        *_scope_conditions(scope),
        *_match_conditions(query, connection, {key.key.path: key for key in extended}),
    )
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
        first_instances = _add_computed(connection, level, rows, results, wanted, shown_rejected=shown)
        _add_from_stored_metadata(
            connection,
            level,
            rows,
            results,
            wanted,
            extended,
            shown_rejected=shown,
            known_first=first_instances,
        )
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


def _scope_conditions(scope: Scope | None) -> list[ColumnElement[bool]]:
    if scope is None:
        return []
    conditions = [Study.study_instance_uid == scope.study_instance_uid]
    if scope.series_instance_uid is not None:
        conditions.append(Series.series_instance_uid == scope.series_instance_uid)
    return conditions


def _order(level: QueryLevel, scope: Scope | None) -> list[Any]:
    """Stable orders for paging: natural order inside a scope, storage order across the archive."""
    if level is QueryLevel.STUDY:
        return [Study.pk]
    if level is QueryLevel.SERIES:
        if scope is None:
            return [Series.pk]
        return [Series.series_number.asc().nulls_last(), Series.pk]
    if scope is None:
        return [Instance.pk]
    return [
        Series.series_number.asc().nulls_last(),
        Series.pk,
        Instance.instance_number.asc().nulls_last(),
        Instance.pk,
    ]


# --- Matching ---


def _match_conditions(
    query: SearchQuery, connection: Connection, extended: Mapping[tuple[int, ...], ExtendedKey]
) -> list[ColumnElement[bool]]:
    dialect = connection.dialect.name
    conditions = []
    item_matches = []
    for match in query.matches:
        if match.kind is MatchKind.UNIVERSAL:
            continue
        if match.path[0] == REQUEST_ATTRIBUTES:
            item_matches.append(match)  # matched together, item by item
            continue
        if match.path in extended:
            conditions.append(_extended_condition(extended[match.path], match, query, dialect))
            continue
        condition = _condition(match, query, dialect)
        if query.empty_value_matching and match.vr != "UI":
            condition = or_(condition, _is_empty(match))
        conditions.append(condition)
    if item_matches:
        conditions.append(_request_item_condition(item_matches, query, dialect))
    return conditions


def _request_item_condition(matches: list[Match], query: SearchQuery, dialect: str) -> ColumnElement[bool]:
    """Sequence Matching (PS3.4 C.2.2.2.6): one item of the series' Request Attributes Sequence
    matches every item key; with `emptyvaluematching`, an empty item value or no item at all does too."""
    conditions = []
    for match in matches:
        column = _REQUEST_ATTRIBUTE_COLUMNS[match.tag]
        condition = _value_condition(column, match, dialect)
        conditions.append(or_(condition, column == "") if query.empty_value_matching else condition)
    found = exists().where(RequestAttribute.series_pk == Series.pk, *conditions)
    if query.empty_value_matching:
        return or_(found, ~exists().where(RequestAttribute.series_pk == Series.pk))
    return found


def _condition(match: Match, query: SearchQuery, dialect: str) -> ColumnElement[bool]:
    tag = match.path[0]
    if tag == MODALITIES_IN_STUDY:
        visible = [] if query.include_rejected else [SERIES_VISIBLE]
        if match.kind is MatchKind.ALL_VALUES:  # a series of each modality
            return and_(
                *(
                    exists().where(Series.study_pk == Study.pk, Series.modality == value, *visible)
                    for value in match.values
                )
            )
        return exists().where(
            Series.study_pk == Study.pk, _value_condition(Series.modality, match, dialect), *visible
        )
    if match.kind is MatchKind.DATE_TIME_RANGE:
        return _date_time_condition(match)
    if tag in _PERSON_NAME_FORMS:
        folded, fuzzy = _PERSON_NAME_FORMS[tag]
        if query.fuzzy:
            words = fuzzy_words(match.values[0]) if match.kind is not MatchKind.UID_LIST else []
            return and_(true(), *(fuzzy.like(f"% {word}%") for word in words))
        folded_match = Match(match.path, match.vr, match.kind, tuple(fold_case(v) for v in match.values))
        return _value_condition(folded, folded_match, dialect)
    return _value_condition(_column_of(tag), match, dialect)


def _date_time_condition(match: Match) -> ColumnElement[bool]:
    """A date and its time as one range (PS3.4 C.2.2.2.5.1): from the low date at the low time to the
    high date at the high time. A value with a date and no time is matched by its date alone."""
    date, time = _column_of(match.path[0]), _column_of(match.time_path[0])
    date_low, time_low, date_high, time_high = match.values
    bounds = [date != ""]
    if date_low:
        bounds.append(date >= date_low)
        if time_low:
            bounds.append(or_(date != date_low, time == "", time >= time_low))
    if date_high:
        bounds.append(date <= date_high)
        if time_high:
            bounds.append(
                or_(date != date_high, time == "", time <= _last_value_starting_with(time_high, "TM"))
            )
    return and_(*bounds)


def _extended_condition(
    key: ExtendedKey, match: Match, query: SearchQuery, dialect: str
) -> ColumnElement[bool]:
    """An extended query tag's match: the study, series or instance has a value row that matches."""
    owner, value_owner = _VALUE_OWNERS[key.key.level]

    def having(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return owner.in_(select(value_owner).where(QueryTagValue.query_tag_pk == key.pk, *conditions))

    if key.numeric:
        column: Column = QueryTagValue.number_value
        values: tuple[Any, ...] = tuple(float(value) for value in match.values)
    else:
        column = QueryTagValue.text_value
        values = tuple(fold_case(v) for v in match.values) if match.vr == "PN" else match.values
    if match.kind is MatchKind.ALL_VALUES:
        condition = and_(*(having(column == value) for value in values))
    elif key.numeric:
        condition = having(column.in_(values))
    else:
        condition = having(_value_condition(column, Match(match.path, "", match.kind, values), dialect))
    if query.empty_value_matching:
        return or_(condition, ~having())
    return condition


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
    if kind is MatchKind.ALL_VALUES:  # a single-valued column holds them all only if they are one
        return and_(*(column == value for value in values))
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
    if tag in _PERSON_NAME_FORMS:
        return _PERSON_NAME_FORMS[tag][0] == ""
    column = _column_of(tag)
    if match.vr == "IS":
        return column.is_(None)
    return or_(column == "", column.is_(None)) if column.nullable else column == ""


# --- What each result carries ---


def _wanted_tags(query: SearchQuery, scope: Scope | None) -> frozenset[int]:
    """The attributes to return: the level's keys, the keys of the levels the URL leaves open
    (PS3.18 10.6.3.3: `/series` returns study keys too), the matched keys, and the included ones."""
    level = query.level
    index = _LEVELS.index(level)
    wanted = set(_RETURNED[level]) | {STUDY_UID}
    if level is QueryLevel.INSTANCE:
        wanted.add(SERIES_UID)
    if level is not QueryLevel.STUDY and scope is None:
        wanted |= _RETURNED[QueryLevel.STUDY]
    if level is QueryLevel.INSTANCE and (scope is None or scope.series_instance_uid is None):
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
) -> dict[int, int] | None:
    """Counts and modalities of the page's studies, counts and request attributes of its series.

    Returns each study's first instance when the counts gave it for free (study level, nothing hidden):
    the same pass over the studies' instances, which `_first_instances` would otherwise make again."""
    study_pks = [row[0] for row in rows]
    series_shown = [] if shown_rejected else [SERIES_VISIBLE]
    first_instances: dict[int, int] | None = None
    if wanted & {STUDY_RELATED_SERIES, STUDY_RELATED_INSTANCES}:
        in_studies = Series.study_pk.in_(set(study_pks))
        counts: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
        rejected = {} if shown_rejected else _rejected_counts(connection, in_studies)
        first: dict[int, int] = {}
        for series_pk, study_pk, instances, first_pk in connection.execute(
            select(Series.pk, Series.study_pk, func.count(Instance.pk), func.min(Instance.pk))
            .join(Instance, Instance.series_pk == Series.pk)
            .where(in_studies)
            .group_by(Series.pk, Series.study_pk)
        ):
            first[study_pk] = min(first.get(study_pk, first_pk), first_pk)
            shown = instances - rejected.get(series_pk, 0)
            if shown:
                series, total = counts[study_pk]
                counts[study_pk] = (series + 1, total + shown)
        if shown_rejected and level is QueryLevel.STUDY:
            first_instances = first
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
        return first_instances
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
        for pk, *values in connection.execute(
            select(RequestAttribute.series_pk, *_REQUEST_ATTRIBUTE_COLUMNS.values())
            .where(RequestAttribute.series_pk.in_(set(series_pks)))
            .order_by(RequestAttribute.pk)
        ):
            items[pk].append(dict(zip(_REQUEST_ATTRIBUTE_COLUMNS, values, strict=True)))
        for pk, result in zip(series_pks, results, strict=True):
            result.attributes[REQUEST_ATTRIBUTES] = items.get(pk, [])
    return None


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
    extended: Sequence[ExtendedKey] = (),
    *,
    shown_rejected: bool,
    known_first: Mapping[int, int] | None = None,
) -> None:
    """Attributes asked for that the index does not hold, from each result's first instance: extended
    query tags from their indexed values (but PN, indexed case-folded), the rest from its DICOM JSON.
    `known_first`: the first instances when already read (`_add_computed`)."""
    missing = wanted - _HELD
    if not missing:
        return
    position = _LEVELS.index(level)
    owner = (Series.study_pk, Instance.series_pk, Instance.pk)[position]
    owner_pks = [row[position] for row in rows]
    first_instance = (
        known_first
        if known_first is not None
        else _first_instances(connection, level, owner, owner_pks, shown_rejected=shown_rejected)
    )
    indexed = {key.key.tag: key for key in extended if key.key.tag in missing and key.key.vr != "PN"}
    if indexed:
        _add_indexed_values(connection, indexed, owner_pks, first_instance, results)
        missing -= set(indexed)
        if not missing:
            return
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


def _add_indexed_values(
    connection: Connection,
    keys: Mapping[int, ExtendedKey],
    owner_pks: list[int],
    first_instance: Mapping[int, int],
    results: list[SearchResult],
) -> None:
    """Extended query tags' values in each result's first instance, from the value table: one probe
    of its instance index rather than reading every first instance's DICOM JSON.

    Only the instance keys are in the SQL: given the tag keys as well, SQLite (no statistics) walks a
    (tag, value) index over every value of the tag, 100,000 rows for a tag of 100,000 instances. An
    instance has one row per declared tag and value, so the others are few and skipped here."""
    by_pk = {key.pk: key for key in keys.values()}
    values: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for value_instance_pk, tag_pk, text, number in connection.execute(
        select(
            QueryTagValue.instance_pk,
            QueryTagValue.query_tag_pk,
            QueryTagValue.text_value,
            QueryTagValue.number_value,
        )
        .where(QueryTagValue.instance_pk.in_(set(first_instance.values())))
        .order_by(QueryTagValue.pk)
    ):
        if tag_pk not in by_pk:
            continue
        numeric = by_pk[tag_pk].numeric
        integer = by_pk[tag_pk].key.vr in _INTEGER_VRS
        value = int(number) if numeric and integer and number is not None else number if numeric else text
        values[(value_instance_pk, tag_pk)].append(value)
    for pk, result in zip(owner_pks, results, strict=True):
        first = first_instance.get(pk)
        for key in keys.values():
            found = values.get((first, key.pk)) if first is not None else None
            if found:
                result.attributes[key.key.tag] = StoredElement({"vr": key.key.vr, "Value": found})


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
