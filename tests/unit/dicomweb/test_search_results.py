"""QIDO-RS result attributes as DICOM JSON (PS3.18 F.2)."""

from __future__ import annotations

from app.dicomweb.search_results import StoredElement, result_to_dicom_json, vr_of


def test_values_take_their_json_form_by_vr() -> None:
    dataset = result_to_dicom_json(
        {
            0x00100010: "Doe^John=ドウ^ジョン",  # PN: component groups
            0x00200011: 7,  # IS: a number
            0x00200013: "12",  # IS text: a number too
            0x00080061: ["CT", "MR"],
            0x00080020: "20260101",
            0x00080050: "",  # empty: vr only
            0x00080008: "ORIGINAL\\PRIMARY",  # multi-valued text
            0x00280010: 512,
        }
    )
    assert dataset["00100010"] == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Doe^John", "Ideographic": "ドウ^ジョン"}],
    }
    assert dataset["00200011"] == {"vr": "IS", "Value": [7]}
    assert dataset["00200013"] == {"vr": "IS", "Value": [12]}
    assert dataset["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert dataset["00080050"] == {"vr": "SH"}
    assert dataset["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]}
    assert dataset["00280010"] == {"vr": "US", "Value": [512]}
    assert list(dataset) == sorted(dataset)


def test_if_known_attributes_are_left_out_when_empty() -> None:
    dataset = result_to_dicom_json({0x00080201: "", 0x00280008: None, 0x00100030: ""})
    assert dataset == {"00100030": {"vr": "DA"}}


def test_sequences_and_stored_elements() -> None:
    stored = StoredElement({"vr": "DS", "Value": [1.25]})
    dataset = result_to_dicom_json(
        {0x00400275: [{0x00400009: "SPS-1", 0x00401001: ""}], 0x00180050: stored, 0x00400274: []}
    )
    assert dataset["00400275"] == {
        "vr": "SQ",
        "Value": [{"00400009": {"vr": "SH", "Value": ["SPS-1"]}, "00401001": {"vr": "SH"}}],
    }
    assert dataset["00180050"] == {"vr": "DS", "Value": [1.25]}


def test_ambiguous_and_unknown_vrs() -> None:
    assert vr_of(0x00280106) == "US"  # "US or SS": the index keeps unsigned values
    assert vr_of(0x00091001) == "UN"
