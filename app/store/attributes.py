"""The index attributes of an instance: the QIDO-RS matching and return keys kept as columns.

Why apart from parsing: which attributes the index holds is a fact of PS3.18 section 10.6 (digest
section 6), and it will grow with QIDO-RS; reading them tolerantly (a malformed value becomes empty or
None, never a failed store, since the DICOM JSON keeps the original) is the same rule for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from app.dicomweb.person_names import fold_case, fuzzy_key


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
    return PatientAttributes(
        patient_id=text_value(ds, "PatientID"),
        issuer_of_patient_id=text_value(ds, "IssuerOfPatientID"),
        patient_name=text_value(ds, "PatientName"),
        patient_birth_date=text_value(ds, "PatientBirthDate"),
        patient_sex=text_value(ds, "PatientSex"),
    )


def person_name_search_forms(prefix: str, name: str) -> dict[str, str]:
    """The matching forms the index keeps beside a PN column (`{prefix}_folded`, `{prefix}_fuzzy`)."""
    return {f"{prefix}_folded": fold_case(name), f"{prefix}_fuzzy": fuzzy_key(name)}


def study_attributes(ds: Dataset) -> dict[str, str]:
    return {
        "study_date": text_value(ds, "StudyDate"),
        "study_time": text_value(ds, "StudyTime"),
        "accession_number": text_value(ds, "AccessionNumber"),
        "referring_physician_name": text_value(ds, "ReferringPhysicianName"),
        "study_id": text_value(ds, "StudyID"),
        "study_description": text_value(ds, "StudyDescription"),
        "timezone_offset_from_utc": text_value(ds, "TimezoneOffsetFromUTC"),
    }


def series_attributes(ds: Dataset) -> dict[str, Any]:
    return {
        "modality": text_value(ds, "Modality"),
        "series_number": int_value(ds, "SeriesNumber"),
        "series_description": text_value(ds, "SeriesDescription"),
        "performed_procedure_step_start_date": text_value(ds, "PerformedProcedureStepStartDate"),
        "performed_procedure_step_start_time": text_value(ds, "PerformedProcedureStepStartTime"),
        "timezone_offset_from_utc": text_value(ds, "TimezoneOffsetFromUTC"),
    }


def instance_attributes(ds: Dataset) -> dict[str, Any]:
    return {
        "instance_number": int_value(ds, "InstanceNumber"),
        "timezone_offset_from_utc": text_value(ds, "TimezoneOffsetFromUTC"),
    }


def request_attributes(ds: Dataset) -> list[tuple[str, str]]:
    try:
        items = ds.get("RequestAttributesSequence") or []
    except (ValueError, TypeError):
        return []
    return [
        (text_value(item, "ScheduledProcedureStepID"), text_value(item, "RequestedProcedureID"))
        for item in items
    ]
