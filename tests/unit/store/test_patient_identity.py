"""The rule that decides whether an instance names another patient than the index does."""

from __future__ import annotations

import pytest

from app.store.patient_identity import PatientIdentity, comparable_name, conflicting_attributes

STORED = PatientIdentity("P1", "HOSPITAL-A", "Doe^Jane")


@pytest.mark.parametrize(
    ("incoming", "conflicts"),
    [
        (PatientIdentity("P1", "HOSPITAL-A", "Doe^Jane"), ()),
        (PatientIdentity("P1", "HOSPITAL-A", "DOE^JANE^^"), ()),  # case and empty components
        (PatientIdentity("P1", "HOSPITAL-A", " Doe ^Jane"), ()),  # padding inside components
        (PatientIdentity("P1", "HOSPITAL-A", ""), ()),  # no name: says nothing
        (PatientIdentity("", "", "Doe^Jane"), ()),  # no Patient ID: says nothing about the ID
        (PatientIdentity("P2", "HOSPITAL-A", "Doe^Jane"), ("PatientID",)),
        (PatientIdentity("P1", "HOSPITAL-B", "Doe^Jane"), ("IssuerOfPatientID",)),
        (PatientIdentity("P1", "", "Doe^Jane"), ("IssuerOfPatientID",)),
        (PatientIdentity("P1", "HOSPITAL-A", "Doe^John"), ("PatientName",)),
        (
            PatientIdentity("P2", "HOSPITAL-B", "Roe^Richard"),
            ("PatientID", "IssuerOfPatientID", "PatientName"),
        ),
    ],
)
def test_conflicting_attributes(incoming: PatientIdentity, conflicts: tuple[str, ...]) -> None:
    assert conflicting_attributes(STORED, incoming) == conflicts


def test_stored_empty_values_conflict_with_nothing() -> None:
    assert (
        conflicting_attributes(PatientIdentity("", "", ""), PatientIdentity("P9", "X", "Roe^Richard")) == ()
    )


@pytest.mark.parametrize(
    ("name", "comparable"),
    [
        ("Doe^Jane", "doe^jane"),
        ("Doe^Jane^^^", "doe^jane"),
        ("Yamada^Tarou=山田^太郎=", "yamada^tarou=山田^太郎"),
        ("Doe^^^^=", "doe"),
        ("", ""),
    ],
)
def test_comparable_name(name: str, comparable: str) -> None:
    assert comparable_name(name) == comparable
