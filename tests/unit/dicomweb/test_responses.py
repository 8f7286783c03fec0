"""Store Instances Response module and the STOW-RS status table (PS3.18 Annex I, Table 10.5.3-1)."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from pydicom.uid import CTImageStorage

from app.dicomweb.responses import (
    FailureReason,
    InstanceOutcome,
    WarningReason,
    dicom_json_to_xml,
    store_response_dataset,
    store_status,
)


def stored(sop: str = "1.2.3", warning: WarningReason | None = None, study: str = "9.8") -> InstanceOutcome:
    return InstanceOutcome(CTImageStorage, sop, study, "9.8.7", warning=warning)


def failed(reason: FailureReason, sop: str = "1.2.4") -> InstanceOutcome:
    return InstanceOutcome(CTImageStorage, sop, failure=reason, comment="why")


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([stored(), stored("1.2.5")], 200),
        ([stored(warning=WarningReason.REPLACED_STORED_INSTANCE)], 202),
        ([stored(), failed(FailureReason.CANNOT_UNDERSTAND)], 202),
        (
            [
                failed(FailureReason.CANNOT_UNDERSTAND),
                failed(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
            ],
            400,
        ),
        ([failed(FailureReason.STUDY_INSTANCE_UID_MISMATCH)], 409),
        ([failed(FailureReason.DUPLICATE_SOP_INSTANCE)], 409),
        ([failed(FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED)], 409),
        ([failed(FailureReason.CANNOT_UNDERSTAND), failed(FailureReason.DUPLICATE_SOP_INSTANCE)], 409),
        ([failed(FailureReason.OUT_OF_RESOURCES)], 413),
        ([failed(FailureReason.PROCESSING_FAILURE)], 503),
    ],
)
def test_store_status_follows_table_10_5_3_1(outcomes: list[InstanceOutcome], status: int) -> None:
    assert store_status(outcomes) == status


def _dataset(outcomes: list[InstanceOutcome], study: str | None = None) -> dict[str, object]:
    return store_response_dataset(
        outcomes,
        base_url="http://h/dw",
        study_instance_uid=study,
    )


def test_response_dataset_has_exact_shape() -> None:
    dataset = _dataset(
        [stored(warning=WarningReason.REPLACED_STORED_INSTANCE), failed(FailureReason.CANNOT_UNDERSTAND)]
    )
    assert dataset == {
        "00081190": {"vr": "UR", "Value": ["http://h/dw/studies/9.8"]},
        "00081198": {
            "vr": "SQ",
            "Value": [
                {
                    "00000902": {"vr": "LO", "Value": ["why"]},
                    "00081150": {"vr": "UI", "Value": [CTImageStorage]},
                    "00081155": {"vr": "UI", "Value": ["1.2.4"]},
                    "00081197": {"vr": "US", "Value": [0xC000]},
                }
            ],
        },
        "00081199": {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": [CTImageStorage]},
                    "00081155": {"vr": "UI", "Value": ["1.2.3"]},
                    "00081190": {
                        "vr": "UR",
                        "Value": ["http://h/dw/studies/9.8/series/9.8.7/instances/1.2.3"],
                    },
                    "00081196": {"vr": "US", "Value": [0xB100]},
                }
            ],
        },
    }


def test_retrieve_url_is_empty_for_several_studies_and_for_nothing_stored() -> None:
    assert _dataset([stored(study="1.1"), stored("1.2.9", study="1.2")])["00081190"] == {"vr": "UR"}
    assert _dataset([failed(FailureReason.CANNOT_UNDERSTAND)])["00081190"] == {"vr": "UR"}


def test_retrieve_url_names_the_study_of_the_request_url() -> None:
    dataset = _dataset([failed(FailureReason.STUDY_INSTANCE_UID_MISMATCH)], study="5.5")
    assert dataset["00081190"] == {"vr": "UR", "Value": ["http://h/dw/studies/5.5"]}


def test_unknown_uids_of_unreadable_parts_are_empty_attributes() -> None:
    dataset = _dataset([InstanceOutcome("", "", failure=FailureReason.CANNOT_UNDERSTAND)])
    [item] = dataset["00081198"]["Value"]  # type: ignore[index]
    assert item["00081150"] == {"vr": "UI"} and item["00081155"] == {"vr": "UI"}


@pytest.mark.parametrize("damaged", ["1.2.3?4", "1.2.03", "CT Image", "1." + "2" * 70, "1.2\x00"])
def test_damaged_uids_of_refused_instances_are_not_echoed(damaged: str) -> None:
    """A flipped byte in a refused file's UID must not put an invalid UI value into the response."""
    dataset = _dataset([InstanceOutcome(damaged, damaged, failure=FailureReason.CANNOT_UNDERSTAND)])
    [item] = dataset["00081198"]["Value"]  # type: ignore[index]
    assert item["00081150"] == {"vr": "UI"} and item["00081155"] == {"vr": "UI"}
    assert damaged not in dicom_json_to_xml(dataset).decode("utf-8")


def test_xml_rendering_follows_the_native_dicom_model() -> None:
    xml = dicom_json_to_xml(_dataset([stored()]))
    root = ElementTree.fromstring(xml)
    ns = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
    assert root.tag == f"{ns}NativeDicomModel"
    [sequence] = root.findall(f"{ns}DicomAttribute[@tag='00081199']")
    assert sequence.get("vr") == "SQ" and sequence.get("keyword") == "ReferencedSOPSequence"
    [item] = sequence.findall(f"{ns}Item")
    assert item.get("number") == "1"
    value = item.find(f"{ns}DicomAttribute[@tag='00081155']/{ns}Value")
    assert value is not None and value.get("number") == "1" and value.text == "1.2.3"
