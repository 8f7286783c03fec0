"""Codestream headers read and checked against the data set before any decoder runs."""

from __future__ import annotations

import struct
from dataclasses import replace

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLosslessSV1, JPEGLSLossless

from app.imaging.codecs.decode import FrameDecodeError, FrameFormat, decode_to_native
from app.imaging.codecs.encode import can_encode, encode_native_frame
from app.imaging.codecs.frame_header import (
    HEADER_READERS,
    FrameHeaderMismatch,
    FrameHeaderUnreadable,
    HeaderTruncated,
    check_frame_header,
    check_stored_frame,
    header_mismatch,
)
from app.imaging.syntaxes import TRANSFER_SYNTAXES, find_transfer_syntax
from tests.dicom_files import corpus_files
from tests.lying_frames import (
    FORMAT_16,
    LyingFrame,
    lying_frames,
    native_pixels,
)

MALFORMED_IN_CORPUS = {"JPEG2000-embedded-sequence-delimiter.dcm"}  # Xsiz holds a delimiter's bytes
LAYOUTS = (
    FrameFormat(64, 48, 1, 8, 8, 0, "MONOCHROME2", 0),
    FrameFormat(48, 64, 1, 16, 12, 0, "MONOCHROME2", 0),
    FrameFormat(40, 24, 1, 16, 16, 1, "MONOCHROME2", 0),
    FrameFormat(32, 30, 3, 8, 8, 0, "RGB", 0),
)
HEADER_SYNTAXES = [
    s.uid for s in TRANSFER_SYNTAXES if s.encapsulated and not s.is_video and s.codec in HEADER_READERS
]


def codec_of(uid: str) -> str:
    syntax = find_transfer_syntax(uid)
    assert syntax is not None
    return syntax.codec


@pytest.mark.parametrize(
    "fmt", LAYOUTS, ids=lambda f: f"{f.columns}x{f.rows}x{f.samples_per_pixel}-{f.bits_stored}"
)
@pytest.mark.parametrize("uid", HEADER_SYNTAXES)
def test_every_encoders_frame_has_a_header_that_fits(uid: str, fmt: FrameFormat) -> None:
    if not can_encode(uid, fmt):
        pytest.skip("no encoder for this layout")
    frame = encode_native_frame(native_pixels(fmt), uid, fmt)
    header = HEADER_READERS[codec_of(uid)](frame, len(frame))
    assert header_mismatch(header, fmt) is None, header
    if header.columns is not None:
        assert (header.columns, header.rows, header.components) == (
            fmt.columns,
            fmt.rows,
            fmt.samples_per_pixel,
        )


def test_every_corpus_frame_has_a_header_that_fits() -> None:
    """The real files (other toolkits' JPEG with precision 12 over Bits Stored 10, 4:2:2 YBR, J2K
    precision below Bits Stored, RLE of 32-bit RGB) all pass; only the one malformed SIZ does not."""
    checked = 0
    for corpus in corpus_files():
        syntax = find_transfer_syntax(corpus.transfer_syntax_uid)
        assert syntax is not None
        if not corpus.has_pixels or syntax.is_video or syntax.codec not in HEADER_READERS:
            continue
        ds = pydicom.dcmread(corpus.path)
        count = int(ds.get("NumberOfFrames", 1) or 1)
        fmt = FrameFormat(ds.Rows, ds.Columns, ds.get("SamplesPerPixel", 1), ds.BitsAllocated, 0, 0, "", 0)
        for frame in generate_frames(ds.PixelData, number_of_frames=count):
            if corpus.path.name in MALFORMED_IN_CORPUS:
                with pytest.raises(FrameHeaderUnreadable, match="tiles"):
                    check_frame_header(syntax.codec, frame, len(frame), fmt)
                continue
            check_frame_header(syntax.codec, frame, len(frame), fmt)
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("case", lying_frames(), ids=str)
def test_a_lying_header_is_refused(case: LyingFrame) -> None:
    with pytest.raises(FrameHeaderMismatch, match=case.complaint):
        check_frame_header(codec_of(case.transfer_syntax_uid), case.lying, len(case.lying), case.fmt)
    check_frame_header(codec_of(case.transfer_syntax_uid), case.honest, len(case.honest), case.fmt)


@pytest.mark.parametrize("case", lying_frames(), ids=str)
def test_decode_refuses_a_lying_header_before_the_decoder(case: LyingFrame) -> None:
    with pytest.raises(FrameDecodeError, match=case.complaint) as info:
        decode_to_native(case.lying, case.transfer_syntax_uid, case.fmt)
    assert isinstance(info.value.__cause__, FrameHeaderMismatch)
    decoded = decode_to_native(case.honest, case.transfer_syntax_uid, case.fmt).data
    if case.transfer_syntax_uid == JPEGBaseline8Bit:  # lossy: the size only
        assert len(decoded) == len(native_pixels(case.fmt))
    else:
        assert decoded == native_pixels(case.fmt)


def test_precision_above_bits_allocated_is_refused() -> None:
    frame = encode_native_frame(native_pixels(FORMAT_16), JPEGLosslessSV1, FORMAT_16)
    eight_bits = replace(FORMAT_16, bits_allocated=8, bits_stored=8)
    with pytest.raises(FrameHeaderMismatch, match="JPEG SOF says 16-bit samples, Bits Allocated 8"):
        check_frame_header("jpeg", frame, len(frame), eight_bits)


def test_component_count_must_equal_samples_per_pixel() -> None:
    rgb = FrameFormat(16, 16, 3, 8, 8, 0, "RGB", 0)
    frame = encode_native_frame(bytes(16 * 16 * 3), JPEG2000Lossless, rgb)
    with pytest.raises(FrameHeaderMismatch, match="3 components, Samples per Pixel 1"):
        check_frame_header("jpeg2000", frame, len(frame), replace(rgb, samples_per_pixel=1))


def _with_oversize_lse(frame: bytes, rows: int, columns: int) -> bytes:
    """A JPEG-LS frame whose SOF55 says 0x0 and an LSE (ID 4, 2-byte fields) gives the size."""
    position = 2
    while frame[position + 1] != 0xF7:
        position += 2 + int.from_bytes(frame[position + 2 : position + 4], "big")
    zeroed = frame[: position + 5] + b"\x00\x00\x00\x00" + frame[position + 9 :]
    lse = b"\xff\xf8" + struct.pack(">HBBHH", 8, 4, 2, rows, columns)
    sof_end = position + 2 + int.from_bytes(frame[position + 2 : position + 4], "big")
    return zeroed[:sof_end] + lse + zeroed[sof_end:]


def test_jpegls_oversize_dimension_segment_gives_the_size() -> None:
    frame = encode_native_frame(native_pixels(FORMAT_16), JPEGLSLossless, FORMAT_16)
    check_frame_header("jpegls", _with_oversize_lse(frame, 512, 512), len(frame) + 12, FORMAT_16)
    lying = _with_oversize_lse(frame, 60000, 60000)
    with pytest.raises(FrameHeaderMismatch, match="60000x60000 pixels"):
        check_frame_header("jpegls", lying, len(lying), FORMAT_16)


def test_jpegls_size_zero_without_oversize_segment_is_unreadable() -> None:
    frame = encode_native_frame(native_pixels(FORMAT_16), JPEGLSLossless, FORMAT_16)
    zero = _with_oversize_lse(frame, 512, 512)
    zero = zero.replace(zero[zero.index(b"\xff\xf8") : zero.index(b"\xff\xf8") + 10], b"")
    with pytest.raises(FrameHeaderUnreadable, match="0x0 pixels"):
        check_frame_header("jpegls", zero, len(zero), FORMAT_16)


def test_a_jp2_file_is_read_through_its_codestream_box() -> None:
    values = np.arange(24 * 40, dtype=np.uint16).reshape(24, 40)
    jp2 = bytes(imagecodecs.jpeg2k_encode(values, level=0, codecformat="jp2"))
    assert jp2[4:8] == b"jP  "
    header = HEADER_READERS["jpeg2000"](jp2, len(jp2))
    assert (header.columns, header.rows, header.components, header.precision) == (40, 24, 1, 16)


def test_a_jpeg_xl_rgb_and_grey_stream_give_their_channel_counts() -> None:
    rgb = bytes(imagecodecs.jpegxl_encode(np.zeros((10, 30, 3), np.uint8), lossless=True))
    grey = bytes(imagecodecs.jpegxl_encode(np.zeros((30, 10), np.uint16), lossless=True))
    for stream, expected in ((rgb, (30, 10, 3, 8)), (grey, (10, 30, 1, 16))):
        header = HEADER_READERS["jpegxl"](stream, len(stream))
        assert (header.columns, header.rows, header.components, header.precision) == expected


def test_a_header_behind_a_large_app_segment_is_found_by_reading_more() -> None:
    frame = encode_native_frame(native_pixels(FORMAT_16), JPEGLosslessSV1, FORMAT_16)
    app = b"\xff\xe2" + struct.pack(">H", 20002) + bytes(20000)  # as an ICC profile would be
    padded = frame[:2] + app + frame[2:]
    reads: list[int] = []

    def read_prefix(size: int) -> bytes:
        reads.append(size)
        return padded[:size]

    with pytest.raises(HeaderTruncated):
        check_frame_header("jpeg", padded[:4096], len(padded), FORMAT_16)
    check_stored_frame("jpeg", read_prefix, len(padded), FORMAT_16)
    assert reads == [4096, 65536]


def test_a_frame_cut_inside_its_header_is_unreadable() -> None:
    frame = encode_native_frame(native_pixels(FORMAT_16), JPEG2000Lossless, FORMAT_16)
    with pytest.raises(FrameHeaderUnreadable, match="ends inside its header"):
        check_frame_header("jpeg2000", frame[:20], 20, FORMAT_16)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 64, "does not start with SOI"),
        (b"\xff\xd8\xff\xda\x00\x02", "no JPEG frame header"),
    ],
)
def test_what_is_not_a_jpeg_codestream_is_unreadable(data: bytes, message: str) -> None:
    with pytest.raises(FrameHeaderUnreadable, match=message):
        check_frame_header("jpeg", data, len(data), FORMAT_16)


def test_families_without_a_header_pass() -> None:
    check_frame_header("deflate", b"anything", 8, FORMAT_16)
    check_frame_header("native", b"", 0, FORMAT_16)
