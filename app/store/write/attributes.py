"""The index attributes of an instance: the QIDO-RS matching and return keys kept as columns.

Why apart from parsing: which attributes the index holds is a fact of PS3.18 section 10.6, kept as
rows of the key table (app/dicomweb/query_keys.py); reading them tolerantly (a malformed value becomes
empty or None, never a failed store, since the DICOM JSON keeps the original) is the same rule for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from app.dicomweb.person_names import fold_case, fuzzy_key
from app.dicomweb.query_keys import KEYS, QueryKey, ingested_columns


@dataclass(frozen=True, slots=True)
class PatientAttributes:
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str


def int_value(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError):
        return None
    if isinstance(value, MultiValue):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (ValueError, TypeError):
        return None


def text_value(ds: Dataset, keyword: str) -> str:
    """An attribute as its DICOM string (values joined by backslash), '' when absent or unreadable."""
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError):
        return ""
    if value is None:
        return ""
    if isinstance(value, MultiValue | list):
        return "\\".join(str(item) for item in value)
    return str(value).strip("\x00 ")


def patient_attributes(ds: Dataset) -> PatientAttributes:
    return PatientAttributes(**{column: text_value(ds, key.keyword) for column, key in _PATIENT.items()})


def person_name_search_forms(prefix: str, name: str) -> dict[str, str]:
    """The matching forms the index keeps beside a PN column (`{prefix}_folded`, `{prefix}_fuzzy`)."""
    return {f"{prefix}_folded": fold_case(name), f"{prefix}_fuzzy": fuzzy_key(name)}


def study_attributes(ds: Dataset) -> dict[str, Any]:
    return _read(ds, _STUDY)


def series_attributes(ds: Dataset) -> dict[str, Any]:
    return _read(ds, _SERIES)


def instance_attributes(ds: Dataset) -> dict[str, Any]:
    return _read(ds, _INSTANCE)


def request_attributes(ds: Dataset) -> list[dict[str, str]]:
    """One row of `request_attribute` columns per item of Request Attributes Sequence."""
    try:
        items = ds.get("RequestAttributesSequence") or []
    except (ValueError, TypeError):
        return []
    return [
        {column: text_value(item, key.keyword.split(".")[-1]) for column, key in _REQUEST_ITEM.items()}
        for item in items
    ]


def _read(ds: Dataset, columns: Mapping[str, QueryKey]) -> dict[str, Any]:
    """The columns' values, read tolerantly: IS as an integer (None when unreadable), text otherwise."""
    return {
        column: int_value(ds, key.keyword) if key.vr == "IS" else text_value(ds, key.keyword)
        for column, key in columns.items()
    }


# The columns each table takes from the data set (app/dicomweb/query_keys.py), by column name.
_PATIENT = {
    key.column_name: key for key in KEYS if key.table == "patient" and key.column_name and not key.in_sequence
}
_STUDY, _SERIES, _INSTANCE = (
    ingested_columns("study"),
    ingested_columns("series"),
    ingested_columns("instance"),
)
_REQUEST_ITEM = ingested_columns("request_attribute")
