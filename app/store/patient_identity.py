"""Whether an instance names the same patient as the index does: Patient ID with its issuer, and name.

Why a rule of its own: filing an instance under a study whose patient has another ID or another name
would pair one patient's ID with another patient's name in every search result, silently. Ingest asks
this module whether the identities contradict each other, and the patient-mismatch policy
(`FOVEA_PATIENT_MISMATCH`, docs/configuration.md) decides what happens then.

What counts as a contradiction:
- Patient ID (0010,0020) and Issuer of Patient ID (0010,0021) are compared as a pair, exactly, when
  both sides have a Patient ID: the index keys patients by that pair.
- Patient's Name (0010,0010) is compared the way PN matching compares names (case-insensitively), after
  dropping empty trailing components (`Doe^Jane^^` is `Doe^Jane`), when both sides have one.
- An empty value contradicts nothing: it says nothing about the patient.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.dicomweb.person_names import fold_case


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str


def comparable_name(name: str) -> str:
    """`name` with padding and empty trailing components removed, case-folded (PS3.5 6.2.1)."""
    groups = []
    for group in name.split("="):
        components = [component.strip() for component in group.split("^")]
        groups.append("^".join(components).rstrip("^"))
    return fold_case("=".join(groups).rstrip("="))


def conflicting_attributes(stored: PatientIdentity, incoming: PatientIdentity) -> tuple[str, ...]:
    """Keywords of the identifying attributes on which `incoming` contradicts `stored`; () if none."""
    conflicts = []
    if stored.patient_id and incoming.patient_id:
        if stored.patient_id != incoming.patient_id:
            conflicts.append("PatientID")
        if stored.issuer_of_patient_id != incoming.issuer_of_patient_id:
            conflicts.append("IssuerOfPatientID")
    if (
        stored.patient_name
        and incoming.patient_name
        and comparable_name(stored.patient_name) != comparable_name(incoming.patient_name)
    ):
        conflicts.append("PatientName")
    return tuple(conflicts)
