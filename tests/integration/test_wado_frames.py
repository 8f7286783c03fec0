"""WADO-RS frames without transcoding: as stored, or native pixels as application/octet-stream.

Reference values come from pydicom reading the original file; multipart bodies are read back by
dicomweb-client's own parser.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from openjpeg.utils import decode as openjpeg_decode
from pydicom.encaps import generate_frames
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)
from starlette.responses import Response

from app.api import wado as wado_routes
from app.api.wado_pixels import frames_answered_in_loop
from app.api.wado_request import WadoRequest
from app.dicomweb.mediatypes import canonical_media_type as canonical
from app.dicomweb.scope import Scope
from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.syntaxes import find_transfer_syntax
from app.services import Services
from app.store.infra.blobs import FileBlobStore
from tests.conftest import LiveServer
from tests.dicom_files import CorpusFile, corpus_file, corpus_files, make_instance, unpacked_bits
from tests.integration.stow_helpers import post_stow
from tests.integration.test_wado_instances import multipart_parts as parse_parts

OCTET = "application/octet-stream"
NATIVE_IMAGES = [
    f
    for f in corpus_files()
    if f.has_pixels
    and not find_transfer_syntax(f.transfer_syntax_uid).encapsulated  # type: ignore[union-attr]
    and f.path.name not in {"MR_truncated.dcm", "badVR.dcm"}  # truncated; Number of Frames "1A"
]


def frames_url(server: LiveServer, ds: pydicom.Dataset, frames: str) -> str:
    return (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/{frames}"
    )


def expected_native_frame(ds: pydicom.Dataset, number: int) -> bytes:
    """Frame `number` as little-endian bytes, from pydicom's view of the file."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples, bits = int(ds.get("SamplesPerPixel", 1)), int(ds.BitsAllocated)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if bits == 1:
        size = rows * columns * samples
        return unpacked_bits(ds.PixelData)[(number - 1) * size : number * size]
    ybr_422 = ds.PhotometricInterpretation in ("YBR_FULL_422", "YBR_PARTIAL_422")
    size = rows * columns * (2 if ybr_422 else samples) * bits // 8
    value: bytes = ds.PixelData
    big_endian = ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    if big_endian and bits == 8 and ds["PixelData"].VR == "OW":  # bytes sit swapped in 16-bit words
        even = value + b"\x00" * (len(value) % 2)
        value = np.frombuffer(even, dtype=">u2").astype("<u2").tobytes()
    if big_endian and bits > 8:
        value = (
            np.frombuffer(value[: size * count], dtype=f">u{bits // 8}").astype(f"<u{bits // 8}").tobytes()
        )
    return value[(number - 1) * size : number * size]


@pytest.mark.parametrize("corpus", NATIVE_IMAGES, ids=str)
def test_native_frame_as_octet_stream_is_the_original_pixels(
    live_server: LiveServer, corpus: CorpusFile
) -> None:
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    ds = pydicom.dcmread(corpus.path)
    last = int(ds.get("NumberOfFrames", 1) or 1)

    # The first read looks the frame table up in a thread; the second, with the table cached, is made on
    # the event loop where the frame is in memory (file stores): both are checked.
    for _ in range(2):
        response = httpx.get(
            frames_url(live_server, ds, str(last)), headers={"Accept": OCTET, "Accept-Encoding": "identity"}
        )

        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == f"{OCTET}; transfer-syntax={ExplicitVRLittleEndian}"
        assert response.headers["content-location"].endswith(f"/frames/{last}")
        body = response.content
        if int(ds.BitsAllocated) == 1:
            body = unpacked_bits(body)[: int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))]
        assert body == expected_native_frame(ds, last)


def test_several_frames_in_any_order_as_multipart(live_server: LiveServer) -> None:
    data = make_instance(frames=5, rows=16, columns=12, seed=3)
    assert post_stow(live_server, [data]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    client = DICOMwebClient(url=live_server.dicomweb)

    frames = client.retrieve_instance_frames(
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        frame_numbers=[4, 1, 5],
        media_types=((OCTET, ExplicitVRLittleEndian),),
    )

    assert frames == [expected_native_frame(ds, n) for n in (4, 1, 5)]
    raw = httpx.get(
        frames_url(live_server, ds, "4,1"), headers={"Accept": f'multipart/related; type="{OCTET}"'}
    )
    assert raw.headers["content-type"].startswith(f'multipart/related; type="{OCTET}"; boundary=')
    assert raw.content.count(f"Content-Type: {OCTET}; transfer-syntax={ExplicitVRLittleEndian}".encode()) == 2
    assert b"/frames/4\r\n" in raw.content and b"/frames/1\r\n" in raw.content


def test_frames_read_again_are_made_on_the_event_loop_alike(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_instance(frames=3, rows=32, columns=32, seed=5)
    assert post_stow(live_server, [data]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    made_in_loop: list[bool] = []

    def watched(services: Services, wado: WadoRequest, numbers: Sequence[int]) -> Response | None:
        response = frames_answered_in_loop(services, wado, numbers)
        made_in_loop.append(response is not None)
        return response

    monkeypatch.setattr(wado_routes, "frames_answered_in_loop", watched)
    url = frames_url(live_server, ds, "3,1")
    multipart = {"Accept": f'multipart/related; type="{OCTET}"', "Accept-Encoding": "identity"}
    in_memory = isinstance(live_server.services.blobs, FileBlobStore)  # S3 reads always wait

    first = httpx.get(url, headers=multipart)  # the frame table is looked up, in a thread
    again = httpx.get(url, headers=multipart)

    assert made_in_loop == [False, in_memory]
    assert first.status_code == again.status_code == 200
    expected = [expected_native_frame(ds, 3), expected_native_frame(ds, 1)]
    assert [body for _, body in parse_parts(again)] == [body for _, body in parse_parts(first)] == expected
    assert [headers for headers, _ in parse_parts(again)] == [headers for headers, _ in parse_parts(first)]
    for name in ("etag", "last-modified", "vary", "content-length"):
        assert again.headers[name] == first.headers[name]

    # Encoding and compressing never run on the loop, nor a read of a frame no longer in memory.
    j2k = httpx.get(url, headers={**multipart, "Accept": 'multipart/related; type="image/jp2"'})
    assert j2k.status_code == 200 and made_in_loop[-1] is False
    gzipped = httpx.get(url, headers={**multipart, "Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip" and made_in_loop[-1] is False
    if in_memory:
        scope = Scope(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        frames = live_server.services.frame_tables.get(scope)
        assert frames is not None and isinstance(live_server.services.blobs, FileBlobStore)
        fd = os.open(live_server.services.blobs.root / frames.data_blob_key, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        from_disk = httpx.get(url, headers=multipart)
        assert made_in_loop[-1] is False
        assert [body for _, body in parse_parts(from_disk)] == expected


def test_compressed_frame_as_stored_decoded_or_transcoded(live_server: LiveServer) -> None:
    corpus = (
        corpus_file("emri_small_jpeg_ls_lossless.dcm")
        if any(f.path.name == "emri_small_jpeg_ls_lossless.dcm" for f in corpus_files())
        else next(f for f in corpus_files() if f.transfer_syntax_uid == JPEGLSLossless)
    )
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    ds = pydicom.dcmread(corpus.path)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    expected = list(generate_frames(ds.PixelData, number_of_frames=count))

    jls = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": "image/jls"})
    assert jls.status_code == 200
    assert jls.headers["content-type"] == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert jls.content.rstrip(b"\x00") == expected[0].rstrip(b"\x00")

    octet = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": OCTET})
    assert octet.status_code == 200
    assert octet.headers["content-type"] == f"{OCTET}; transfer-syntax={ExplicitVRLittleEndian}"
    assert octet.content == ds.pixel_array[0 if count > 1 else ...].astype(ds.pixel_array.dtype).tobytes()

    jp2 = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": "image/jp2"})
    assert jp2.status_code == 200  # decoded by CharLS, encoded by OpenJPEG, read back by pylibjpeg
    assert jp2.headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    assert jp2.content.startswith(b"\xff\x4f\xff\x51")  # a bare J2K codestream
    assert np.array_equal(openjpeg_decode(jp2.content), ds.pixel_array[0 if count > 1 else ...])

    jpeg = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": "image/jpeg"})
    assert jpeg.status_code == 200  # image/jpeg defaults to JPEG Lossless SV1, never to a lossy syntax
    assert jpeg.headers["content-type"] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70"
    fmt = FrameFormat(
        int(ds.Rows),
        int(ds.Columns),
        1,
        16,
        int(ds.BitsStored),
        int(ds.PixelRepresentation),
        "MONOCHROME2",
        0,
    )
    as_jpeg = decode_to_native(jpeg.content, JPEGLosslessSV1, fmt).data
    assert as_jpeg == ds.pixel_array[0 if count > 1 else ...].astype(ds.pixel_array.dtype).tobytes()

    video = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": "video/mp4"})
    assert video.status_code == 406  # the message names what can be had
    assert "image/jls" in video.json()["error"] and "image/jp2" in video.json()["error"]


@pytest.mark.parametrize(
    ("accept", "syntax"),
    [
        ("image/jls", JPEGLSLossless),
        ("image/jp2", JPEG2000Lossless),
        ("image/jphc", HTJ2KLossless),
        ("image/dicom-rle", RLELossless),
        ("application/x-deflate", "1.2.840.10008.1.2.8.1"),
        ("application/vnd.dicom-deflate", "1.2.840.10008.1.2.8.1"),
    ],
)
def test_native_frames_are_encoded_on_demand(live_server: LiveServer, accept: str, syntax: str) -> None:
    sent = make_instance(frames=2, seed=3)  # 16-bit signed CT
    post_stow(live_server, [sent])
    ds = pydicom.dcmread(io.BytesIO(sent))
    response = httpx.get(
        frames_url(live_server, ds, "2"), headers={"Accept": f"multipart/related; type={accept}"}
    )
    assert response.status_code == 200, response.text
    [(headers, body)] = parse_parts(response)
    assert headers["content-type"] == f"{canonical(accept)}; transfer-syntax={syntax}"
    assert len(body) % 2 == 0  # an even fragment (PS3.5 A.4)
    fmt = FrameFormat(64, 64, 1, 16, 16, 1, "MONOCHROME2", 0)
    assert decode_to_native(body, syntax, fmt).data == ds.pixel_array[1].tobytes()


def test_lossy_frames_are_never_labelled_lossless(live_server: LiveServer) -> None:
    corpus = corpus_file("JPEG2000.dcm")  # JPEG 2000 irreversible, Lossy Image Compression 01
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    for accept in ("image/jls", "image/dicom-rle", "image/jphc"):  # deflate: test_wado_frame_fidelity
        assert httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": accept}).status_code == 406
    as_stored = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": "image/jp2"})
    assert as_stored.headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91"


def test_deflated_dataset_frames_come_from_the_inflated_copy(live_server: LiveServer) -> None:
    corpus = corpus_file("image_dfl.dcm")
    assert post_stow(live_server, [corpus.path.read_bytes()]).status_code in (200, 202)
    ds = pydicom.dcmread(corpus.path)
    response = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": OCTET})
    assert response.status_code == 200
    assert response.content == expected_native_frame(ds, 1)


@pytest.mark.parametrize(
    ("frames", "status"), [("0", 400), ("1,1", 400), ("x", 400), ("2", 404), ("1,9", 404)]
)
def test_bad_frame_lists(live_server: LiveServer, frames: str, status: int) -> None:
    data = make_instance(rows=8, columns=8)
    assert post_stow(live_server, [data]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    response = httpx.get(frames_url(live_server, ds, frames), headers={"Accept": OCTET})
    assert response.status_code == status


def test_unknown_instance_and_instance_without_pixels_are_404(live_server: LiveServer) -> None:
    sr = next(f for f in corpus_files() if not f.has_pixels)
    assert post_stow(live_server, [sr.path.read_bytes()]).status_code in (200, 202)
    ds = pydicom.dcmread(sr.path)
    no_pixels = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": OCTET})
    assert no_pixels.status_code == 404 and "no pixel data" in no_pixels.json()["error"]
    ds.SOPInstanceUID = generate_uid()
    assert httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": OCTET}).status_code == 404


def test_a_replaced_instance_is_served_anew_despite_the_frame_table_cache(live_server: LiveServer) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    first = make_instance(study_uid=study, series_uid=series, sop_uid=sop, seed=1)
    second = make_instance(study_uid=study, series_uid=series, sop_uid=sop, seed=2)
    assert post_stow(live_server, [first]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(first))
    url = frames_url(live_server, ds, "1")
    assert httpx.get(url, headers={"Accept": OCTET}).content == ds.PixelData  # now cached
    assert post_stow(live_server, [second]).status_code == 202  # replaced (a warning)
    assert httpx.get(url, headers={"Accept": OCTET}).content == pydicom.dcmread(io.BytesIO(second)).PixelData
