"""Every frame of every image in pydicom's corpus, fetched as application/octet-stream from a live server.

The reference is pydicom's own reading of the original file: `pixel_array` for compressed syntaxes
(decoded pixels, colour interleaved, YCbCr as RGB: what Fovea decodes to), and the stored native
values for uncompressed ones (served as stored, so the comparison masks to Bits Stored and keeps the
stored planar configuration and photometric interpretation). Lossless and lossy originals alike must
match bit for bit: the server decodes with the same decoders pydicom uses.
"""

from __future__ import annotations

import warnings

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.pixels.utils import pixel_array, unpack_bits
from pydicom.uid import ExplicitVRLittleEndian

from app.imaging.codecs.decode import can_decode
from app.imaging.syntaxes import find_transfer_syntax
from tests.conftest import LiveServer
from tests.dicom_files import CorpusFile, corpus_files
from tests.integration.stow_helpers import post_stow

OCTET = "application/octet-stream"
UNREADABLE = {"MR_truncated.dcm", "badVR.dcm"}  # truncated pixel data; Number of Frames "1A"


def image_files() -> list[CorpusFile]:
    return [
        f
        for f in corpus_files()
        if f.has_pixels
        and f.path.name not in UNREADABLE
        and not find_transfer_syntax(f.transfer_syntax_uid).is_video  # type: ignore[union-attr]
    ]


def expected_frames(ds: pydicom.Dataset) -> list[bytes] | str:
    """Each frame's octet-stream bytes as pydicom sees them, or why pydicom cannot say."""
    syntax = find_transfer_syntax(ds.file_meta.TransferSyntaxUID)
    assert syntax is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            array = ds.pixel_array if syntax.encapsulated else pixel_array(ds, as_rgb=False)
        except Exception as exc:
            return f"pydicom cannot decode it: {exc}"[:200]
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if not syntax.encapsulated and ds.PhotometricInterpretation in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        size = len(ds.PixelData) // count // 2 * 2  # stored 4:2:2, served as stored: two samples a pixel
        return [ds.PixelData[i * size : (i + 1) * size] for i in range(count)]
    frame_shape = array.shape[1:] if count > 1 else array.shape
    frames = array.reshape((count, *frame_shape))
    bits = int(ds.BitsAllocated)
    if bits == 1:
        return [np.packbits(frame.ravel(), bitorder="little").tobytes() for frame in frames]
    if not syntax.encapsulated and int(ds.get("PlanarConfiguration", 0) or 0) == 1:
        frames = frames.transpose(0, 3, 1, 2)  # native planar frames are served as stored
    little_endian = frames.dtype.newbyteorder("<")  # pydicom keeps a Big Endian file's byte order
    return [np.ascontiguousarray(frame, dtype=little_endian).tobytes() for frame in frames]


def masked(data: bytes, ds: pydicom.Dataset) -> np.ndarray:
    """Native values compared on their Bits Stored only (pydicom sign-extends, the stored bytes do not)."""
    bits = int(ds.BitsAllocated)
    if bits in (1, 8) or bits > 32:
        return np.frombuffer(data, dtype=np.uint8)
    values = np.frombuffer(data, dtype=f"<u{bits // 8}")
    return values & ((1 << int(ds.BitsStored)) - 1)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_every_corpus_frame_as_octet_stream(live_server: LiveServer) -> None:
    files = image_files()
    assert len(files) > 60
    checked, mismatches, skipped = 0, [], []
    for corpus in files:
        response = post_stow(live_server, [corpus.path.read_bytes()])
        assert response.status_code in (200, 202), (corpus, response.text)
        ds = pydicom.dcmread(corpus.path)
        expected = expected_frames(ds)
        base = (
            f"{live_server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/frames"
        )
        if isinstance(expected, str):
            answer = httpx.get(f"{base}/1", headers={"Accept": OCTET})
            # What pydicom cannot decode, Fovea either decodes by another library or refuses with 406.
            assert answer.status_code in (200, 406), (corpus, answer.status_code)
            skipped.append(f"{corpus}: {expected}")
            continue
        syntax = find_transfer_syntax(corpus.transfer_syntax_uid)
        assert syntax is not None
        assert can_decode(corpus.transfer_syntax_uid) or not syntax.encapsulated
        for number, frame in enumerate(expected, start=1):
            answer = httpx.get(f"{base}/{number}", headers={"Accept": OCTET})
            checked += 1
            if answer.status_code != 200:
                mismatches.append(f"{corpus} frame {number}: {answer.status_code} {answer.text[:200]}")
            elif answer.headers["content-type"] != f"{OCTET}; transfer-syntax={ExplicitVRLittleEndian}":
                mismatches.append(f"{corpus} frame {number}: {answer.headers['content-type']}")
            elif syntax.encapsulated:
                if answer.content != frame:
                    mismatches.append(f"{corpus} frame {number}: decoded pixels differ")
            elif not np.array_equal(masked(answer.content, ds), masked(frame, ds)):
                mismatches.append(f"{corpus} frame {number}: native pixels differ")
    assert not mismatches, "\n".join(mismatches)
    assert checked > 150, checked
    assert len(skipped) <= 2, skipped


def test_bit_packed_frames_match_unpacked_bits() -> None:
    """The reference itself: 1-bit frames packed LSB first equal pydicom's unpacking (a guard on the
    comparison above, which packs pydicom's pixels)."""
    bits = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=np.uint8)
    packed = np.packbits(bits, bitorder="little").tobytes()
    assert list(unpack_bits(packed)[:9]) == list(bits)
