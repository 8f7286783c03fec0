"""Frames encoded on demand for the layouts real scanners write, through a live server.

12/14/16-bit, signed and unsigned, MONOCHROME1/2 and 16-bit RGB, asked for as HTJ2K, JPEG-LS and JPEG
lossless; each frame read back by a library other than its encoder (OpenJPEG for OpenJPH's HTJ2K,
libjpeg for CharLS and libjpeg-turbo). Lossy originals and native YBR_FULL_422 asked for deflated.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from app.dicomweb.mediatypes import canonical_media_type as canonical
from tests.conftest import LiveServer
from tests.dicom_files import corpus_file
from tests.integration.stow_helpers import post_stow
from tests.integration.test_wado_frames import expected_native_frame, frames_url
from tests.integration.test_wado_instances import multipart_parts as parse_parts

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"


@dataclass(frozen=True)
class Layout:
    name: str
    samples: int
    allocated: int
    stored: int
    signed: bool
    photometric: str

    def __str__(self) -> str:
        return self.name


CT_12 = Layout("CT_12_U", 1, 16, 12, signed=False, photometric="MONOCHROME2")
CT_12_SIGNED = Layout("CT_12_S", 1, 16, 12, signed=True, photometric="MONOCHROME2")
CT_14_SIGNED_MONO1 = Layout("14_S_MONO1", 1, 16, 14, signed=True, photometric="MONOCHROME1")
CT_16_SIGNED = Layout("CT_16_S", 1, 16, 16, signed=True, photometric="MONOCHROME2")
RGB_16 = Layout("RGB_16", 3, 16, 16, signed=False, photometric="RGB")
RGB_12 = Layout("RGB_12", 3, 16, 12, signed=False, photometric="RGB")


def layout_pixels(layout: Layout, frames: int, rows: int = 40, columns: int = 56) -> np.ndarray:
    """Noise over the whole stored range, both extremes present, in the sample type pydicom reads."""
    rng = np.random.default_rng(layout.stored)
    low = -(1 << (layout.stored - 1)) if layout.signed else 0
    high = low + (1 << layout.stored) - 1
    shape = (frames, rows, columns, layout.samples) if layout.samples == 3 else (frames, rows, columns)
    values = rng.integers(low, high + 1, shape)
    values.flat[0], values.flat[-1] = low, high
    return values.astype(f"<{'i' if layout.signed else 'u'}{layout.allocated // 8}")


def layout_instance(layout: Layout, pixels: np.ndarray) -> bytes:
    """A Secondary Capture Part 10 file, Explicit VR Little Endian, of `pixels` in `layout`."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "FIDELITY", "Fidelity^Test", "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = pixels.shape[1], pixels.shape[2], pixels.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = layout.samples, layout.photometric
    if layout.samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = layout.allocated, layout.stored, layout.stored - 1
    ds.PixelRepresentation = int(layout.signed)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def decoded_by_libjpeg_or_openjpeg(frame: bytes, syntax: str, layout: Layout, rows: int, columns: int) -> Any:
    """The frame decoded by pydicom's pylibjpeg plugin: libjpeg for JPEG and JPEG-LS, OpenJPEG for
    HTJ2K, none of them the library Fovea encoded with."""
    decoder = get_decoder(syntax)
    # pydicom annotates these options as `**kwargs: DecodeOptions` (each value a DecodeOptions), not as
    # Unpack[DecodeOptions]: passed as a dict of Any, they are checked by the decoder instead.
    options: dict[str, Any] = {
        "number_of_frames": 1,
        "rows": rows,
        "columns": columns,
        "samples_per_pixel": layout.samples,
        "bits_allocated": layout.allocated,
        "bits_stored": layout.stored,
        "pixel_representation": int(layout.signed),
        "photometric_interpretation": layout.photometric,
        "planar_configuration": 0,
    }
    array, _ = decoder.as_array(
        encapsulate([frame], has_bot=False), index=0, validate=False, decoding_plugin="pylibjpeg", **options
    )
    return array


def get_frame(server: LiveServer, ds: pydicom.Dataset, number: int, accept: str) -> tuple[str, bytes]:
    response = httpx.get(
        frames_url(server, ds, str(number)), headers={"Accept": f"multipart/related; {accept}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    [(headers, body)] = parse_parts(response)
    return headers["content-type"], body


CASES = [
    ("image/jphc", HTJ2KLossless, CT_12),
    ("image/jphc", HTJ2KLossless, CT_12_SIGNED),
    ("image/jphc", HTJ2KLossless, CT_14_SIGNED_MONO1),
    ("image/jphc", HTJ2KLossless, CT_16_SIGNED),
    ("image/jphc", HTJ2KLossless, RGB_12),
    ("image/jphc", HTJ2KLosslessRPCL, CT_12_SIGNED),
    ("image/jphc", HTJ2KLosslessRPCL, RGB_16),
    ("image/jls", JPEGLSLossless, RGB_16),
    ("image/jls", JPEGLSLossless, RGB_12),
    ("image/jpeg", JPEGLosslessSV1, RGB_16),
    ("image/jpeg", JPEGLossless, RGB_12),
]


@pytest.mark.parametrize(("media_type", "syntax", "layout"), CASES, ids=lambda v: str(v).rsplit(".", 1)[-1])
def test_frames_are_encoded_bit_exact_at_their_precision(
    live_server: LiveServer, media_type: str, syntax: str, layout: Layout
) -> None:
    pixels = layout_pixels(layout, frames=2)
    sent = layout_instance(layout, pixels)
    assert post_stow(live_server, [sent]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(sent))
    content_type, body = get_frame(live_server, ds, 2, f'type="{media_type}"; transfer-syntax={syntax}')
    assert content_type == f"{canonical(media_type)}; transfer-syntax={syntax}"
    assert len(body) % 2 == 0
    decoded = decoded_by_libjpeg_or_openjpeg(body, syntax, layout, int(ds.Rows), int(ds.Columns))
    assert np.array_equal(decoded, pixels[1])
    if syntax in (HTJ2KLossless, HTJ2KLosslessRPCL):  # SIZ Ssiz: sign bit and Bits Stored - 1
        assert body[42] == (0x80 if layout.signed else 0) | (layout.stored - 1)


def test_lossy_originals_are_served_deflated_like_octet_stream(live_server: LiveServer) -> None:
    for name in ("JPEG2000.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm"):  # irreversible J2K, lossy JPEG baseline
        corpus = corpus_file(name)
        post_stow(live_server, [corpus.path.read_bytes()])
        ds = pydicom.dcmread(corpus.path)
        octet = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": "application/octet-stream"})
        assert octet.status_code == 200
        for accept in ("application/x-deflate", "application/vnd.dicom-deflate"):
            content_type, body = get_frame(live_server, ds, 1, f'type="{accept}"')
            assert content_type == f"application/x-deflate; transfer-syntax={DEFLATED_FRAMES}"
            assert zlib.decompressobj(wbits=-15).decompress(body)[: len(octet.content)] == octet.content
        metadata = httpx.get(
            f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/metadata"
        ).json()[0]
        assert metadata["00282110"]["Value"] == ["01"]  # Lossy Image Compression still says so
        for lossless_only in ("image/jls", "image/dicom-rle", "image/jphc"):
            response = httpx.get(frames_url(live_server, ds, "1"), headers={"Accept": lossless_only})
            assert response.status_code == 406


def test_native_ybr_full_422_is_deflated_as_stored(live_server: LiveServer) -> None:
    corpus = corpus_file("SC_ybr_full_422_uncompressed.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    content_type, body = get_frame(live_server, ds, 1, 'type="application/x-deflate"')
    assert content_type == f"application/x-deflate; transfer-syntax={DEFLATED_FRAMES}"
    assert zlib.decompressobj(wbits=-15).decompress(body) == expected_native_frame(ds, 1)


@pytest.mark.parametrize("layout", [CT_12_SIGNED, RGB_12], ids=str)
def test_a_12_bit_instance_is_re_encoded_as_htj2k_and_read_by_pydicom(
    live_server: LiveServer, layout: Layout
) -> None:
    pixels = layout_pixels(layout, frames=3)
    sent = layout_instance(layout, pixels)
    assert post_stow(live_server, [sent]).status_code == 200
    original = pydicom.dcmread(io.BytesIO(sent))
    response = httpx.get(
        f"{live_server.dicomweb}/studies/{original.StudyInstanceUID}/series/{original.SeriesInstanceUID}"
        f"/instances/{original.SOPInstanceUID}",
        headers={"Accept": f"application/dicom; transfer-syntax={HTJ2KLosslessRPCL}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == HTJ2KLosslessRPCL
    assert ds.BitsStored == layout.stored and "LossyImageCompression" not in ds
    assert np.array_equal(ds.pixel_array, pixels)  # pydicom's HTJ2K decoder: OpenJPEG
