"""Tests for app/imaging/frame_table.py: pydicom's own test files, then synthetic Part 10 files."""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.pixels.utils import unpack_bits
from pydicom.uid import (
    JPEG2000,
    MPEG4HP41,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)

from app.imaging.frame_table import (
    FrameFragment,
    FrameTable,
    FrameTableError,
    PixelLayout,
    build_frame_table,
    read_frame,
)
from app.imaging.syntaxes import find_transfer_syntax

if TYPE_CHECKING:
    from tests.unit.imaging.conftest import StoredPixelData

    Locate = Callable[[Path, Dataset], StoredPixelData]
    WritePart10 = Callable[..., StoredPixelData]

# --- pydicom's corpus ------------------------------------------------------------------------

TEST_FILES = Path(get_testdata_file("CT_small.dcm") or "").parent
EXCLUDED = {  # file -> (id suffix, why it is not compared with pydicom)
    "badVR.dcm": (
        "excluded-invalid-NumberOfFrames",
        "Number of Frames is '1A', not an IS value; ingest refuses it before framing",
    ),
    "MR_truncated.dcm": (
        "excluded-truncated",
        "Pixel Data runs past the end of the file: test_truncated_corpus_file_is_refused",
    ),
}


def _corpus() -> list[Any]:
    """Every Part 10 file with Pixel Data, an image pixel module and a registry syntax.

    Left out without a case: folders, files that are not Part 10 (README, JSON, gzip, data sets
    without a File Meta header), and files without Pixel Data or Rows (SR, RT plan, DICOMDIR).
    """
    params: list[Any] = []
    for name in sorted(get_testdata_files()):
        path = Path(name)
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(path, defer_size=256)
        except InvalidDicomError:
            continue
        uid = ds.file_meta.get("TransferSyntaxUID")
        if uid is None or find_transfer_syntax(uid) is None:
            continue
        if "PixelData" not in ds or "Rows" not in ds:
            continue
        case_id = path.relative_to(TEST_FILES).as_posix()
        if case_id in EXCLUDED:
            suffix, reason = EXCLUDED[case_id]
            skip = pytest.mark.skip(reason=reason)
            params.append(pytest.param(path, id=f"{case_id}-{suffix}", marks=skip))
        else:
            params.append(pytest.param(path, id=case_id))
    return params


CORPUS = _corpus()


def _read(path: Path, tmp_path: Path) -> tuple[Path, Dataset, Dataset]:
    """(file to frame, data set read with defer_size=256, data set read in full)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path, defer_size=256)
        if ds.file_meta.TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
            return path, ds, dcmread(path)
        inflated, body_offset = _inflate(path, tmp_path / path.name)
        with inflated.open("rb") as fp:
            fp.seek(body_offset)
            deferred = read_dataset(fp, is_implicit_VR=False, is_little_endian=True, defer_size=256)
            fp.seek(body_offset)
            full = read_dataset(fp, is_implicit_VR=False, is_little_endian=True)
    deferred.file_meta = full.file_meta = ds.file_meta
    return inflated, deferred, full


def _inflate(path: Path, target: Path) -> tuple[Path, int]:
    """Copy a deflated-data-set file with its body inflated, as the caller does before framing.

    Preamble, "DICM" and File Meta stay as they are (PS3.10 7.1); what follows is raw deflate
    (PS3.5 A.5). Returns the new file and where its data set starts.
    """
    data = path.read_bytes()
    tag, vr, _, group_length = struct.unpack("<I2sHI", data[132:144])
    if (tag, vr) != (0x00000002, b"UL"):
        raise ValueError(f"{path.name}: File Meta does not start with its group length")
    body_offset = 144 + group_length
    target.write_bytes(data[:body_offset] + zlib.decompress(data[body_offset:], -zlib.MAX_WBITS))
    return target, body_offset


@pytest.mark.parametrize("path", CORPUS)
def test_corpus_frames_match_pydicom(path: Path, tmp_path: Path, locate: Locate) -> None:
    framed_path, ds, full = _read(path, tmp_path)
    stored = locate(framed_path, ds)
    table = stored.build()
    frames = stored.read_frames(table)
    layout = stored.layout
    assert sorted(frames) == list(range(1, layout.number_of_frames + 1))
    if stored.syntax.encapsulated:
        assert table.value_length == len(full.PixelData) + 8  # items, then the delimiter
        extended = None
        if "ExtendedOffsetTable" in full:
            extended = (full.ExtendedOffsetTable, full.ExtendedOffsetTableLengths)
        expected = list(
            generate_frames(
                full.PixelData,
                number_of_frames=layout.number_of_frames,
                extended_offsets=extended,
            )
        )
        assert [frames[n] for n in sorted(frames)] == expected
    elif layout.bits_allocated == 1:
        all_bits = unpack_bits(full.PixelData)
        for number, frame in frames.items():
            bits = np.asarray(unpack_bits(frame))
            assert len(frame) == layout.frame_bytes
            start, size = (number - 1) * layout.frame_bits, layout.frame_bits
            assert np.array_equal(bits[:size], all_bits[start : start + size])
            assert not bits[size:].any()  # padding bits of the last byte
    else:
        assert table.value_length == len(full.PixelData)
        size = layout.frame_bytes
        for number, frame in frames.items():
            assert frame == full.PixelData[(number - 1) * size : number * size]


def test_corpus_covers_the_layouts_that_matter() -> None:
    ids = {p.id for p in CORPUS}
    expected = {
        "examples_ybr_color.dcm",  # JPEG baseline, 30 frames, Basic Offset Table
        "rtdose_rle.dcm",  # RLE, 15 frames, empty Basic Offset Table
        "examples_jpeg2k.dcm",  # JPEG 2000, one frame in 3 fragments
        "JPEG2000-embedded-sequence-delimiter.dcm",
        "liver_1frame.dcm",  # Bits Allocated 1
        "SC_ybr_full_422_uncompressed.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",  # deflated data set, inflated first
        "rtdose.dcm",  # native, 15 frames of 32 bits
    }
    assert expected <= ids
    assert len(ids) > 60


def test_truncated_corpus_file_is_refused(locate: Locate) -> None:
    path = Path(get_testdata_file("MR_truncated.dcm") or "")
    stored = locate(path, dcmread(path, defer_size=256))
    with pytest.raises(FrameTableError, match="truncated"):
        stored.build()


# --- synthetic files -------------------------------------------------------------------------


def layout(
    frames: int,
    rows: int = 8,
    columns: int = 8,
    *,
    samples: int = 1,
    bits: int = 8,
    photometric: str = "MONOCHROME2",
) -> PixelLayout:
    return PixelLayout(rows, columns, samples, bits, frames, photometric)


def fake_codestreams(count: int, marker: bytes, size: int = 60) -> list[bytes]:
    return [marker + bytes([0x10 + n]) * (size - len(marker)) for n in range(count)]


def frame_numbers(table: FrameTable) -> list[tuple[int, int]]:
    return [(f.frame_number, f.fragment_index) for f in table.fragments]


def test_basic_offset_table_groups_several_fragments_per_frame(write_part10: WritePart10) -> None:
    frames = fake_codestreams(3, b"no marker")  # only the table can place these frames
    stored = write_part10(JPEGBaseline8Bit, encapsulate(frames, 3, has_bot=True), layout(3))
    table = stored.build()
    assert frame_numbers(table) == [(n, i) for n in (1, 2, 3) for i in range(3)]
    assert list(stored.read_frames(table).values()) == frames


@pytest.mark.parametrize(
    ("uid", "marker"),
    [(JPEGBaseline8Bit, b"\xff\xd8"), (JPEG2000, b"\xff\x4f\xff\x51")],
    ids=["jpeg-soi", "jpeg2000-soc"],
)
def test_empty_basic_offset_table_finds_frames_by_marker(
    write_part10: WritePart10, uid: str, marker: bytes
) -> None:
    frames = fake_codestreams(4, marker)
    stored = write_part10(uid, encapsulate(frames, 3, has_bot=False), layout(4))
    table = stored.build()
    assert frame_numbers(table) == [(n, i) for n in (1, 2, 3, 4) for i in range(3)]
    assert list(stored.read_frames(table).values()) == frames


def test_extended_offset_table_places_one_fragment_per_frame(write_part10: WritePart10) -> None:
    frames = [b"\xff\xd8" + bytes([n]) * (40 + n) for n in range(5)]  # odd lengths get a pad byte
    data, offsets, lengths = encapsulate_extended(frames)
    extra = {0x7FE00001: ("OV", offsets), 0x7FE00002: ("OV", lengths)}
    stored = write_part10(JPEGBaseline8Bit, data, layout(5), extra=extra)
    table = stored.build(
        extended_offsets=struct.unpack("<5Q", offsets),
        extended_lengths=struct.unpack("<5Q", lengths),
    )
    assert frame_numbers(table) == [(n, 0) for n in range(1, 6)]
    padded = [f + b"\x00" * (len(f) % 2) for f in frames]
    assert list(stored.read_frames(table).values()) == padded
    with pytest.raises(FrameTableError, match="length 10 of frame 1 disagrees"):
        stored.build(extended_offsets=struct.unpack("<5Q", offsets), extended_lengths=[10] * 5)


def test_one_fragment_per_frame_without_table(write_part10: WritePart10) -> None:
    frames = [bytes([n]) * 64 for n in range(3)]
    stored = write_part10(RLELossless, encapsulate(frames, has_bot=False), layout(3))
    table = stored.build()
    assert frame_numbers(table) == [(1, 0), (2, 0), (3, 0)]
    assert list(stored.read_frames(table).values()) == frames


def test_truncated_item_stream_is_refused(write_part10: WritePart10) -> None:
    stored = write_part10(RLELossless, encapsulate([b"a" * 64, b"b" * 64]), layout(2))
    data = stored.path.read_bytes()
    stored.path.write_bytes(data[:-20])  # cuts the last fragment
    with pytest.raises(FrameTableError, match="past the end of the value or file"):
        stored.build()
    stored.path.write_bytes(data[:-8])  # cuts exactly the Sequence Delimitation Item
    with pytest.raises(FrameTableError, match="without a Sequence Delimitation Item"):
        stored.build()


def test_fewer_fragments_than_frames_is_refused(write_part10: WritePart10) -> None:
    stored = write_part10(JPEGBaseline8Bit, encapsulate(fake_codestreams(2, b"\xff\xd8")), layout(3))
    with pytest.raises(FrameTableError, match=r"2 fragment.* cannot hold 3 frames"):
        stored.build()


def test_one_bit_frames_are_realigned_bit_by_bit(write_part10: WritePart10) -> None:
    bits = np.random.default_rng(7).integers(0, 2, size=(3, 9), dtype=np.uint8)
    packed = np.packbits(bits.ravel(), bitorder="little").tobytes()  # 27 bits in 4 bytes
    stored = write_part10(ExplicitVRLittleEndian, packed, layout(3, 3, 3, bits=1))
    table = stored.build()
    start = stored.value_offset
    assert table.fragments == (
        FrameFragment(1, 0, start, 2, 0),
        FrameFragment(2, 0, start + 1, 2, 1),  # bit 9 = byte 1, bit 1
        FrameFragment(3, 0, start + 2, 2, 2),  # bit 18 = byte 2, bit 2
    )
    for number, frame in stored.read_frames(table).items():
        assert len(frame) == 2
        unpacked = np.unpackbits(np.frombuffer(frame, np.uint8), bitorder="little")
        assert unpacked[:9].tolist() == bits[number - 1].tolist()
        assert not unpacked[9:].any()


def test_ybr_full_422_native_frame_holds_two_samples_per_pixel(write_part10: WritePart10) -> None:
    ybr = layout(2, 4, 4, samples=3, photometric="YBR_FULL_422")
    stored = write_part10(ExplicitVRLittleEndian, bytes(range(64)), ybr)
    table = stored.build()
    spans = [(f.offset - stored.value_offset, f.length) for f in table.fragments]
    assert spans == [(0, 32), (32, 32)]
    assert ybr.frame_bytes == 32
    assert layout(1, 4, 4, samples=3, photometric="RGB").frame_bytes == 48


def test_big_endian_native_offsets(write_part10: WritePart10) -> None:
    pixels = np.arange(3 * 16, dtype=">u2").tobytes()
    stored = write_part10(ExplicitVRBigEndian, pixels, layout(3, 4, 4, bits=16), vr="OW")
    table = stored.build()
    assert [(f.offset - stored.value_offset, f.length) for f in table.fragments] == [
        (0, 32),
        (32, 32),
        (64, 32),
    ]
    assert stored.read_frames(table)[2] == pixels[32:64]  # bytes as stored; swapping comes later


def test_video_stream_fragments_all_belong_to_frame_0(write_part10: WritePart10) -> None:
    stream = bytes(range(256)) * 4
    stored = write_part10(MPEG4HP41, encapsulate([stream], 4, has_bot=False), layout(10))
    table = stored.build()
    assert frame_numbers(table) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert stored.read_frames(table) == {0: stream}


def test_native_value_shorter_than_its_frames_is_refused(write_part10: WritePart10) -> None:
    stored = write_part10(ExplicitVRLittleEndian, bytes(126), layout(2))
    with pytest.raises(FrameTableError, match=r"holds 126 bytes but 2 frame.* need 128"):
        stored.build()


def test_native_odd_value_keeps_its_pad_byte_out_of_the_frame(write_part10: WritePart10) -> None:
    stored = write_part10(ExplicitVRLittleEndian, bytes(range(27)) + b"\x00", layout(1, 3, 3, samples=3))
    table = stored.build()
    assert table.fragments == (FrameFragment(1, 0, stored.value_offset, 27),)
    assert table.value_length == 28


class CountingBytesIO(BytesIO):
    bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_building_reads_headers_and_markers_only(write_part10: WritePart10) -> None:
    frames = fake_codestreams(3, b"\xff\xd8", size=300_000)
    stored = write_part10(JPEGBaseline8Bit, encapsulate(frames, 4, has_bot=False), layout(3))
    fp = CountingBytesIO(stored.path.read_bytes())
    table = build_frame_table(
        fp,
        value_offset=stored.value_offset,
        value_length=stored.value_length,
        layout=stored.layout,
        syntax=stored.syntax,
    )
    assert len(table.fragments) == 12
    # 14 item headers (table, 12 fragments, delimiter) and one 12-byte peek per fragment
    assert fp.bytes_read <= 14 * 8 + 12 * 12


def test_read_frame_needs_the_fragments_of_one_frame() -> None:
    fragments = [FrameFragment(1, 0, 0, 2), FrameFragment(2, 0, 2, 2)]
    with pytest.raises(ValueError, match="exactly one frame"):
        read_frame(lambda _offset, n: b"\x00" * n, fragments, layout(2), encapsulated=True)


def test_read_frame_refuses_a_short_read() -> None:
    with pytest.raises(FrameTableError, match="read 1 of 4 bytes"):
        read_frame(lambda _offset, _n: b"\x00", [FrameFragment(1, 0, 0, 4)], layout(1), encapsulated=True)
