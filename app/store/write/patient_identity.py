"""Whether an instance names the same patient as the index does: Patient ID with its issuer, and name.

Why a rule of its own: filing an instance under a study whose patient has another ID or another name
would pair one patient's ID with another patient's name in every search result, silently. Ingest asks
this module whether the identities contradict each other, and the patient-mismatch policy
(`FOVEA_PATIENT_MISMATCH`, docs/configuration.md) decides what happens then.

What counts as a contradiction:
- Patient ID (0010,0020) and Issuer of Patient ID (0010,0021) are compared as a pair, exactly, when
  both sides have a Patient ID: the index keys patients by that pair.
- Patient's Name (0010,0010) is compared component by component (family, given, middle, prefix,
  suffix; in each of the alphabetic, ideographic and phonetic groups, PS3.5 6.2.1), without regard to
  case or padding, as PN matching compares names.
- An empty value contradicts nothing: it says nothing about the patient. That holds for a whole
  attribute and for a name's components and groups: `Doe^Jane` and `DOE^JANE^Q^^III` agree (one lacks
  the middle name and suffix), `Doe^Jane` and `Doe^John` do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.dicomweb.person_names import fold_case


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str


def name_components(name: str) -> list[list[str]]:
    """The case-folded, stripped components of each component group of a PN value."""
    return [[fold_case(component.strip()) for component in group.split("^")] for group in name.split("=")]


def names_agree(first: str, second: str) -> bool:
    """No component present in both names differs (an absent or empty component says nothing)."""
    for first_group, second_group in zip(name_components(first), name_components(second), strict=False):
        for a, b in zip(first_group, second_group, strict=False):
            if a and b and a != b:
                return False
    return True


def conflicting_attributes(stored: PatientIdentity, incoming: PatientIdentity) -> tuple[str, ...]:
    """Keywords of the identifying attributes on which `incoming` contradicts `stored`; () if none."""
    conflicts = []
    if stored.patient_id and incoming.patient_id:
        if stored.patient_id != incoming.patient_id:
            conflicts.append("PatientID")
        if stored.issuer_of_patient_id != incoming.issuer_of_patient_id:
            conflicts.append("IssuerOfPatientID")
    if not names_agree(stored.patient_name, incoming.patient_name):
        conflicts.append("PatientName")
    return tuple(conflicts)
