"""WADO-RS study, series and instance resources against a live server (PS3.18 10.4.1.1.1).

Every instance that comes back is read again by pydicom and compared with what was stored: the bytes
as received for `transfer-syntax=*` on an allowed syntax, else an Explicit VR Little Endian file whose
pixels equal pydicom's own decoding of the original.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import LiveServer
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import post_stow

DICOM = "application/dicom"
ANY_SYNTAX = f'multipart/related; type="{DICOM}"; transfer-syntax=*'


def instance_url(server: LiveServer, ds: pydicom.Dataset) -> str:
    return (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def multipart_parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) of each part, headers exactly as sent (RFC 2046 framing)."""
    boundary = response.headers["content-type"].split("boundary=")[1].strip('"').encode()
    body = response.content
    assert body.startswith(b"--" + boundary + b"\r\n") and body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for chunk in body[: -len(boundary) - 6].split(b"--" + boundary + b"\r\n")[1:]:
        head, _, payload = chunk.partition(b"\r\n\r\n")
        assert payload.endswith(b"\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        parts.append(({k.lower(): v for k, v in headers.items()}, payload[:-2]))
    return parts


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_transfer_syntax_star_returns_the_stored_file(live_server: LiveServer) -> None:
    sent = make_instance(frames=3)
    assert post_stow(live_server, [sent]).status_code == 200
    ds = read(sent)
    response = httpx.get(instance_url(live_server, ds), headers={"Accept": ANY_SYNTAX})
    assert response.status_code == 200
    [(headers, body)] = multipart_parts(response)
    assert headers["content-type"] == f"{DICOM}; transfer-syntax={ExplicitVRLittleEndian}"
    assert headers["content-location"] == instance_url(live_server, ds)
    assert body == sent

    single = httpx.get(instance_url(live_server, ds), headers={"Accept": DICOM})
    assert single.status_code == 200
    assert single.headers["content-type"] == f"{DICOM}; transfer-syntax={ExplicitVRLittleEndian}"
    assert single.content == sent


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",  # Implicit VR LE: never on the web, rewritten
        "MR_small_bigendian.dcm",  # Explicit VR BE: rewritten, words swapped
        "SC_rgb_small_odd_big_endian.dcm",
        "image_dfl.dcm",  # deflated data set: rewritten from the inflated copy by default
    ],
)
def test_native_syntaxes_become_explicit_vr_little_endian(live_server: LiveServer, name: str) -> None:
    corpus = corpus_file(name)
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    original = pydicom.dcmread(corpus.path)
    for accept in (DICOM, f'multipart/related; type="{DICOM}"'):
        response = httpx.get(instance_url(live_server, original), headers={"Accept": accept})
        assert response.status_code == 200, response.text
        body = response.content if accept == DICOM else multipart_parts(response)[0][1]
        returned = read(body)
        assert returned.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert np.array_equal(returned.pixel_array, original.pixel_array)
        assert returned.PatientName == original.PatientName
        assert returned.SOPInstanceUID == original.SOPInstanceUID


def test_deflated_data_set_as_stored_with_star(live_server: LiveServer) -> None:
    corpus = corpus_file("image_dfl.dcm")
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    ds = pydicom.dcmread(corpus.path)
    response = httpx.get(instance_url(live_server, ds), headers={"Accept": ANY_SYNTAX})
    [(headers, body)] = multipart_parts(response)
    assert headers["content-type"] == f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.1.99"
    assert body == corpus.path.read_bytes()


@pytest.mark.parametrize(
    ("name", "lossy"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", False),
        ("SC_rgb_rle_2frame.dcm", False),
        ("MR_small_jp2klossless.dcm", False),
        ("SC_rgb_jpeg_gdcm.dcm", False),  # JPEG lossless, RGB
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", True),  # JPEG baseline YBR_FULL_422: RGB after decoding
        ("JPEG2000.dcm", True),  # JPEG 2000 irreversible, greyscale
    ],
)
def test_compressed_instances_are_decoded_to_explicit_vr_little_endian(
    live_server: LiveServer, name: str, lossy: bool
) -> None:
    corpus = corpus_file(name)
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    original = pydicom.dcmread(corpus.path)
    response = httpx.get(instance_url(live_server, original), headers={"Accept": DICOM})
    assert response.status_code == 200, response.text
    returned = read(response.content)
    assert returned.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "ExtendedOffsetTable" not in returned
    assert np.array_equal(returned.pixel_array, original.pixel_array)
    if lossy:
        assert returned.LossyImageCompression == "01"
    if int(original.SamplesPerPixel) == 3:
        assert returned.PhotometricInterpretation == "RGB"
        assert returned.PlanarConfiguration == 0

    stored = httpx.get(instance_url(live_server, original), headers={"Accept": ANY_SYNTAX})
    [(headers, body)] = multipart_parts(stored)
    assert headers["content-type"] == f"{DICOM}; transfer-syntax={corpus.transfer_syntax_uid}"
    assert body == corpus.path.read_bytes()


def test_unproducible_syntax_is_406_naming_the_offers(live_server: LiveServer) -> None:
    sent = make_instance()  # 16-bit signed: JPEG baseline cannot hold it
    post_stow(live_server, [sent])
    response = httpx.get(
        instance_url(live_server, read(sent)),
        headers={"Accept": f'multipart/related; type="{DICOM}"; transfer-syntax=1.2.840.10008.1.2.4.50'},
    )
    assert response.status_code == 406
    assert ExplicitVRLittleEndian in response.json()["error"]


def test_study_and_series_stream_every_instance(live_server: LiveServer) -> None:
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    sent = {}
    for index in range(5):
        data = make_instance(study_uid=study, series_uid=series[index % 2], seed=index)
        sent[read(data).SOPInstanceUID] = data
    post_stow(live_server, list(sent.values()))

    response = httpx.get(f"{live_server.dicomweb}/studies/{study}", headers={"Accept": ANY_SYNTAX})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(f'multipart/related; type="{DICOM}"; boundary=')
    parts = multipart_parts(response)
    assert {read(body).SOPInstanceUID: body for _, body in parts} == sent
    for headers, body in parts:
        assert headers["content-location"].endswith(f"/instances/{read(body).SOPInstanceUID}")

    client = DICOMwebClient(url=live_server.dicomweb)
    assert len(client.retrieve_series(study, series[0])) == 3
    one = read(sent[next(iter(sent))])
    assert client.retrieve_instance(study, one.SeriesInstanceUID, one.SOPInstanceUID).SOPInstanceUID == (
        one.SOPInstanceUID
    )
    assert httpx.get(f"{live_server.dicomweb}/studies/{generate_uid()}").status_code == 404
    assert httpx.get(f"{live_server.dicomweb}/studies/1.2.x").status_code == 400


def test_octet_stream_on_a_study_is_its_bulk_data(live_server: LiveServer) -> None:
    study = generate_uid()
    sent = [make_instance(study_uid=study, frames=2, seed=1), make_instance(study_uid=study, seed=2)]
    post_stow(live_server, sent)
    response = httpx.get(
        f"{live_server.dicomweb}/studies/{study}",
        headers={"Accept": 'multipart/related; type="application/octet-stream"'},
    )
    assert response.status_code == 200
    parts = multipart_parts(response)
    assert [h["content-type"] for h, _ in parts] == [
        f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    ] * 3
    expected = [read(data).PixelData for data in sent]
    frames = [body for _, body in parts]
    assert b"".join(frames) == b"".join(expected) or sorted(frames) == sorted(
        [expected[0][: len(expected[0]) // 2], expected[0][len(expected[0]) // 2 :], expected[1]]
    )


def test_single_part_is_only_for_the_instance_resource(live_server: LiveServer) -> None:
    sent = make_instance()
    post_stow(live_server, [sent])
    ds = read(sent)
    study = httpx.get(f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}", headers={"Accept": DICOM})
    assert study.status_code == 406  # a study of one instance is still a set (conformance, section 11)
    either = httpx.get(
        f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}",
        headers={"Accept": f'{DICOM}, multipart/related; type="{DICOM}"; q=0.5'},
    )
    assert either.status_code == 200 and either.headers["content-type"].startswith("multipart/related")


def lossy_instance_in(study_uid: str, patient_id: str, patient_name: str) -> bytes:
    """pydicom's JPEG 2000 lossy CT (Lossy Image Compression 01), filed under another study."""
    ds = pydicom.dcmread(corpus_file("JPEG2000.dcm").path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.PatientName = patient_id, patient_name  # one patient per study (else 0xC410)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_instances_that_cannot_be_had_are_left_out_with_206(live_server: LiveServer) -> None:
    corpus = corpus_file("MR_small_jpeg_ls_lossless.dcm")
    jls = pydicom.dcmread(corpus.path)
    patient = {"patient_id": jls.PatientID, "patient_name": str(jls.PatientName)}
    native = make_instance(study_uid=jls.StudyInstanceUID, **patient)
    lossy = lossy_instance_in(jls.StudyInstanceUID, **patient)
    assert post_stow(live_server, [corpus.path.read_bytes(), native, lossy]).status_code == 200
    study_url = f"{live_server.dicomweb}/studies/{jls.StudyInstanceUID}"
    as_jls = f'multipart/related; type="{DICOM}"; transfer-syntax={corpus.transfer_syntax_uid}'
    response = httpx.get(study_url, headers={"Accept": as_jls})
    assert response.status_code == 206  # the lossy one is never labelled JPEG-LS Lossless
    bodies = [read(body) for _, body in multipart_parts(response)]
    assert {ds.SOPInstanceUID for ds in bodies} == {jls.SOPInstanceUID, read(native).SOPInstanceUID}
    assert {ds.file_meta.TransferSyntaxUID for ds in bodies} == {corpus.transfer_syntax_uid}

    # Frames are: the native one is encoded as JPEG-LS; the lossy one never gets a lossless label.
    pixels = httpx.get(f"{study_url}/pixeldata", headers={"Accept": 'multipart/related; type="image/jls"'})
    assert pixels.status_code == 206
    parts = multipart_parts(pixels)
    assert [h["content-type"] for h, _ in parts] == [
        f"image/jls; transfer-syntax={corpus.transfer_syntax_uid}"
    ] * 2
    assert {h["content-location"].split("/instances/")[1].split("/")[0] for h, _ in parts} == {
        jls.SOPInstanceUID,
        read(native).SOPInstanceUID,
    }
    none = httpx.get(
        f"{study_url}/series/{read(lossy).SeriesInstanceUID}",
        headers={"Accept": as_jls},
    )
    assert none.status_code == 406
