"""Tests for app/imaging/encapsulation.py on hand-built item streams (PS3.5 A.4)."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from app.imaging.encapsulation import (
    EncapsulationError,
    ExtendedOffsets,
    ItemStream,
    frame_starts,
    read_basic_offsets,
    scan_item_stream,
)
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

PREFIX = b"\x00" * 10  # stands in for the header and the elements before Pixel Data
SOI = b"\xff\xd8"
SOC_SIZ = b"\xff\x4f\xff\x51"
JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def item(data: bytes, group: int = 0xFFFE, element: int = 0xE000) -> bytes:
    return struct.pack("<HHI", group, element, len(data)) + data


def bot(*offsets: int) -> bytes:
    return item(struct.pack(f"<{len(offsets)}I", *offsets))


SDI = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def scan(value: bytes, value_length: int | None = None) -> tuple[BytesIO, ItemStream]:
    fp = BytesIO(PREFIX + value)
    return fp, scan_item_stream(fp, value_offset=len(PREFIX), value_length=value_length)


def syntax(uid: str) -> TransferSyntax:
    found = find_transfer_syntax(uid)
    if found is None:
        raise LookupError(uid)
    return found


JPEG_BASELINE = syntax(JPEGBaseline8Bit)
JPEG_2000 = syntax(JPEG2000Lossless)
JPEG_XL = syntax("1.2.840.10008.1.2.4.110")
RLE = syntax(RLELossless)


def test_scan_gives_absolute_offsets_of_every_item() -> None:
    fp, stream = scan(bot(0, 14) + item(b"abcdef") + item(b"ghij") + SDI)
    first = len(PREFIX) + 16  # after the 8-byte BOT item header and its 8 bytes
    assert stream.basic_offset_table_offset == len(PREFIX) + 8
    assert stream.basic_offset_table_length == 8
    assert [(f.item_offset, f.data_offset, f.length) for f in stream.fragments] == [
        (first, first + 8, 6),
        (first + 14, first + 22, 4),
    ]
    assert stream.end_offset == len(fp.getvalue())
    assert read_basic_offsets(fp, stream) == (0, 14)


def test_embedded_delimiter_inside_a_fragment_is_data() -> None:
    _, stream = scan(item(b"") + item(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") + SDI)
    assert [f.length for f in stream.fragments] == [8]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (item(b"") + item(b"abcd")[:-1], "past the end"),  # file cut inside a fragment
        (item(b"") + item(b"abcd"), "without a Sequence Delimitation Item"),  # cut at an item
        (item(b"") + item(b"abcd")[:5], "inside the item header|without a Sequence"),
        (item(b"") + item(b"ab", element=0xE00D) + SDI, r"found \(FFFE,E00D\)"),
        (item(b"ab", 0x0008, 0x0016) + SDI, "Basic Offset Table item"),
        (item(b"") + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + SDI, "undefined length"),
        (item(b"") + item(b"ab") + struct.pack("<HHI", 0xFFFE, 0xE0DD, 4), "not 0"),
        (bot(0, 8)[:-2], "Basic Offset Table claims"),
    ],
    ids=[
        "cut-in-fragment",
        "cut-at-item",
        "cut-in-header",
        "wrong-tag",
        "no-bot",
        "undefined-item",
        "sdi-length",
        "cut-in-bot",
    ],
)
def test_garbled_or_truncated_stream_is_refused(value: bytes, message: str) -> None:
    with pytest.raises(EncapsulationError, match=message):
        scan(value)


def test_defined_length_value_is_read_as_items_filling_it() -> None:
    value = item(b"") + item(b"abcd") + item(b"ef")
    _, stream = scan(value + b"trailing element", value_length=len(value))
    assert [f.length for f in stream.fragments] == [4, 2]
    assert stream.end_offset == len(PREFIX) + len(value)
    with pytest.raises(EncapsulationError, match="past the end"):
        scan(value, value_length=len(value) + 4)


def test_basic_offset_table_groups_fragments() -> None:
    fp, stream = scan(bot(0, 24) + item(b"a" * 4) + item(b"b" * 4) + item(b"c" * 6) + SDI)
    assert frame_starts(fp, stream, 2, JPEG_BASELINE) == [0, 2]


@pytest.mark.parametrize(
    "table",
    [bot(0), bot(0, 12, 24), bot(4, 12), bot(0, 0), bot(0, 5), item(b"\x00" * 6)],
    ids=["too-few", "too-many", "not-from-0", "not-increasing", "between-items", "not-x4"],
)
def test_unusable_basic_offset_table_falls_back_to_markers(table: bytes) -> None:
    frames = item(SOI + b"ab") + item(b"cd") + item(SOI + b"ef")
    fp, stream = scan(table + frames + SDI)
    assert frame_starts(fp, stream, 2, JPEG_BASELINE) == [0, 2]


def test_unusable_basic_offset_table_is_named_when_fallback_fails() -> None:
    fp, stream = scan(bot(0, 99) + item(b"ab") + item(b"cd") + item(b"ef") + SDI)
    with pytest.raises(EncapsulationError, match=r"unusable Basic Offset Table \(an entry"):
        frame_starts(fp, stream, 2, JPEG_BASELINE)


@pytest.mark.parametrize(
    ("ts", "marker"),
    [(JPEG_BASELINE, SOI), (JPEG_2000, SOC_SIZ), (JPEG_XL, b"\xff\x0a"), (JPEG_XL, JXL_CONTAINER)],
    ids=["jpeg-soi", "j2k-soc", "jxl-codestream", "jxl-container"],
)
def test_empty_table_frames_start_at_codestream_markers(ts: TransferSyntax, marker: bytes) -> None:
    fragments = [marker + b"12", b"3456", b"78", marker + b"9a", marker + b"bc", b"de"]
    fp, stream = scan(item(b"") + b"".join(item(f) for f in fragments) + SDI)
    assert frame_starts(fp, stream, 3, ts) == [0, 3, 4]


def test_marker_count_other_than_number_of_frames_is_refused() -> None:
    fragments = [SOI + b"12", b"3456", SOI + b"78", SOI + b"9a"]
    fp, stream = scan(item(b"") + b"".join(item(f) for f in fragments) + SDI)
    with pytest.raises(EncapsulationError, match="3 jpeg codestream start"):
        frame_starts(fp, stream, 2, JPEG_BASELINE)


def test_first_fragment_must_start_a_frame() -> None:
    fragments = [b"12", SOI + b"34", SOI + b"56"]
    fp, stream = scan(item(b"") + b"".join(item(f) for f in fragments) + SDI)
    with pytest.raises(EncapsulationError, match="beginning with the first fragment"):
        frame_starts(fp, stream, 2, JPEG_BASELINE)


def test_one_fragment_per_frame_syntax_refuses_extra_fragments() -> None:
    fp, stream = scan(item(b"") + item(b"ab") + item(b"cd") + item(b"ef") + SDI)
    assert frame_starts(fp, stream, 3, RLE) == [0, 1, 2]
    with pytest.raises(EncapsulationError, match="one fragment per frame"):
        frame_starts(fp, stream, 2, RLE)
    with pytest.raises(EncapsulationError, match="one fragment per frame"):
        frame_starts(fp, stream, 1, RLE)


def test_fewer_fragments_than_frames_is_refused() -> None:
    fp, stream = scan(item(b"") + item(b"ab") + item(b"cd") + SDI)
    with pytest.raises(EncapsulationError, match=r"2 fragment.* cannot hold 3 frames"):
        frame_starts(fp, stream, 3, JPEG_BASELINE)


def test_single_frame_takes_every_fragment() -> None:
    fp, stream = scan(item(b"") + item(b"ab") + item(b"cd") + SDI)
    assert frame_starts(fp, stream, 1, JPEG_BASELINE) == [0]


def test_extended_offsets_must_point_at_items_with_matching_lengths() -> None:
    fp, stream = scan(item(b"") + item(b"abc\x00") + item(b"de") + SDI)
    assert frame_starts(fp, stream, 2, JPEG_BASELINE, ExtendedOffsets([0, 12], [3, 2])) == [0, 1]
    with pytest.raises(EncapsulationError, match="offset 10 of frame 2"):
        frame_starts(fp, stream, 2, JPEG_BASELINE, ExtendedOffsets([0, 10], [4, 2]))
    with pytest.raises(EncapsulationError, match="length 5 of frame 1"):
        frame_starts(fp, stream, 2, JPEG_BASELINE, ExtendedOffsets([0, 12], [5, 2]))
    with pytest.raises(EncapsulationError, match="1 offsets and 1 lengths for 2 frames"):
        frame_starts(fp, stream, 2, JPEG_BASELINE, ExtendedOffsets([0], [4]))


def test_extended_offsets_need_their_lengths() -> None:
    assert ExtendedOffsets.from_elements(None, None) is None
    with pytest.raises(EncapsulationError, match="must come together"):
        ExtendedOffsets.from_elements([0], None)
