"""Spooled metadata and bulk data parts into Part 10 files (api/stow_json.py, dicomweb/json_part10.py).

Real files are written and read back with pydicom; no server is needed for these rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from app.api.multipart import SpooledPart
from app.api.stow_json import instances_from_parts
from app.dicomweb.errors import BadRequest
from app.dicomweb.mediatypes import DICOM_JSON
from app.store.write.ingest import IngestResult
from app.store.write.parse import Problem

SOP_CLASS, SOP_INSTANCE = SecondaryCaptureImageStorage, "2.25.1234567890"


def data_set(**extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "00080016": {"vr": "UI", "Value": [SOP_CLASS]},
        "00080018": {"vr": "UI", "Value": [SOP_INSTANCE]},
        "0020000D": {"vr": "UI", "Value": ["2.25.1"]},
        "0020000E": {"vr": "UI", "Value": ["2.25.2"]},
        "00280002": {"vr": "US", "Value": [1]},
        "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
        "00280010": {"vr": "US", "Value": [1]},
        "00280011": {"vr": "US", "Value": [3]},
        "00280100": {"vr": "US", "Value": [8]},
        "00280101": {"vr": "US", "Value": [8]},
        "00280102": {"vr": "US", "Value": [7]},
        "00280103": {"vr": "US", "Value": [0]},
    }
    attributes.update(extra)
    return attributes


def spooled(tmp_path: Path, parts: list[tuple[dict[str, str], bytes]]) -> list[SpooledPart]:
    found = []
    for index, (headers, content) in enumerate(parts):
        path = tmp_path / f"part-{index}"
        path.write_bytes(content)
        lowered = {name.lower(): value for name, value in headers.items()}
        found.append(SpooledPart(index=index, path=path, headers=lowered, size=len(content)))
    return found


def build(tmp_path: Path, parts: list[tuple[dict[str, str], bytes]]) -> list[Path | IngestResult]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return instances_from_parts(spooled(tmp_path, parts), out, 10_000_000, DICOM_JSON)


def metadata(*data_sets: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/dicom+json"}, orjson.dumps(list(data_sets))


def test_odd_native_pixels_are_padded_and_the_file_meta_is_made(tmp_path: Path) -> None:
    pixels = b"\x01\x02\x03"
    [built] = build(
        tmp_path,
        [
            metadata(data_set(**{"7FE00010": {"vr": "OB", "BulkDataURI": "http://x/pixels"}})),
            ({"Content-Type": "application/octet-stream", "Content-Location": "http://x/pixels"}, pixels),
        ],
    )
    assert isinstance(built, Path)
    ds = pydicom.dcmread(built)
    assert ds.PixelData == pixels + b"\x00"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == SOP_CLASS
    assert ds.file_meta.MediaStorageSOPInstanceUID == SOP_INSTANCE
    assert ds.file_meta.ImplementationClassUID


def test_a_content_id_is_named_by_cid(tmp_path: Path) -> None:
    [built] = build(
        tmp_path,
        [
            metadata(data_set(**{"7FE00010": {"vr": "OB", "BulkDataURI": "cid:pixels@example"}})),
            ({"Content-ID": "<pixels@example>"}, b"\x05\x06\x07\x08"),
        ],
    )
    assert isinstance(built, Path)
    assert pydicom.dcmread(built).PixelData == b"\x05\x06\x07\x08"


def test_non_binary_bulk_values_are_decoded_in_the_character_set(tmp_path: Path) -> None:
    attributes = data_set(
        **{
            "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
            "00200037": {"vr": "DS", "BulkDataURI": "orientation"},
            "00204000": {"vr": "LT", "BulkDataURI": "comments"},
            "00280106": {"vr": "US", "BulkDataURI": "smallest"},
        }
    )
    [built] = build(
        tmp_path,
        [
            metadata(attributes),
            ({"Content-Location": "orientation"}, b"1\\0\\0\\0\\1\\0"),
            ({"Content-Location": "comments"}, "Grüße".encode("latin-1")),
            ({"Content-Location": "smallest"}, b"\x10\x00"),
        ],
    )
    assert isinstance(built, Path)
    ds = pydicom.dcmread(built)
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert ds.ImageComments == "Grüße"
    assert ds.SmallestImagePixelValue == 16


def test_file_meta_in_the_json_is_ignored(tmp_path: Path) -> None:
    attributes = data_set(**{"00020010": {"vr": "UI", "Value": [ExplicitVRBigEndian]}})
    [built] = build(tmp_path, [metadata(attributes)])
    assert isinstance(built, Path)
    ds = pydicom.dcmread(built)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "PixelData" not in ds


def test_frames_of_another_type_than_their_siblings_fail(tmp_path: Path) -> None:
    attributes = data_set(
        **{"00280008": {"vr": "IS", "Value": [2]}, "7FE00010": {"vr": "OB", "BulkDataURI": "f"}}
    )
    [refused] = build(
        tmp_path,
        [
            metadata(attributes),
            ({"Content-Type": "image/jls", "Content-Location": "f"}, b"\xff\xd8"),
            ({"Content-Type": "image/jpeg", "Content-Location": "f"}, b"\xff\xd8"),
        ],
    )
    assert isinstance(refused, IngestResult)
    assert refused.problem is Problem.NOT_DICOM
    assert refused.sop_instance_uid == SOP_INSTANCE
    assert "differ" in refused.message
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("element", "problem"),
    [
        ({"vr": "SQ", "Value": [{"0008001": {"vr": "CS"}}]}, "not a tag"),  # nested bad key
        ({"vr": "SQ", "Value": [{"00080100": {"vr": "QQ"}}]}, "not a VR"),
        ({"vr": "OB", "BulkDataURI": "missing"}, "no part has the BulkDataURI"),
        ({"vr": "OB", "BulkDataURI": 7}, "cannot be read as DICOM JSON"),
    ],
)
def test_malformed_elements_fail_the_instance(tmp_path: Path, element: dict[str, Any], problem: str) -> None:
    [refused] = build(tmp_path, [metadata(data_set(**{"00081115": element}))])
    assert isinstance(refused, IngestResult)
    assert refused.problem is Problem.NOT_DICOM
    assert problem in refused.message


def test_no_metadata_part_is_a_request_error(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="no application/dicom\\+json part"):
        build(tmp_path, [({"Content-Type": "application/octet-stream"}, b"x"), ({}, b"y")])


def test_bulk_values_inside_sequence_items_are_written_in_place(tmp_path: Path) -> None:
    lut = bytes(range(256)) * 8  # 2048 bytes of OW, inside an item
    item = {"00283006": {"vr": "OW", "BulkDataURI": "lut"}, "00283002": {"vr": "US", "Value": [1024, 0, 16]}}
    attributes = data_set(
        **{"00283010": {"vr": "SQ", "Value": [item]}, "00204000": {"vr": "LT", "Value": ["after"]}}
    )
    [built] = build(tmp_path, [metadata(attributes), ({"Content-Location": "lut"}, lut)])
    assert isinstance(built, Path)
    ds = pydicom.dcmread(built)
    assert ds.VOILUTSequence[0][0x00283006].value == lut
    assert ds.ImageComments == "after"
