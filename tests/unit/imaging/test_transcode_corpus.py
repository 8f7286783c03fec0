"""Every lossless image of pydicom's corpus, re-encoded into every lossless syntax an encoder can hold.

The native pixels are pydicom's own `pixel_array` of the original; each frame is encoded by Fovea's
encoder and decoded again by Fovea's decoder (a different library for every syntax but deflate and
JPEG XL, see test_encode_frames.py), and must come back bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import can_encode, encode_native_frame
from app.imaging.syntaxes import find_transfer_syntax
from tests.dicom_files import CorpusFile, corpus_files

TARGETS = (
    "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression
    RLELossless,  # RLE Lossless
    JPEGLossless,  # JPEG Lossless (Process 14)
    JPEGLosslessSV1,  # JPEG Lossless SV1
    JPEGLSLossless,  # JPEG-LS Lossless
    JPEG2000Lossless,  # JPEG 2000 Lossless
    HTJ2KLossless,  # HTJ2K Lossless
    HTJ2KLosslessRPCL,  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
)
UNREADABLE = {"MR_truncated.dcm", "badVR.dcm"}


def lossless_images() -> list[CorpusFile]:
    found = []
    for corpus in corpus_files():
        syntax = find_transfer_syntax(corpus.transfer_syntax_uid)
        if not corpus.has_pixels or corpus.path.name in UNREADABLE or syntax is None or syntax.is_video:
            continue
        if syntax.lossless is not True:
            continue
        ds = pydicom.dcmread(corpus.path, stop_before_pixels=True)
        if ds.get("LossyImageCompression") == "01" or "PixelData" not in pydicom.dcmread(corpus.path):
            continue
        found.append(corpus)
    return found


@pytest.mark.parametrize("corpus", lossless_images(), ids=str)
def test_every_lossless_image_round_trips_through_every_encoder(corpus: CorpusFile) -> None:
    ds = pydicom.dcmread(corpus.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pixels = ds.pixel_array
        except Exception as exc:  # pydicom's reason is the skip message
            pytest.skip(f"pydicom cannot decode it: {exc}"[:200])
    count = int(ds.get("NumberOfFrames", 1) or 1)
    frames = pixels.reshape((count, *(pixels.shape[1:] if count > 1 else pixels.shape)))
    samples = int(ds.get("SamplesPerPixel", 1))
    bits = int(ds.BitsAllocated)
    photometric = "RGB" if samples == 3 else str(ds.PhotometricInterpretation)
    fmt = FrameFormat(
        int(ds.Rows),
        int(ds.Columns),
        samples,
        bits,
        int(ds.get("BitsStored", bits)),
        int(ds.get("PixelRepresentation", 0)),
        photometric,
        0,
    )
    if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        pytest.skip("pydicom upsamples native 4:2:2, so its pixel array is not a stored layout")
    targets = [uid for uid in TARGETS if can_encode(uid, fmt)]
    assert "1.2.840.10008.1.2.8.1" in targets  # deflate takes any layout
    little = frames.dtype.newbyteorder("<")
    for number, frame in enumerate(frames[:3], start=1):  # the first frames are enough per file
        if bits == 1:
            native = np.packbits(frame.ravel(), bitorder="little").tobytes()
        else:
            native = np.ascontiguousarray(frame, dtype=little).tobytes()
        for uid in targets:
            encoded = encode_native_frame(native, uid, fmt)
            assert len(encoded) % 2 == 0
            assert decode_to_native(encoded, uid, fmt).data == native, (corpus, number, uid)
