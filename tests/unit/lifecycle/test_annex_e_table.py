"""The Basic Profile checked against PS3.15 Table E.1-1, one test per row of the table.

The rows come straight from dicom-anonymizer's transcription of the table (not through Fovea's
reading of it); what each action code means is written here from Table E.1-1a, independently of
Fovea's choices: X removed; Z present and empty; D present, filled, and not the original; U a UID,
not the original, the keyed replacement; X/Z/U* sequences kept with their UIDs replaced.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage

from app.lifecycle.confidentiality_profile import TABLE_EDITION, DateHandling, ProfileOptions
from app.lifecycle.deidentify import Deidentifier
from app.lifecycle.pseudonyms import Pseudonyms

SECRET = "annex-e-test-secret-0123456789abcdef"
ORIGINAL_UID = "1.2.826.0.1.3680043.10.1234.77"
REFERENCED_UID = "1.2.826.0.1.3680043.10.1234.78"
_TABLE = import_module(f"dicomanonymizer.dicom_anonymization_databases.{TABLE_EDITION}")
_CODE_LISTS = {
    "D": "D_TAGS",
    "Z": "Z_TAGS",
    "X": "X_TAGS",
    "U": "U_TAGS",
    "Z/D": "Z_D_TAGS",
    "X/Z": "X_Z_TAGS",
    "X/D": "X_D_TAGS",
    "X/Z/D": "X_Z_D_TAGS",
    "X/Z/U*": "X_Z_U_STAR_TAGS",
}


def table_rows() -> list[tuple[str, int]]:
    """(action code, tag) for every row of the Basic Profile column; repeating groups as one example."""
    rows = []
    for code, list_name in _CODE_LISTS.items():
        for entry in getattr(_TABLE, list_name):
            if len(entry) == 4:  # (group, element, group mask, element mask): the 2nd group of the range
                group, element, _group_mask, element_mask = entry
                rows.append((code, (group + 2) << 16 | (element if element_mask else 0x0010)))
            else:
                rows.append((code, entry[0] << 16 | entry[1]))
    return rows


def vr_of(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"  # newer than pydicom's dictionary: read as UN from a file


def identifying_value(vr: str) -> Any:
    """A value of `vr` such as a source file could hold."""
    if vr == "SQ":
        item = Dataset()
        item.ReferencedSOPClassUID = CTImageStorage
        item.ReferencedSOPInstanceUID = REFERENCED_UID
        return Sequence([item])
    return {
        "PN": "Doe^John",
        "DA": "20240315",
        "DT": "20240315101112",
        "TM": "101112",
        "AS": "042Y",
        "DS": "12.5",
        "IS": "42",
        "UI": ORIGINAL_UID,
        "UR": "http://hospital.example/record",
        "CS": "IDENTIFYING",
        "AT": 0x00100010,
        "FL": 7.0,
        "FD": 7.0,
        "SL": 7,
        "SS": 7,
        "UL": 7,
        "US": 7,
        "SV": 7,
        "UV": 7,
    }.get(vr, b"IDENTIFY" if vr in ("OB", "OD", "OF", "OL", "OV", "OW", "UN") else "Identifying text")


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == b"" or (isinstance(value, Sequence) and len(value) == 0)


@pytest.fixture(scope="module")
def deidentifier() -> Deidentifier:
    # The Basic Profile alone: every option off, dates as the table says.
    return Deidentifier(Pseudonyms(SECRET), ProfileOptions(dates=DateHandling.REMOVE))


def test_the_table_has_every_code_and_hundreds_of_rows() -> None:
    rows = table_rows()
    assert len(rows) > 600
    assert {code for code, _tag in rows} == set(_CODE_LISTS)


@pytest.mark.parametrize(("code", "tag"), table_rows(), ids=lambda v: f"{v:08X}" if isinstance(v, int) else v)
def test_each_row_of_table_e1_1_is_handled_as_its_action_code(
    deidentifier: Deidentifier, code: str, tag: int
) -> None:
    vr = vr_of(tag)
    original = identifying_value(vr)
    ds = Dataset()
    ds.add_new(tag, vr, original)
    deidentifier.deidentify(ds)
    replacement = deidentifier.pseudonyms.uid(ORIGINAL_UID)

    if code in ("X", "X/Z", "X/D", "X/Z/D"):
        assert tag not in ds
    elif code == "Z":
        assert tag in ds and is_empty(ds[tag].value)
    elif code in ("D", "Z/D"):
        value = ds[tag].value
        assert not is_empty(value)
        if vr == "SQ":  # a dummy sequence: its contents cleaned, its UIDs replaced
            assert value[0].ReferencedSOPInstanceUID == deidentifier.pseudonyms.uid(REFERENCED_UID)
        elif vr == "UI":
            assert value == replacement
        else:
            assert value != original
    elif code == "U":
        assert ds[tag].value == replacement != ORIGINAL_UID
    else:  # X/Z/U*: either gone, empty, or kept with the contained UIDs replaced
        if tag in ds and not is_empty(ds[tag].value):
            for item in ds[tag].value:
                assert item.ReferencedSOPInstanceUID == deidentifier.pseudonyms.uid(REFERENCED_UID)
    assert ds.PatientIdentityRemoved == "YES"
