"""The de-identified rendition's pure parts: withholding, the study map, DICOM JSON through the profile."""

from __future__ import annotations

import pytest
from pydicom.uid import CTImageStorage, SecondaryCaptureImageStorage

from app.dicomweb.scope import Scope
from app.lifecycle.confidentiality_profile import ProfileOptions
from app.lifecycle.deidentify import Deidentifier
from app.lifecycle.pseudonyms import Pseudonyms
from app.lifecycle.rendition import Rendition, StudyMap, may_show_identifying_text
from app.store.read.rendition_index import StudyMember

CT, SC = CTImageStorage, SecondaryCaptureImageStorage
PSEUDONYMS = Pseudonyms("p" * 40)
BASE = "https://fovea.example/dicom-web/deidentified"


def rendition(**options: object) -> Rendition:
    return Rendition(Deidentifier(PSEUDONYMS, ProfileOptions(**options)), allow_burned_in=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sop_class", "burned_in", "withheld"),
    [
        (CT, "YES", True),
        (CT, "", False),
        (CT, "NO", False),
        (SC, "", True),
        (SC, "NO", False),
        (SC, "YES", True),
    ],
)
def test_which_instances_may_show_identifying_text(sop_class: str, burned_in: str, withheld: bool) -> None:
    assert may_show_identifying_text(StudyMember("4", "5", sop_class, burned_in, has_pixels=True)) is withheld


def study_map() -> StudyMap:
    members = [
        StudyMember("1.2.4", "1.2.4.5", CT, "", has_pixels=True),
        StudyMember("1.2.4", "1.2.4.6", CT, "YES", has_pixels=True),
        StudyMember("1.2.7", "1.2.7.8", CT, "", has_pixels=True),
    ]
    replacements = {
        "1.2.4": "2.25.4",
        "1.2.4.5": "2.25.5",
        "1.2.4.6": "2.25.6",
        "1.2.7": "2.25.7",
        "1.2.7.8": "2.25.8",
    }
    return StudyMap("1.2", "2.25.1", members, frozenset({"1.2.4.6"}), replacements)


def test_replacements_resolve_within_their_series_and_not_when_withheld() -> None:
    study = study_map()
    assert study.original_scope("2.25.4", "2.25.5") == Scope("1.2", "1.2.4", "1.2.4.5")
    assert study.original_scope("2.25.4", None) == Scope("1.2", "1.2.4")
    assert study.original_scope("2.25.7", "2.25.5") is None  # an instance of another series
    assert study.original_scope("2.25.4", "2.25.6") is None  # withheld
    assert study.original_scope("1.2.4", "1.2.4.5") is None  # originals are not names here
    assert [m.sop_instance_uid for m in study.served(Scope("1.2"))] == ["1.2.4.5", "1.2.7.8"]


def test_error_messages_name_replacements_whole_uids_at_a_time() -> None:
    message = "no frame 9 of instance 1.2.4.5 in series 1.2.4 of study 1.2 (not 1.2.3)"
    assert (
        study_map().scrub(message)
        == "no frame 9 of instance 2.25.5 in series 2.25.4 of study 2.25.1 (not 1.2.3)"
    )


def test_dicom_json_is_de_identified_with_bulk_data_uris_under_the_rendition() -> None:
    stored = {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00100020": {"vr": "LO", "Value": ["MRN-1"]},
        "0020000D": {"vr": "UI", "Value": ["1.2"]},
        "0020000E": {"vr": "UI", "Value": ["1.2.4"]},
        "00080018": {"vr": "UI", "Value": ["1.2.4.5"]},
        "00282000": {
            "vr": "OB",
            "BulkDataURI": "studies/1.2/series/1.2.4/instances/1.2.4.5/bulkdata/00282000",
        },
        "00091010": {
            "vr": "OB",
            "BulkDataURI": "studies/1.2/series/1.2.4/instances/1.2.4.5/bulkdata/00091010",
        },
        "7FE00010": {
            "vr": "OW",
            "BulkDataURI": "studies/1.2/series/1.2.4/instances/1.2.4.5/bulkdata/7FE00010",
        },
    }
    result = rendition().dicom_json(stored, BASE)
    new = PSEUDONYMS.uid
    instance = f"{BASE}/studies/{new('1.2')}/series/{new('1.2.4')}/instances/{new('1.2.4.5')}"
    assert result["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{instance}/bulkdata/7FE00010"}
    assert result["00282000"] == {
        "vr": "OB",
        "BulkDataURI": f"{instance}/bulkdata/00282000",
    }  # kept by the table
    assert "00091010" not in result  # private: removed
    assert result["0020000D"]["Value"] == [new("1.2")]
    assert result["00100020"]["Value"] == [PSEUDONYMS.patient_id("MRN-1")]
    assert "Value" not in result["00100010"]
    assert result["00120062"]["Value"] == ["YES"]


def test_retain_uids_keeps_the_originals_as_the_replacements() -> None:
    assert rendition(retain_uids=True).replacement_uid("1.2.3") == "1.2.3"
    assert rendition().replacement_uid("1.2.3") == PSEUDONYMS.uid("1.2.3")


@pytest.mark.parametrize("retain_safe_private", [False, True])
def test_safe_private_attributes_follow_the_option(retain_safe_private: bool) -> None:
    stored = {
        "00190010": {"vr": "LO", "Value": ["SIEMENS MR HEADER"]},
        "0019100C": {"vr": "IS", "Value": [1000]},  # B_value: safe
        "00191008": {"vr": "CS", "Value": ["IMAGE NUM 4"]},  # not on the safe list
        "00081140": {"vr": "SQ", "Value": [{"00291010": {"vr": "OB", "InlineBinary": "AAAA"}}]},
    }
    result = rendition(retain_safe_private=retain_safe_private).dicom_json(stored, BASE)
    kept = {tag for tag in result if int(tag[3], 16) % 2}
    assert kept == ({"00190010", "0019100C"} if retain_safe_private else set())
    assert all(int(tag[3], 16) % 2 == 0 for item in result["00081140"]["Value"] for tag in item)
