"""Transcoding through a live server: whole instances re-encoded, lossy targets, the frame cache.

Reference pixels come from pydicom reading the original file; re-encoded instances are read back by
pydicom (its own decoders) and, where installed, by DCMTK and GDCM command-line tools.
"""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames, parse_basic_offsets
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from tests.conftest import LiveServer
from tests.dicom_files import corpus_file, make_instance
from tests.dicom_tools import dcmtk_dump, dcmtk_transfer_syntax, gdcm_decompress
from tests.integration.stow_helpers import post_stow
from tests.integration.test_wado_instances import instance_url, multipart_parts

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


def psnr(original: np.ndarray, decoded: np.ndarray, peak: float) -> float:
    error = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(peak**2 / error))


def smooth_ct(frames: int = 2, seed: int = 0) -> bytes:
    """A 16-bit signed CT with smooth content (lossy codecs compress it the way they do real images)."""
    data = make_instance(frames=frames, rows=64, columns=64, seed=seed)
    ds = pydicom.dcmread(io.BytesIO(data))
    y, x = np.mgrid[0:64, 0:64]
    rng = np.random.default_rng(seed)
    image = [
        600 * np.sin(x / 9 + k) * np.cos(y / 13) + 400 + rng.normal(0, 4, (64, 64)) for k in range(frames)
    ]
    ds.PixelData = np.clip(np.array(image), -1024, 3000).astype("<i2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def get_instance(server: LiveServer, ds: pydicom.Dataset, syntax: str) -> httpx.Response:
    return httpx.get(
        instance_url(server, ds),
        headers={"Accept": f"application/dicom; transfer-syntax={syntax}"},
        timeout=60,
    )


def frame_url(server: LiveServer, ds: pydicom.Dataset, number: int) -> str:
    return f"{instance_url(server, ds)}/frames/{number}"


@pytest.mark.parametrize(
    "syntax",
    [
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
        HTJ2KLossless,
        DEFLATED_FRAMES,
        JPEGLosslessSV1,
        ENCAPSULATED_UNCOMPRESSED,
    ],
)
def test_a_native_instance_is_re_encoded_bit_exact(live_server: LiveServer, syntax: str) -> None:
    sent = make_instance(frames=3, seed=5)
    post_stow(live_server, [sent])
    original = pydicom.dcmread(io.BytesIO(sent))
    response = get_instance(live_server, original, syntax)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"application/dicom; transfer-syntax={syntax}"
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.SOPInstanceUID == original.SOPInstanceUID and ds.PatientName == original.PatientName
    frames = list(generate_frames(ds.PixelData, number_of_frames=3))
    assert len(frames) == 3
    assert parse_basic_offsets(ds.PixelData) == []  # streamed: each frame sent once encoded
    fmt = FrameFormat(64, 64, 1, 16, 16, 1, "MONOCHROME2", 0)
    for number, frame in enumerate(frames):
        assert decode_to_native(frame, syntax, fmt).data == original.pixel_array[number].tobytes()
    assert "LossyImageCompression" not in ds


def test_an_instance_as_deflated_explicit_vr_little_endian(live_server: LiveServer, tmp_path: Path) -> None:
    corpus = corpus_file("SC_rgb_rle_2frame.dcm")  # decoded, then the whole data set deflated
    post_stow(live_server, [corpus.path.read_bytes()])
    original = pydicom.dcmread(corpus.path)
    response = get_instance(live_server, original, DeflatedExplicitVRLittleEndian)
    assert response.status_code == 200, response.text
    assert (
        response.headers["content-type"]
        == f"application/dicom; transfer-syntax={DeflatedExplicitVRLittleEndian}"
    )
    assert len(response.content) % 2 == 0
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert np.array_equal(ds.pixel_array, original.pixel_array)
    path = tmp_path / "deflated.dcm"
    path.write_bytes(response.content)
    assert dcmtk_transfer_syntax(dcmtk_dump(path)) == DeflatedExplicitVRLittleEndian
    assert gdcm_decompress(path, tmp_path / "raw.dcm").PixelData == original.pixel_array.tobytes()


def test_series_in_another_syntax_is_multipart_with_every_instance(live_server: LiveServer) -> None:
    first = make_instance(seed=1)
    series = pydicom.dcmread(io.BytesIO(first))
    second = make_instance(study_uid=series.StudyInstanceUID, series_uid=series.SeriesInstanceUID, seed=2)
    post_stow(live_server, [first, second])
    url = f"{live_server.dicomweb}/studies/{series.StudyInstanceUID}/series/{series.SeriesInstanceUID}"
    response = httpx.get(
        url,
        headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JPEGLSLossless}'},
    )
    assert response.status_code == 200
    parts = multipart_parts(response)
    assert len(parts) == 2
    for headers, body in parts:
        assert headers["content-type"] == f"application/dicom; transfer-syntax={JPEGLSLossless}"
        ds = pydicom.dcmread(io.BytesIO(body))
        assert ds.file_meta.TransferSyntaxUID == JPEGLSLossless
        sent = first if ds.SOPInstanceUID == series.SOPInstanceUID else second
        assert np.array_equal(ds.pixel_array, pydicom.dcmread(io.BytesIO(sent)).pixel_array)


def test_a_compressed_colour_instance_is_re_encoded(live_server: LiveServer) -> None:
    corpus = corpus_file("SC_rgb_rle_2frame.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    original = pydicom.dcmread(corpus.path)
    response = get_instance(live_server, original, JPEG2000Lossless)
    assert response.status_code == 200, response.text
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0
    assert np.array_equal(ds.pixel_array, original.pixel_array)


def test_a_lossy_target_is_recorded_in_the_lossy_attributes(live_server: LiveServer) -> None:
    sent = smooth_ct(frames=2)
    post_stow(live_server, [sent])
    original = pydicom.dcmread(io.BytesIO(sent))
    response = get_instance(live_server, original, JPEG2000)
    assert response.status_code == 200, response.text
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == JPEG2000
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_15444_1"
    assert float(ds.LossyImageCompressionRatio) > 1.5
    assert psnr(original.pixel_array, ds.pixel_array, 4024) > 40


def test_a_lossy_original_is_never_re_encoded_lossless(live_server: LiveServer) -> None:
    corpus = corpus_file("JPEG2000.dcm")  # irreversible, Lossy Image Compression 01
    post_stow(live_server, [corpus.path.read_bytes()])
    original = pydicom.dcmread(corpus.path)
    for syntax in (JPEG2000Lossless, JPEGLSLossless, RLELossless):
        refused = get_instance(live_server, original, syntax)
        assert refused.status_code == 406, syntax
    # deflate carries the decoded pixels byte for byte, as Explicit VR LE does: allowed, still lossy
    deflated = get_instance(live_server, original, DEFLATED_FRAMES)
    assert deflated.status_code == 200, deflated.text
    ds = pydicom.dcmread(io.BytesIO(deflated.content))
    assert ds.file_meta.TransferSyntaxUID == DEFLATED_FRAMES
    assert ds.LossyImageCompression == "01"  # deflate adds no Lossy Image Compression Method
    assert ds.get("LossyImageCompressionMethod") == original.get("LossyImageCompressionMethod")
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
    [frame] = generate_frames(ds.PixelData, number_of_frames=1)
    assert decode_to_native(frame, DEFLATED_FRAMES, fmt).data == original.pixel_array.tobytes()
    # another lossy step: allowed, and recorded
    near = get_instance(live_server, original, JPEGLSNearLossless)
    assert near.status_code == 200, near.text
    ds = pydicom.dcmread(io.BytesIO(near.content))
    assert ds.LossyImageCompression == "01"
    methods = ds.LossyImageCompressionMethod
    assert (methods if isinstance(methods, str) else methods[-1]) == "ISO_14495_1"


def test_an_instance_without_pixels_is_relabelled(live_server: LiveServer) -> None:
    corpus = corpus_file("rtplan.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    original = pydicom.dcmread(corpus.path)
    response = get_instance(live_server, original, JPEG2000Lossless)
    assert response.status_code == 200
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert ds.BeamSequence[0].BeamName == original.BeamSequence[0].BeamName


@pytest.mark.parametrize(
    ("accept", "syntax", "min_psnr"),
    [
        (f"image/jls; transfer-syntax={JPEGLSNearLossless}", JPEGLSNearLossless, 45),
        (f"image/jp2; transfer-syntax={JPEG2000}", JPEG2000, 40),
    ],
)
def test_lossy_frames_are_served_when_asked_for_by_name(
    live_server: LiveServer, accept: str, syntax: str, min_psnr: float
) -> None:
    sent = smooth_ct(frames=1, seed=7)
    post_stow(live_server, [sent])
    original = pydicom.dcmread(io.BytesIO(sent))
    response = httpx.get(frame_url(live_server, original, 1), headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].endswith(f"transfer-syntax={syntax}")
    fmt = FrameFormat(64, 64, 1, 16, 16, 1, "MONOCHROME2", 0)
    decoded = np.frombuffer(decode_to_native(response.content, syntax, fmt).data, "<i2").reshape(64, 64)
    assert decoded.tobytes() != original.pixel_array.tobytes()  # really lossy
    assert psnr(original.pixel_array, decoded, 4024) > min_psnr


def test_jpeg_baseline_is_refused_for_16_bit_pixels_and_the_next_choice_is_served(
    live_server: LiveServer,
) -> None:
    sent = make_instance(seed=9)
    post_stow(live_server, [sent])
    ds = pydicom.dcmread(io.BytesIO(sent))
    accept = f"image/jpeg; transfer-syntax={JPEGBaseline8Bit}, image/jls; q=0.5"
    response = httpx.get(frame_url(live_server, ds, 1), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == f"image/jls; transfer-syntax={JPEGLSLossless}"
    only_baseline = httpx.get(
        frame_url(live_server, ds, 1), headers={"Accept": f"image/jpeg; transfer-syntax={JPEGBaseline8Bit}"}
    )
    assert only_baseline.status_code == 406


def test_a_transcoded_frame_is_kept_and_served_again_from_the_cache(live_server: LiveServer) -> None:
    sent = make_instance(frames=2, seed=11)
    post_stow(live_server, [sent])
    ds = pydicom.dcmread(io.BytesIO(sent))
    cache = live_server.services.transcoded_frames
    before = (cache.hits, cache.misses)
    headers = {"Accept": "image/jp2"}
    first = httpx.get(frame_url(live_server, ds, 2), headers=headers)
    again = httpx.get(frame_url(live_server, ds, 2), headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert (cache.hits - before[0], cache.misses - before[1]) == (1, 1)
    other_syntax = httpx.get(frame_url(live_server, ds, 2), headers={"Accept": "image/jls"})
    assert other_syntax.status_code == 200 and cache.misses - before[1] == 2


def test_concurrent_requests_for_one_frame_get_the_same_bytes(live_server: LiveServer) -> None:
    corpus = corpus_file("SC_rgb_rle_2frame.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    cache = live_server.services.transcoded_frames
    made_before = cache.misses
    with ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(
                lambda _: httpx.get(frame_url(live_server, ds, 1), headers={"Accept": "image/jxl"}), range(6)
            )
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert cache.misses - made_before == 1  # made once, shared or served from the cache


def test_instance_outputs_are_read_by_dcmtk_and_gdcm(live_server: LiveServer, tmp_path: Path) -> None:
    sent = make_instance(frames=2, seed=13)
    post_stow(live_server, [sent])
    original = pydicom.dcmread(io.BytesIO(sent))
    for syntax in (JPEGLSLossless, JPEG2000Lossless, RLELossless):
        response = get_instance(live_server, original, syntax)
        assert response.status_code == 200
        path = tmp_path / f"{syntax}.dcm"
        path.write_bytes(response.content)
        assert dcmtk_transfer_syntax(dcmtk_dump(path)) == syntax
        assert gdcm_decompress(path, tmp_path / f"{syntax}-raw.dcm").PixelData == original.PixelData


def corrupt_rle_instance() -> bytes:
    """A valid RLE data set whose one fragment has a sound segment table (2 segments for 16-bit
    samples, inside the frame) but segments far too short for the frame: it fails only when decoded."""
    ds = pydicom.dcmread(io.BytesIO(make_instance(seed=17)))
    ds.file_meta.TransferSyntaxUID = RLELossless
    table = struct.pack("<16I", 2, 64, 66, *([0] * 13))
    ds.PixelData = encapsulate([table + b"\x00\xff\x00\xff"])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_frame_that_cannot_be_decoded_is_406_for_frames_and_instances(live_server: LiveServer) -> None:
    sent = corrupt_rle_instance()
    assert post_stow(live_server, [sent]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(sent))
    frame = httpx.get(frame_url(live_server, ds, 1), headers={"Accept": "image/jls"})
    assert frame.status_code == 406
    assert "available as stored: image/dicom-rle" in frame.json()["error"]
    whole = get_instance(live_server, ds, JPEGLSLossless)
    assert whole.status_code == 406
    assert ds.SOPInstanceUID in whole.json()["error"] and "transfer-syntax=*" in whole.json()["error"]
    as_stored = get_instance(live_server, ds, "*")
    assert as_stored.status_code == 200 and as_stored.content == sent
