"""QIDO-RS parameters parsed into a query: every matching form of PS3.4 C.2.2.2, and a 400 for faults."""

from __future__ import annotations

import pytest

from app.dicomweb.errors import BadRequest
from app.dicomweb.query import Match, MatchKind, parse_search, searchable_paths
from app.dicomweb.query_keys import QueryLevel

STUDY, SERIES, INSTANCE = QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.INSTANCE
PATIENT_NAME, STUDY_DATE, STUDY_TIME = (0x00100010,), (0x00080020,), (0x00080030,)
STUDY_UID, MODALITIES = (0x0020000D,), (0x00080061,)
SCHEDULED_STEP = (0x00400275, 0x00400009)


def only_match(parameters: list[tuple[str, str]], level: QueryLevel = STUDY) -> Match:
    [match] = parse_search(parameters, level).matches
    return match


@pytest.mark.parametrize("name", ["PatientName", "00100010", "00100010".lower()])
def test_attributes_by_keyword_or_tag(name: str) -> None:
    assert only_match([(name, "Doe^Jane")]) == Match(PATIENT_NAME, "PN", MatchKind.SINGLE, ("Doe^Jane",))


@pytest.mark.parametrize(
    ("value", "kind", "values"),
    [
        ("Doe*", MatchKind.WILDCARD, ("Doe*",)),
        ("D?e", MatchKind.WILDCARD, ("D?e",)),
        ("*", MatchKind.UNIVERSAL, ()),
        ("", MatchKind.UNIVERSAL, ()),
        ("Doe", MatchKind.SINGLE, ("Doe",)),
    ],
)
def test_string_matching(value: str, kind: MatchKind, values: tuple[str, ...]) -> None:
    match = only_match([("PatientName", value)])
    assert (match.kind, match.values) == (kind, values)


def test_uid_lists() -> None:
    match = only_match([("StudyInstanceUID", "1.2.3,1.2.4")])
    assert (match.kind, match.values) == (MatchKind.UID_LIST, ("1.2.3", "1.2.4"))
    assert only_match([("StudyInstanceUID", "1.2.3")]).kind is MatchKind.SINGLE


@pytest.mark.parametrize(
    ("name", "value", "values"),
    [
        ("StudyDate", "20260101-20261231", ("20260101", "20261231")),
        ("StudyDate", "20260101-", ("20260101", "")),
        ("StudyDate", "-20261231", ("", "20261231")),
        ("StudyTime", "0800-1230", ("0800", "1230")),
        ("StudyTime", "080000.5-", ("080000.5", "")),
    ],
)
def test_ranges_with_open_ends(name: str, value: str, values: tuple[str, str]) -> None:
    match = only_match([(name, value)])
    assert (match.kind, match.values) == (MatchKind.RANGE, values)


def test_a_single_date_is_single_value_matching() -> None:
    assert only_match([("StudyDate", "20260229".replace("29", "28"))]).kind is MatchKind.SINGLE


@pytest.mark.parametrize("sequence", ["RequestAttributeSequence", "RequestAttributesSequence", "00400275"])
def test_sequence_attributes_by_dotted_path_at_series_level(sequence: str) -> None:
    match = only_match([(f"{sequence}.ScheduledProcedureStepID", "SPS1")], SERIES)
    assert match.path == SCHEDULED_STEP and match.vr == "SH"


def test_levels_search_their_own_keys_and_those_above() -> None:
    assert MODALITIES in searchable_paths(STUDY)
    assert (0x00080060,) not in searchable_paths(STUDY)  # Modality: a series key
    assert (0x00080060,) in searchable_paths(SERIES) and PATIENT_NAME in searchable_paths(SERIES)
    assert (0x00080018,) in searchable_paths(INSTANCE) and STUDY_UID in searchable_paths(INSTANCE)


def test_options() -> None:
    query = parse_search(
        [
            ("includefield", "00081030,SeriesDescription"),
            ("includefield", "PatientAge"),
            ("fuzzymatching", "true"),
            ("limit", "101"),
            ("offset", "20"),
            ("accept", "application/dicom+json"),
        ],
        STUDY,
    )
    assert query.include == {(0x00081030,), (0x0008103E,), (0x00101010,)}
    assert (query.fuzzy, query.limit, query.offset, query.include_all) == (True, 101, 20, False)
    assert parse_search([("includefield", "all")], STUDY).include_all
    defaults = parse_search([], STUDY)
    assert (defaults.limit, defaults.offset, defaults.fuzzy, defaults.matches) == (None, 0, False, ())


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ([("PatientNam", "x")], "not a query parameter"),
        ([("Modality", "CT")], "not matched at study level"),
        ([("PatientName", "a"), ("PatientName", "b")], "more than once"),
        ([("StudyDate", "2026-01-01")], "StudyDate"),
        ([("StudyDate", "20261301")], "not a valid DA"),
        ([("StudyDate", "20260102-20260101")], "ends before it starts"),
        ([("StudyDate", "-")], "at least one end"),
        ([("StudyTime", "25")], "not a valid TM"),
        ([("StudyInstanceUID", "1.2.abc")], "not a UID"),
        ([("StudyInstanceUID", "1.2.3,1..4")], "not a UID"),
        ([("limit", "-1")], "whole number"),
        ([("limit", "ten")], "whole number"),
        ([("offset", "1.5")], "whole number"),
        ([("offset", "1" + "0" * 30)], "offset=1000.*from 0 to 2147483647"),
        ([("limit", "1" + "0" * 30)], "limit=1000.*from 0 to 2147483647"),
        ([("offset", "2147483648")], "offset=2147483648: a whole number from 0 to 2147483647"),
        ([("offset", "9" * 5000)], "offset=9999"),  # beyond what int() converts
        ([("limit", "²")], "limit=²: a whole number"),  # a digit to str.isdigit, not to int()
        ([("limit", "1"), ("limit", "2")], "more than once"),
        ([("fuzzymatching", "yes")], "true or false"),
        ([("includefield", "all"), ("includefield", "PatientAge")], "includefield=all"),
        ([("includefield", "NoSuchKeyword")], "includefield=NoSuchKeyword"),
    ],
)
def test_faults_are_400_saying_what_is_wrong(parameters: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_search(parameters, STUDY)


def test_largest_offset_and_limit_are_accepted() -> None:
    query = parse_search([("limit", "2147483647"), ("offset", "2147483647")], STUDY)
    assert (query.limit, query.offset) == (2**31 - 1, 2**31 - 1)


def test_series_number_is_an_integer() -> None:
    assert only_match([("SeriesNumber", "3")], SERIES).values == ("3",)
    with pytest.raises(BadRequest, match="not a valid IS"):
        parse_search([("SeriesNumber", "three")], SERIES)


def test_code_lists_match_any_code() -> None:
    (match,) = parse_search([("ModalitiesInStudy", "CT,MR"), ("PatientSex", "")], QueryLevel.STUDY).matches[
        :1
    ]
    assert (match.kind, match.values) == (MatchKind.VALUE_LIST, ("CT", "MR"))
    (match,) = parse_search([("Modality", "CT\\PT")], QueryLevel.SERIES).matches
    assert (match.kind, match.values) == (MatchKind.VALUE_LIST, ("CT", "PT"))


def test_multiple_value_matching_takes_every_value_only_when_asked() -> None:
    parameters = [("ModalitiesInStudy", "CT\\MR\\CT"), ("multiplevaluematching", "true")]
    query = parse_search(parameters, QueryLevel.STUDY)
    assert query.multiple_value_matching
    (match,) = query.matches
    assert (match.kind, match.values) == (MatchKind.ALL_VALUES, ("CT", "MR"))
    (match,) = parse_search([("ModalitiesInStudy", "CT\\MR")], QueryLevel.STUDY).matches
    assert (match.kind, match.values) == (MatchKind.VALUE_LIST, ("CT", "MR"))
    assert not parse_search([], QueryLevel.STUDY).multiple_value_matching  # PS3.18 8.3.4.6: false


@pytest.mark.parametrize(
    ("value", "message"),
    [("CT\\M*", "no wildcards"), ("CT,MR\\PT", "not both")],
)
def test_multiple_value_matching_faults(value: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_search([("ModalitiesInStudy", value), ("multiplevaluematching", "true")], QueryLevel.STUDY)


def test_a_date_range_and_a_time_become_one_date_time_range() -> None:
    query = parse_search([("StudyDate", "20250101-20250105"), ("StudyTime", "2300-0100")], STUDY)
    by_kind = {match.kind: match for match in query.matches}
    combined = by_kind[MatchKind.DATE_TIME_RANGE]
    assert combined.values == ("20250101", "2300", "20250105", "0100")
    assert combined.time_path == (0x00080030,)
    assert by_kind[MatchKind.UNIVERSAL].path == (0x00080030,)  # still returned


def test_a_single_date_keeps_its_time_range_apart_and_in_order() -> None:
    query = parse_search([("StudyDate", "20250101"), ("StudyTime", "0800-0900")], STUDY)
    assert {match.kind for match in query.matches} == {MatchKind.SINGLE, MatchKind.RANGE}
    with pytest.raises(BadRequest, match="ends before it starts"):
        parse_search([("StudyDate", "20250101"), ("StudyTime", "0900-0800")], STUDY)
    with pytest.raises(BadRequest, match="ends before it starts"):
        parse_search([("StudyTime", "0900-0800")], STUDY)


def test_numbers_are_checked_against_their_vr() -> None:
    with pytest.raises(BadRequest, match="not a valid IS"):
        parse_search([("InstanceNumber", "1.5")], QueryLevel.INSTANCE)
