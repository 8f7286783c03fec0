"""Encapsulated Pixel Data (PS3.5 A.4): its items, located by their headers, and its frame starts.

Why: ingest must locate every fragment of files of 1 GiB and more, so it reads the 8-byte item
headers and seeks over the fragment contents; memory stays flat and nothing is decoded. Which
fragments begin frames comes from the Extended or Basic Offset Table or, without a usable one,
from fragment counts and codestream start markers (`frame_starts`).

Layout (PS3.5 A.4, always little endian): an item (FFFE,E000) holding the Basic Offset Table,
possibly empty; one item per fragment; then the Sequence Delimitation Item (FFFE,E0DD), length 0.
A value with a defined length (not conformant, seen in the wild) is read as items that fill
exactly that length. The Basic Offset Table's entries are not read by the scan (a garbled table
can claim gigabytes): `read_basic_offsets` reads them once the caller knows how many to expect.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

from app.imaging.codecs.registry import CODEC_FAMILIES
from app.imaging.syntaxes import FrameLayout, TransferSyntax

ITEM_TAG = 0xFFFEE000
SEQUENCE_DELIMITATION_TAG = 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM_HEADER_LENGTH = 8  # tag (group, element) and a 4-byte length, PS3.5 7.5

_ITEM_HEADER = struct.Struct("<HHI")

# Bytes to peek at the start of a fragment: enough for every family's codestream start marker
# (consulted only when no offset table says where frames start).
_MARKER_PEEK = max(len(m) for family in CODEC_FAMILIES.values() for m in family.start_markers)


class EncapsulationError(ValueError):
    """Encapsulated Pixel Data is truncated, garbled, or does not hold the frames declared."""


@dataclass(frozen=True, slots=True)
class FragmentItem:
    """One fragment item: where its header starts, where its data starts, its stored length."""

    item_offset: int  # absolute offset of the item tag
    data_offset: int  # absolute offset of the first data byte (item_offset + 8)
    length: int  # item value length as stored, pad byte included


@dataclass(frozen=True, slots=True)
class ItemStream:
    """The items of one encapsulated Pixel Data value, located but not read."""

    basic_offset_table_offset: int  # absolute offset of the Basic Offset Table's first data byte
    basic_offset_table_length: int  # its item length in bytes (0: empty table)
    fragments: tuple[FragmentItem, ...]
    end_offset: int  # first byte after the Sequence Delimitation Item (after the value if defined)


def scan_item_stream(fp: BinaryIO, *, value_offset: int, value_length: int | None) -> ItemStream:
    """Locate the Basic Offset Table and every fragment item of the value at `value_offset`.

    Why: one pass over the item headers is all a frame table needs; fragment data is skipped.
    `value_length` None (or 0xFFFFFFFF) is the undefined length PS3.5 A.4 requires; the stream
    must then end with a Sequence Delimitation Item. A stream without one is refused: Pixel Data
    is nearly always the last element, so a file cut at an item boundary would lose frames
    silently if it were accepted.
    """
    file_size = fp.seek(0, os.SEEK_END)
    defined_length = None if value_length == UNDEFINED_LENGTH else value_length
    limit = file_size if defined_length is None else value_offset + defined_length
    if limit > file_size:
        raise EncapsulationError(
            f"Pixel Data value of {value_length} bytes at offset {value_offset} runs past the end "
            f"of the file ({file_size} bytes)"
        )
    tag, bot_length = _read_item_header(fp, value_offset, limit)
    if tag != ITEM_TAG:
        raise EncapsulationError(
            f"expected the Basic Offset Table item (FFFE,E000) at offset {value_offset}, found {_tag(tag)}"
        )
    bot_offset = value_offset + ITEM_HEADER_LENGTH
    _check_item_fits(bot_offset, bot_length, limit, "Basic Offset Table")
    fragments: list[FragmentItem] = []
    position = bot_offset + bot_length
    while not (defined_length is not None and position == limit):
        tag, length = _read_item_header(fp, position, limit)
        if tag == SEQUENCE_DELIMITATION_TAG:
            if length != 0:
                raise EncapsulationError(
                    f"Sequence Delimitation Item at offset {position} has length {length}, not 0"
                )
            position += ITEM_HEADER_LENGTH
            break
        if tag != ITEM_TAG:
            raise EncapsulationError(f"expected an item at offset {position}, found {_tag(tag)}")
        data_offset = position + ITEM_HEADER_LENGTH
        _check_item_fits(data_offset, length, limit, f"fragment item at offset {position}")
        fragments.append(FragmentItem(position, data_offset, length))
        position = data_offset + length
    return ItemStream(bot_offset, bot_length, tuple(fragments), position)


def read_basic_offsets(fp: BinaryIO, stream: ItemStream) -> tuple[int, ...]:
    """The Basic Offset Table's 32-bit little-endian entries (PS3.5 A.4, Table A.4-1).

    Why: kept apart from the scan so a caller reads the table only when its size is plausible.
    """
    length = stream.basic_offset_table_length
    if length % 4:
        raise EncapsulationError(f"Basic Offset Table length {length} is not a multiple of 4")
    fp.seek(stream.basic_offset_table_offset)
    data = fp.read(length)
    if len(data) != length:
        raise EncapsulationError("Basic Offset Table is truncated")
    return struct.unpack(f"<{length // 4}I", data)


def peek(fp: BinaryIO, offset: int, size: int) -> bytes:
    """Up to `size` bytes at `offset`: enough to recognise a codestream's first marker."""
    fp.seek(offset)
    return fp.read(size)


@dataclass(frozen=True, slots=True)
class ExtendedOffsets:
    """(7FE0,0001) Extended Offset Table and (7FE0,0002) its Lengths, decoded."""

    offsets: Sequence[int]
    lengths: Sequence[int]

    @classmethod
    def from_elements(
        cls, offsets: Sequence[int] | None, lengths: Sequence[int] | None
    ) -> ExtendedOffsets | None:
        """The table, None when neither element is present; one without the other is refused."""
        if offsets is None and lengths is None:
            return None
        if offsets is None or lengths is None:
            raise EncapsulationError("Extended Offset Table and its Lengths must come together")
        return cls(offsets, lengths)


def frame_starts(
    fp: BinaryIO,
    stream: ItemStream,
    frames: int,
    syntax: TransferSyntax,
    extended: ExtendedOffsets | None = None,
) -> list[int]:
    """Indices of the fragment items that begin frames 1..`frames`; item 0 begins frame 1.

    Why: the rules, in order: exactly one fragment per frame where the syntax requires it (RLE,
    deflate, encapsulated uncompressed; PS3.5 A.4); the Extended Offset Table; a single frame
    takes every fragment; a usable Basic Offset Table; as many fragments as frames; codestream
    starts. Not for video syntaxes, whose one stream is not split into frames.
    """
    count = len(stream.fragments)
    if count < frames:
        raise EncapsulationError(f"{count} fragment(s) cannot hold {frames} frames")
    if syntax.frames is FrameLayout.ONE_FRAGMENT_PER_FRAME and count != frames:
        raise EncapsulationError(
            f"{syntax.name} has one fragment per frame (PS3.5 A.4); found {count} fragments for "
            f"{frames} frame(s)"
        )
    if extended is not None:
        _check_extended_offsets(stream.fragments, frames, extended)
        return list(range(frames))
    if frames == 1:
        return [0]
    bot_problem = "an empty Basic Offset Table"
    if stream.basic_offset_table_length:
        starts_or_problem = _basic_offset_starts(fp, stream, frames)
        if isinstance(starts_or_problem, list):
            return starts_or_problem
        bot_problem = f"an unusable Basic Offset Table ({starts_or_problem})"
    if count == frames:
        return list(range(frames))
    return _marker_starts(fp, stream.fragments, frames, syntax, bot_problem)


def _basic_offset_starts(fp: BinaryIO, stream: ItemStream, frames: int) -> list[int] | str:
    """Frame starts from the Basic Offset Table, or why it is not trusted (PS3.5 A.4).

    Why fall back instead of failing: real files carry broken tables (another frame count, 32-bit
    offsets wrapped past 4 GiB, offsets from the wrong item), and the empty-table rules check
    themselves, so nothing is lost by trying them.
    """
    table_length = stream.basic_offset_table_length
    if table_length != 4 * frames:
        return f"{table_length} bytes for {frames} frames"
    offsets = read_basic_offsets(fp, stream)
    if offsets[0] != 0 or any(a >= b for a, b in pairwise(offsets)):
        return "entries must start at 0 and increase"
    first = stream.fragments[0].item_offset
    index_of = {item.item_offset - first: index for index, item in enumerate(stream.fragments)}
    if any(offset not in index_of for offset in offsets):
        return "an entry does not point at a fragment item"
    return [index_of[offset] for offset in offsets]


def _check_extended_offsets(items: Sequence[FragmentItem], frames: int, extended: ExtendedOffsets) -> None:
    """Check the Extended Offset Table names each item in turn as one frame (PS3.3 C.7.6.3.1.8).

    Why: the table is allowed only with one fragment per frame, so it must agree with the items;
    a disagreeing table is refused, not trusted. A length may leave out the item's pad byte.
    """
    offsets, lengths = extended.offsets, extended.lengths
    if not len(offsets) == len(lengths) == frames == len(items):
        raise EncapsulationError(
            f"Extended Offset Table has {len(offsets)} offsets and {len(lengths)} lengths for "
            f"{frames} frames in {len(items)} fragments; it needs one fragment per frame"
        )
    first = items[0].item_offset
    for number, (item, offset, length) in enumerate(zip(items, offsets, lengths, strict=True), 1):
        if first + offset != item.item_offset:
            raise EncapsulationError(
                f"Extended Offset Table offset {offset} of frame {number} does not point at its "
                f"fragment item (relative offset {item.item_offset - first})"
            )
        if not (length == item.length or (length % 2 and length + 1 == item.length)):
            raise EncapsulationError(
                f"Extended Offset Table length {length} of frame {number} disagrees with its "
                f"fragment item length {item.length}"
            )


def _marker_starts(
    fp: BinaryIO,
    items: Sequence[FragmentItem],
    frames: int,
    syntax: TransferSyntax,
    bot_problem: str,
) -> list[int]:
    """Frame starts found by peeking for the codec's codestream start marker in each fragment.

    Why: with no usable offset table and more fragments than frames, a fragment opening a
    codestream is the only evidence of a frame start (PS3.5 A.4: no fragment spans two frames).
    """
    markers = CODEC_FAMILIES[syntax.codec].start_markers
    if not markers:
        raise EncapsulationError(
            f"{len(items)} fragments for {frames} frames with {bot_problem}, and codec "
            f"{syntax.codec!r} has no known codestream start marker"
        )
    starts = [
        index
        for index, item in enumerate(items)
        if peek(fp, item.data_offset, min(item.length, _MARKER_PEEK)).startswith(markers)
    ]
    if len(starts) != frames or starts[0] != 0:
        raise EncapsulationError(
            f"{len(items)} fragments for {frames} frames with {bot_problem}: {len(starts)} "
            f"{syntax.codec} codestream start(s) found (fragments {starts[:8]}), expected "
            f"{frames} beginning with the first fragment"
        )
    return starts


def _read_item_header(fp: BinaryIO, position: int, limit: int) -> tuple[int, int]:
    """The (tag, length) of the item header at `position`; refused if it ends past `limit`."""
    if position + ITEM_HEADER_LENGTH > limit:
        raise EncapsulationError(
            f"item stream ends at offset {position} (value or file end at {limit}) without a "
            "Sequence Delimitation Item (FFFE,E0DD)"
        )
    fp.seek(position)
    header = fp.read(ITEM_HEADER_LENGTH)
    if len(header) != ITEM_HEADER_LENGTH:
        raise EncapsulationError(f"file ends inside the item header at offset {position}")
    group, element, length = _ITEM_HEADER.unpack(header)
    return group << 16 | element, length


def _check_item_fits(data_offset: int, length: int, limit: int, what: str) -> None:
    """Refuse an item whose value is of undefined length or runs past `limit` (a truncated file)."""
    if length == UNDEFINED_LENGTH:
        raise EncapsulationError(f"{what} has undefined length; PS3.5 A.4 needs a defined one")
    if data_offset + length > limit:
        raise EncapsulationError(
            f"{what} claims {length} bytes from offset {data_offset}, past the end of the value or "
            f"file at {limit}: the file is truncated or the item stream is garbled"
        )


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
