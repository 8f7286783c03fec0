"""The rule that decides whether an instance names another patient than the index does."""

from __future__ import annotations

import pytest

from app.store.write.patient_identity import PatientIdentity, conflicting_attributes, names_agree

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
        (PatientIdentity("P1", "HOSPITAL-A", "Doe^Jane^Q"), ()),  # a middle name added: no contradiction
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
    ("first", "second", "agree"),
    [
        ("Doe^Jane", "Doe^Jane", True),
        ("Doe^Jane", "DOE^JANE^^^", True),  # case, empty trailing components
        ("Doe^Jane", "Doe^Jane^Q^Dr^III", True),  # one has a middle name, prefix and suffix, the other not
        ("Doe^Jane^Q", "Doe^Jane^R", False),  # both have a middle name: they differ
        ("Doe^Jane", "Doe^John", False),
        ("Doe^Jane", "Roe^Jane", False),
        ("Doe", "Doe^Jane", True),
        ("Yamada^Tarou=山田^太郎", "YAMADA^Tarou", True),  # no ideographic group on one side
        ("Yamada^Tarou=山田^太郎", "Yamada^Tarou=山本^太郎", False),
        ("Doe^Jane", "", True),
    ],
)
def test_names_agree(first: str, second: str, agree: bool) -> None:
    assert names_agree(first, second) is agree
    assert names_agree(second, first) is agree
