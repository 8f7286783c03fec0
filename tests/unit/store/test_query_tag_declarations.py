"""Declaring extended query tags (what is refused and why) and reading their values from DICOM JSON."""

from __future__ import annotations

from typing import Any

import pytest

from app.dicomweb.query_keys import QueryKey, QueryLevel, Source
from app.store.query_tags import ExtendedKey, QueryTagError, parse_declaration, values_in


def _key(tag: int, vr: str, creator: str = "") -> ExtendedKey:
    key = QueryKey(
        f"{tag:08X}",
        QueryLevel.INSTANCE,
        None,
        Source.EXTENDED,
        matched=True,
        returned=False,
        path=(tag,),
        vr=vr,
    )
    return ExtendedKey(1, key, creator, "ready", 0, 0)


def test_public_attributes_take_their_dictionary_vr() -> None:
    declaration = parse_declaration("(0010,1030)", "Study")
    assert (declaration.tag, declaration.keyword, declaration.vr) == (0x00101030, "PatientWeight", "DS")
    assert declaration.level is QueryLevel.STUDY
    assert parse_declaration("00180015", "series").keyword == "BodyPartExamined"


@pytest.mark.parametrize(
    ("attribute", "vr", "creator", "message"),
    [
        ("PatientWeight", "LO", None, "its VR is DS"),
        ("00091010", "LO", None, "needs its private creator"),
        ("00091010", None, "ACME", "needs its VR"),
        ("00090010", "LO", "ACME", "private creator or reserved element"),
        ("PatientWeight", None, "ACME", "only goes with a private attribute"),
        ("00020010", None, None, "file meta"),
        ("ImageComments", None, None, "VR LT is not searchable"),
        ("StudyDate", None, None, "already a matching key"),
        ("Nonsense", None, None, "not a DICOM keyword"),
    ],
)
def test_declarations_that_cannot_be_made(
    attribute: str, vr: str | None, creator: str | None, message: str
) -> None:
    with pytest.raises(QueryTagError, match=message):
        parse_declaration(attribute, "instance", vr, creator)


def test_values_are_read_as_indexed() -> None:
    dataset: dict[str, Any] = {
        "00101030": {"vr": "DS", "Value": [72.5]},
        "00081070": {"vr": "PN", "Value": [{"Alphabetic": "Smith^Jo"}, {"Alphabetic": "SMITH^JO"}]},
        "00180015": {"vr": "CS", "Value": ["CHEST ", None]},
        "00091010": {"vr": "LO", "Value": ["in block 10"]},
        "00090010": {"vr": "LO", "Value": ["OTHER"]},
        "00090011": {"vr": "LO", "Value": ["ACME 1.0"]},
        "00091110": {"vr": "LO", "Value": ["in ACME's block"]},
    }
    assert values_in(dataset, _key(0x00101030, "DS")) == [72.5]
    assert values_in(dataset, _key(0x00081070, "PN")) == ["smith^jo"]  # folded, each value once
    assert values_in(dataset, _key(0x00180015, "CS")) == ["CHEST"]
    assert values_in(dataset, _key(0x00091010, "LO", "ACME 1.0")) == ["in ACME's block"]
    assert values_in(dataset, _key(0x00091010, "LO", "NOBODY")) == []
    assert values_in(dataset, _key(0x00100040, "CS")) == []
