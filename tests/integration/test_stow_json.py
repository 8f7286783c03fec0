"""STOW-RS with metadata and bulk data (PS3.18 10.5): DICOM JSON parts plus bulk data parts.

Round trips store real files described by pydicom's JSON writer and retrieve them as Part 10: every
attribute and every frame must come back equal, in the syntax the bulk parts' media types named.
Malformed bodies get a request error or failure entries, and leave the store as it was.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.conftest import Backend, LiveServer
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import IndexCounts, items, value_of
from tests.integration.test_stow_bad_input import Bystander
from tests.integration.test_wado_instances import ANY_SYNTAX, instance_url, multipart_parts
from tests.json_bulk_bodies import BOUNDARY, PIXEL_DATA, BulkBody, encapsulated_frames, json_bulk_content_type

FAILED, REFERENCED = "00081198", "00081199"
SOP_INSTANCE, FAILURE_REASON, ERROR_COMMENT = "00081155", "00081197", "00000902"
CANNOT_UNDERSTAND, SYNTAX_NOT_SUPPORTED = 0xC000, 0xC122


def post_json_bulk(
    server: LiveServer, body: bytes, *, part_type: str = "application/dicom+json"
) -> httpx.Response:
    return httpx.post(
        f"{server.dicomweb}/studies",
        content=body,
        headers={"Content-Type": json_bulk_content_type(part_type)},
        timeout=60,
    )


def retrieve_as_stored(server: LiveServer, ds: pydicom.Dataset) -> pydicom.Dataset:
    response = httpx.get(instance_url(server, ds), headers={"Accept": ANY_SYNTAX}, timeout=60)
    assert response.status_code == 200, response.text
    [(_, data)] = multipart_parts(response)
    return pydicom.dcmread(io.BytesIO(data))


def assert_same_instance(original: pydicom.Dataset, stored: pydicom.Dataset) -> None:
    syntax = original.file_meta.TransferSyntaxUID
    assert stored.file_meta.TransferSyntaxUID == syntax
    assert stored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert [element.tag for element in stored] == [element.tag for element in original]
    for element in original:
        if element.tag != 0x7FE00010:
            assert stored[element.tag].value == element.value, element
    if syntax.is_compressed:
        assert encapsulated_frames(stored) == encapsulated_frames(original)
    else:
        assert stored.PixelData == original.PixelData


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # native, 16-bit signed
        "SC_rgb_small_odd.dcm",  # native, odd length
        "MR_small_jpeg_ls_lossless.dcm",  # image/jls
        "SC_rgb_rle_2frame.dcm",  # image/dicom-rle, two frames: two parts at one location
        "JPEG2000.dcm",  # image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91 (lossy, not the default)
        "SC_rgb_jpeg_gdcm.dcm",  # image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70
    ],
)
def test_json_and_bulk_data_round_trip_to_the_same_instance(
    live_server: LiveServer, backend: Backend, name: str
) -> None:
    body = BulkBody()
    original = body.add_file(corpus_file(name).path)

    response = post_json_bulk(live_server, body.encode())

    assert response.status_code == 200, response.text
    [stored] = items(response.json(), REFERENCED)
    assert value_of(stored, SOP_INSTANCE) == original.SOPInstanceUID
    assert_same_instance(original, retrieve_as_stored(live_server, original))
    assert backend.spool_files() == []


def test_compressed_part_without_transfer_syntax_means_the_types_default(live_server: LiveServer) -> None:
    body = BulkBody()
    original = body.add_file(corpus_file("MR_small_jpeg_ls_lossless.dcm").path, with_syntax=False)
    assert all("transfer-syntax" not in headers["Content-Type"] for headers, _ in body.bulk)

    assert post_json_bulk(live_server, body.encode()).status_code == 200

    assert_same_instance(original, retrieve_as_stored(live_server, original))  # JPEG-LS Lossless (.80)


def test_several_instances_share_one_request(live_server: LiveServer) -> None:
    body = BulkBody()
    originals = [body.add_file(corpus_file(name).path) for name in ("CT_small.dcm", "SC_rgb_rle_2frame.dcm")]

    response = post_json_bulk(live_server, body.encode())

    assert response.status_code == 200, response.text
    stored = [value_of(item, SOP_INSTANCE) for item in items(response.json(), REFERENCED)]
    assert stored == [ds.SOPInstanceUID for ds in originals]
    for original in originals:
        assert_same_instance(original, retrieve_as_stored(live_server, original))


def test_generated_instance_round_trips_with_its_uids(live_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "generated.dcm"
    path.write_bytes(make_instance(rows=33, columns=17, frames=3, sop_uid=generate_uid()))
    body = BulkBody()
    original = body.add_file(path)

    response = post_json_bulk(live_server, body.encode())

    assert response.status_code == 200, response.text
    assert_same_instance(original, retrieve_as_stored(live_server, original))


@pytest.fixture
def bystander(live_server: LiveServer, backend: Backend) -> Bystander:
    return Bystander(live_server, backend)


def only_failure(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert REFERENCED not in body, body
    [failure] = items(body, FAILED)
    return failure


def test_bad_json_is_a_failure_entry_and_stores_nothing(
    live_server: LiveServer, bystander: Bystander
) -> None:
    body = BulkBody()
    body.add_file(corpus_file("CT_small.dcm").path)

    response = post_json_bulk(live_server, body.encode(metadata=b'[{"00080018": {"vr": "UI", "Value": ['))

    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == CANNOT_UNDERSTAND
    assert "not valid JSON" in value_of(failure, ERROR_COMMENT)
    bystander.assert_untouched()


def test_missing_bulk_part_fails_that_instance(live_server: LiveServer, bystander: Bystander) -> None:
    body = BulkBody()
    original = body.add_file(corpus_file("MR_small_jpeg_ls_lossless.dcm").path)
    body.bulk = [
        (headers, content)
        for headers, content in body.bulk
        if not headers["Content-Location"].endswith(PIXEL_DATA)
    ]

    response = post_json_bulk(live_server, body.encode())

    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, SOP_INSTANCE) == original.SOPInstanceUID
    assert value_of(failure, FAILURE_REASON) == CANNOT_UNDERSTAND
    assert "no part has the BulkDataURI" in value_of(failure, ERROR_COMMENT)
    bystander.assert_untouched()


def test_bulk_data_uri_pointing_nowhere_fails_only_that_instance(
    live_server: LiveServer, bystander: Bystander
) -> None:
    body = BulkBody()
    good = body.add_file(corpus_file("CT_small.dcm").path)
    bad = body.add_file(corpus_file("SC_rgb_rle_2frame.dcm").path)
    body.data_sets[1][PIXEL_DATA]["BulkDataURI"] = "http://elsewhere.example/frames/1"

    response = post_json_bulk(live_server, body.encode())

    assert response.status_code == 202
    [stored] = items(response.json(), REFERENCED)
    [failure] = items(response.json(), FAILED)
    assert value_of(stored, SOP_INSTANCE) == good.SOPInstanceUID
    assert value_of(failure, SOP_INSTANCE) == bad.SOPInstanceUID
    assert value_of(failure, FAILURE_REASON) == CANNOT_UNDERSTAND
    assert value_of(failure, ERROR_COMMENT).startswith("Pixel Data: no part has the BulkDataURI")
    bystander.assert_untouched(added=IndexCounts(0, 0, 1, 0))


def test_transfer_syntax_the_media_type_cannot_carry_fails(
    live_server: LiveServer, bystander: Bystander
) -> None:
    body = BulkBody()
    body.add_file(corpus_file("MR_small_jpeg_ls_lossless.dcm").path)
    body.bulk = [
        ({**headers, "Content-Type": "image/jls; transfer-syntax=1.2.840.10008.1.2.4.50"}, content)
        if headers["Content-Location"].endswith(PIXEL_DATA)
        else (headers, content)
        for headers, content in body.bulk
    ]

    response = post_json_bulk(live_server, body.encode())

    assert value_of(only_failure(response), FAILURE_REASON) == SYNTAX_NOT_SUPPORTED
    bystander.assert_untouched()


def test_metadata_without_sop_instance_uid_fails(live_server: LiveServer, bystander: Bystander) -> None:
    body = BulkBody()
    body.add_file(corpus_file("CT_small.dcm").path)
    del body.data_sets[0]["00080018"]

    response = post_json_bulk(live_server, body.encode())

    assert response.status_code == 400
    assert value_of(only_failure(response), FAILURE_REASON) == 0xA900  # Data Set does not match SOP Class
    bystander.assert_untouched()


@pytest.mark.parametrize(
    "metadata",
    [b"[]", b'"a string"', b'[{"0008001": {"vr": "UI"}}]', b'[{"00080018": {"vr": "XX", "Value": [1]}}]'],
    ids=["empty-array", "not-an-object", "bad-tag", "bad-vr"],
)
def test_json_that_is_not_a_data_set_is_refused(
    live_server: LiveServer, bystander: Bystander, metadata: bytes
) -> None:
    response = post_json_bulk(live_server, BulkBody().encode(metadata=metadata))

    assert response.status_code == 400
    if response.headers["content-type"] == "application/dicom+json":
        assert value_of(only_failure(response), FAILURE_REASON) == CANNOT_UNDERSTAND
    else:
        assert "describe no instance" in response.json()["error"]
    bystander.assert_untouched()


def test_body_without_metadata_part_is_400(live_server: LiveServer, bystander: Bystander) -> None:
    body = BulkBody()
    body.add_file(corpus_file("CT_small.dcm").path)

    response = post_json_bulk(live_server, body.encode(metadata_type="application/octet-stream"))

    assert response.status_code == 400
    assert "application/dicom+json" in response.json()["error"]
    bystander.assert_untouched()


@pytest.mark.parametrize("names", [("CT_small.dcm", "MR_small_jpeg_ls_lossless.dcm")])
def test_xml_metadata_and_bulk_data_round_trip(live_server: LiveServer, names: tuple[str, ...]) -> None:
    body = BulkBody()
    originals = [body.add_file(corpus_file(name).path) for name in names]

    response = post_json_bulk(live_server, body.encode_xml(), part_type="application/dicom+xml")

    assert response.status_code == 200, response.text
    for original in originals:
        assert_same_instance(original, retrieve_as_stored(live_server, original))


@pytest.mark.parametrize(
    "metadata",
    [b"<NativeDicomModel><DicomAttribute", b'<!DOCTYPE x [<!ENTITY a "b">]><NativeDicomModel/>', b"<x/>"],
    ids=["not-well-formed", "dtd", "other-root"],
)
def test_xml_that_is_not_a_native_dicom_model_fails(
    live_server: LiveServer, bystander: Bystander, metadata: bytes
) -> None:
    body = f"--{BOUNDARY}\r\nContent-Type: application/dicom+xml\r\n\r\n".encode() + metadata
    body += f"\r\n--{BOUNDARY}--\r\n".encode()

    response = post_json_bulk(live_server, body, part_type="application/dicom+xml")

    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == CANNOT_UNDERSTAND
    assert value_of(failure, ERROR_COMMENT).startswith("metadata part: ")
    bystander.assert_untouched()


def test_metadata_part_may_hold_one_object(live_server: LiveServer) -> None:
    body = BulkBody()
    original = body.add_file(corpus_file("CT_small.dcm").path)
    single_object = orjson.dumps(body.data_sets[0])  # one object rather than an array is accepted

    response = post_json_bulk(live_server, body.encode(metadata=single_object))

    assert response.status_code == 200, response.text
    assert_same_instance(original, retrieve_as_stored(live_server, original))
