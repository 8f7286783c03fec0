"""WADO-RS bulkdata and pixeldata resources against a live server (PS3.18 10.4.1.1.5).

Every BulkDataURI the metadata hands out must resolve, nested sequence paths included; values come
back little-endian whatever the stored byte order; `Range` gives 206 with the right bytes.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRBigEndian, ExplicitVRLittleEndian, generate_uid

from tests.conftest import LiveServer
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import post_stow
from tests.integration.test_wado_instances import multipart_parts

OCTET = "application/octet-stream"
OCTET_PARTS = f'multipart/related; type="{OCTET}"'


def bulkdata_uris(item: dict[str, Any], found: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(tag path, BulkDataURI) of every bulk value in a DICOM JSON object, nested items included."""
    found = [] if found is None else found
    for tag, attribute in item.items():
        if "BulkDataURI" in attribute:
            found.append((tag, attribute["BulkDataURI"]))
        if attribute["vr"] == "SQ":
            for nested in attribute.get("Value", []):
                bulkdata_uris(nested, found)
    return found


def element_bytes(ds: Dataset, path: str) -> bytes:
    """The value at a BulkDataURI path ("54000100/0/54001010") as pydicom reads it, little-endian."""
    pieces = path.split("/")
    for tag, index in zip(pieces[:-1:2], pieces[1::2], strict=True):
        ds = ds[int(tag, 16)].value[int(index)]
    element = ds[int(pieces[-1], 16)]
    value = element.value
    return value if isinstance(value, bytes) else element.value.tobytes()


@pytest.mark.parametrize("name", ["waveform_ecg.dcm", "CT_small.dcm", "examples_ybr_color.dcm"])
def test_every_bulkdata_uri_of_the_metadata_resolves(live_server: LiveServer, name: str) -> None:
    corpus = corpus_file(name)
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    ds = pydicom.dcmread(corpus.path)
    metadata_url = (
        f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/metadata"
    )
    [item] = httpx.get(metadata_url).json()
    uris = bulkdata_uris(item)
    assert uris
    for _, uri in uris:
        path = uri.split("/bulkdata/", 1)[1]
        response = httpx.get(uri, headers={"Accept": OCTET_PARTS})
        assert response.status_code == 200, (uri, response.text)
        parts = multipart_parts(response)
        if path == "7FE00010":  # pixel data: its frames, one part each
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            assert [h["content-location"] for h, _ in parts] == [
                f"{uri.split('/bulkdata/')[0]}/frames/{n}" for n in range(1, frames + 1)
            ]
            assert all(
                h["content-type"] == f"{OCTET}; transfer-syntax={ExplicitVRLittleEndian}" for h, _ in parts
            )
            continue
        [(headers, body)] = parts
        assert headers["content-location"] == uri
        assert body == element_bytes(ds, path), path


def test_nested_bulkdata_as_single_part_and_ranges(live_server: LiveServer) -> None:
    corpus = corpus_file("waveform_ecg.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    uri = (
        f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/bulkdata/54000100/1/54001010"
    )
    value = element_bytes(ds, "54000100/1/54001010")

    whole = httpx.get(uri, headers={"Accept": OCTET})
    assert whole.status_code == 200
    assert whole.headers["content-type"] == f"{OCTET}; transfer-syntax={ExplicitVRLittleEndian}"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == value

    ranged = httpx.get(uri, headers={"Accept": OCTET, "Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(value)}"
    assert ranged.content == value[10:20]

    suffix = httpx.get(uri, headers={"Accept": OCTET, "Range": "bytes=-7"})
    assert (suffix.status_code, suffix.content) == (206, value[-7:])
    open_ended = httpx.get(uri, headers={"Accept": OCTET_PARTS, "Range": f"bytes={len(value) - 3}-"})
    assert open_ended.status_code == 206
    assert multipart_parts(open_ended)[0][1] == value[-3:]

    beyond = httpx.get(uri, headers={"Accept": OCTET, "Range": f"bytes={len(value)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(value)}"
    several = httpx.get(uri, headers={"Accept": OCTET, "Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, value)  # several ranges: the whole value

    assert httpx.get(uri.replace("54000100/1/", "54000100/7/"), headers={"Accept": OCTET}).status_code == 404
    assert httpx.get(uri, headers={"Accept": "image/jls"}).status_code == 406


def big_endian_instance_with_lut() -> tuple[bytes, bytes]:
    """A palette colour image in Explicit VR Big Endian with 4 KiB OW LUTs; (file, LUT little-endian)."""
    lut = np.arange(0, 65536, 32, dtype=np.uint16)  # 2048 entries: well over the bulk data threshold
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 4, 4, 1
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RedPaletteColorLookupTableDescriptor = [2048, 0, 16]
    ds.add_new(0x00281201, "OW", lut.astype(">u2").tobytes())  # binary values are written as given
    ds.PixelData = np.arange(16, dtype=">u2").tobytes()
    ds["PixelData"].VR = "OW"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=False, little_endian=False, enforce_file_format=True)
    return buffer.getvalue(), lut.astype("<u2").tobytes()


def test_big_endian_values_come_back_little_endian(live_server: LiveServer) -> None:
    data, lut = big_endian_instance_with_lut()
    assert post_stow(live_server, [data]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    base = (
        f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    response = httpx.get(f"{base}/bulkdata/00281201", headers={"Accept": OCTET})
    assert response.status_code == 200
    assert response.content == lut
    for first, last in [(3, 8), (0, 0), (1, 1), (4094, 4095), (5, 4095)]:  # odd bounds cut words
        ranged = httpx.get(
            f"{base}/bulkdata/00281201", headers={"Accept": OCTET, "Range": f"bytes={first}-{last}"}
        )
        assert (ranged.status_code, ranged.content) == (206, lut[first : last + 1]), (first, last)
    frame = httpx.get(f"{base}/pixeldata", headers={"Accept": OCTET})
    assert frame.content == np.arange(16, dtype="<u2").tobytes()


def test_pixeldata_and_bulkdata_at_every_level(live_server: LiveServer) -> None:
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    sent = [
        make_instance(study_uid=study, series_uid=series[0], frames=3, seed=1),
        make_instance(study_uid=study, series_uid=series[1], seed=2),
    ]
    post_stow(live_server, sent)
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in sent]
    frame_bytes = 64 * 64 * 2
    expected_frames = [datasets[0].PixelData[i * frame_bytes : (i + 1) * frame_bytes] for i in range(3)] + [
        datasets[1].PixelData
    ]
    study_url = f"{live_server.dicomweb}/studies/{study}"
    for kind in ("pixeldata", "bulkdata"):
        parts = multipart_parts(httpx.get(f"{study_url}/{kind}", headers={"Accept": OCTET_PARTS}))
        assert sorted(body for _, body in parts) == sorted(expected_frames), kind
        series_parts = multipart_parts(
            httpx.get(f"{study_url}/series/{series[0]}/{kind}", headers={"Accept": OCTET_PARTS})
        )
        assert [body for _, body in series_parts] == expected_frames[:3]
        assert [h["content-location"].rsplit("/", 1)[1] for h, _ in series_parts] == ["1", "2", "3"]
    one = datasets[1]
    single = httpx.get(
        f"{study_url}/series/{series[1]}/instances/{one.SOPInstanceUID}/pixeldata", headers={"Accept": OCTET}
    )
    assert single.status_code == 200
    assert single.headers["content-type"] == f"{OCTET}; transfer-syntax={ExplicitVRLittleEndian}"
    assert single.content == expected_frames[3]
    # A single part is only for one item: three frames ask for multipart.
    three = httpx.get(
        f"{study_url}/series/{series[0]}/instances/{datasets[0].SOPInstanceUID}/pixeldata",
        headers={"Accept": OCTET},
    )
    assert three.status_code == 406
    assert httpx.get(f"{live_server.dicomweb}/studies/{generate_uid()}/pixeldata").status_code == 404


def test_pixeldata_of_a_compressed_instance_as_stored_or_decoded(live_server: LiveServer) -> None:
    corpus = corpus_file("SC_rgb_rle_2frame.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    url = (
        f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/pixeldata"
    )
    rle = multipart_parts(httpx.get(url, headers={"Accept": 'multipart/related; type="image/dicom-rle"'}))
    assert [h["content-type"] for h, _ in rle] == ["image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5"] * 2
    decoded = multipart_parts(httpx.get(url, headers={"Accept": OCTET_PARTS}))
    assert [body for _, body in decoded] == [frame.tobytes() for frame in ds.pixel_array]


def test_scope_bulkdata_leaves_out_what_the_accept_excludes(live_server: LiveServer) -> None:
    corpus = corpus_file("J2K_pixelrep_mismatch.dcm")  # JPEG 2000 pixels and a private bulk value
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    url = f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/bulkdata"
    everything = multipart_parts(httpx.get(url, headers={"Accept": OCTET_PARTS}))
    assert [h["content-location"].rsplit("/", 2)[-2:] for h, _ in everything] == [
        ["bulkdata", "00091101"],
        ["frames", "1"],
    ]
    assert everything[0][1] == element_bytes(ds, "00091101")
    assert everything[1][1] == ds.pixel_array.tobytes()

    as_jp2 = httpx.get(url, headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert as_jp2.status_code == 206  # the private value only exists as octet-stream
    [(headers, body)] = multipart_parts(as_jp2)
    assert headers["content-type"] == f"image/jp2; transfer-syntax={corpus.transfer_syntax_uid}"
    assert body.rstrip(b"\x00") == next(
        iter(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    ).rstrip(b"\x00")
    assert httpx.get(url, headers={"Accept": "image/jls"}).status_code == 406


def test_dicomweb_client_reads_bulk_data_and_compressed_frames(live_server: LiveServer) -> None:
    from dicomweb_client.api import DICOMwebClient

    ecg, jls = corpus_file("waveform_ecg.dcm"), corpus_file("MR_small_jpeg_ls_lossless.dcm")
    post_stow(live_server, [ecg.path.read_bytes(), jls.path.read_bytes()])
    client = DICOMwebClient(url=live_server.dicomweb)
    ds = pydicom.dcmread(ecg.path)
    [item] = (
        client.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID),
    )
    # dicomweb-client sends Host without the port, so the URIs it gets lack it (README): re-root them.
    uri = (
        live_server.dicomweb
        + item["54000100"]["Value"][0]["54001010"]["BulkDataURI"].split("/dicom-web", 1)[1]
    )
    assert client.retrieve_bulkdata(uri) == [element_bytes(ds, "54000100/0/54001010")]
    assert client.retrieve_bulkdata(uri, byte_range=(4, 11)) == [
        element_bytes(ds, "54000100/0/54001010")[4:12]
    ]

    mr = pydicom.dcmread(jls.path)
    [frame] = client.retrieve_instance_frames(
        mr.StudyInstanceUID,
        mr.SeriesInstanceUID,
        mr.SOPInstanceUID,
        frame_numbers=[1],
        media_types=("image/jls",),
    )
    assert frame.rstrip(b"\x00") == next(
        iter(pydicom.encaps.generate_frames(mr.PixelData, number_of_frames=1))
    ).rstrip(b"\x00")
    [native] = client.retrieve_instance_frames(
        mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID, frame_numbers=[1]
    )
    assert native == mr.pixel_array.tobytes()
    assert [d.SOPInstanceUID for d in client.iter_study(mr.StudyInstanceUID)] == [mr.SOPInstanceUID]
