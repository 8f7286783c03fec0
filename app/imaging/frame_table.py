"""The frame table: where each frame's bytes lie in a stored Part 10 file, built once at ingest.

Why: serving a frame must be an index lookup plus a ranged read, never a parse. Native frames sit
back to back in one value, bit-packed across frames for Bits Allocated 1 (PS3.5 8.1.1, 8.2);
encapsulated frames are fragment items (PS3.5 A.4), mapped to frames by the Extended or Basic
Offset Table or, without a usable one, by fragment counts and codestream start markers.

Errors: `FrameTableError` (a ValueError) for anything that does not fit; it wraps the
`EncapsulationError` of the item scanner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

from app.imaging.encapsulation import (
    UNDEFINED_LENGTH,
    EncapsulationError,
    ExtendedOffsets,
    FragmentItem,
    ItemStream,
    frame_starts,
    scan_item_stream,
)
from app.imaging.pixel_layout import PixelLayout as PixelLayout  # re-exported for its callers
from app.imaging.syntaxes import TransferSyntax


class FrameTableError(ValueError):
    """The Pixel Data value cannot be split into the frames the data set declares."""


@dataclass(frozen=True, slots=True)
class FrameFragment:
    """One byte range of one frame in the stored file."""

    frame_number: int  # 1-based; 0: the whole stream (video syntaxes)
    fragment_index: int  # 0-based position of this fragment within its frame
    offset: int  # absolute offset of the first data byte (native: of the frame's first byte)
    length: int  # encapsulated: item length as stored, pad included; native: bytes spanned
    bit_offset: int = 0  # native Bits Allocated 1 only: bit (LSB first) where the frame starts


@dataclass(frozen=True, slots=True)
class FrameTable:
    """Every fragment of every frame, and the extent of the whole Pixel Data value."""

    fragments: tuple[FrameFragment, ...]  # ordered by (frame_number, fragment_index)
    value_length: int  # undefined length: from value_offset through the Sequence Delimitation Item


def build_frame_table(
    fp: BinaryIO,
    *,
    value_offset: int,
    value_length: int | None,
    layout: PixelLayout,
    syntax: TransferSyntax,
    extended_offsets: Sequence[int] | None = None,
    extended_lengths: Sequence[int] | None = None,
) -> FrameTable:
    """Locate every frame of the Pixel Data value at `value_offset` in the Part 10 file `fp`.

    Why: done once at ingest so that serving a frame is a ranged read; reads item headers and a
    few marker bytes only. `value_length` None or 0xFFFFFFFF is undefined length. A deflated data
    set (1.2.840.10008.1.2.1.99) must be inflated by the caller; offsets are into that file.
    """
    if layout.number_of_frames < 1:
        raise FrameTableError(f"Number of Frames is {layout.number_of_frames}, not at least 1")
    if value_length == UNDEFINED_LENGTH:
        value_length = None
    if syntax.encapsulated:
        try:
            stream = scan_item_stream(fp, value_offset=value_offset, value_length=value_length)
            extended = ExtendedOffsets.from_elements(extended_offsets, extended_lengths)
            fragments = _encapsulated_fragments(fp, stream, layout, syntax, extended)
        except EncapsulationError as exc:
            raise FrameTableError(f"encapsulated Pixel Data: {exc}") from exc
        total = stream.end_offset - value_offset if value_length is None else value_length
        return FrameTable(fragments, total)
    if value_length is None:
        raise FrameTableError(f"native Pixel Data ({syntax.name}) must have a defined length")
    _check_native_value(fp, value_offset, value_length, layout, syntax)
    fragments = tuple(
        _native_fragment(value_offset, layout.frame_bits, number)
        for number in range(1, layout.number_of_frames + 1)
    )
    return FrameTable(fragments, value_length)


def read_frame(
    read_range: Callable[[int, int], bytes],
    fragments: Sequence[FrameFragment],
    layout: PixelLayout,
    *,
    encapsulated: bool,
) -> bytes:
    """The bytes of one frame from its fragments; `read_range(offset, length)` reads the file.

    Why: the one place that turns table rows back into a frame. Encapsulated: the fragments'
    bytes joined. Native: the frame's bytes; for Bits Allocated 1, its bits moved to start at bit 0
    of byte 0, unused high bits of the last byte zero (PS3.5 8.1.1). `encapsulated` is required: a
    native 1-bit frame and a one-fragment encapsulated frame look alike, and only the first may be
    re-aligned.
    """
    if not fragments or len({f.frame_number for f in fragments}) != 1:
        raise ValueError("read_frame needs the fragments of exactly one frame")
    ordered = sorted(fragments, key=lambda f: f.fragment_index)
    if encapsulated:
        return b"".join(_read_exactly(read_range, f.offset, f.length) for f in ordered)
    if len(ordered) != 1:
        raise ValueError("a native frame is a single byte range")
    data = _read_exactly(read_range, ordered[0].offset, ordered[0].length)
    if layout.bits_allocated != 1:
        return data
    return _realign_bits(data, ordered[0].bit_offset, layout.frame_bits)


def _check_native_value(
    fp: BinaryIO, value_offset: int, value_length: int, layout: PixelLayout, syntax: TransferSyntax
) -> None:
    """Refuse a native value too short for its frames, or running past the end of the file."""
    bits_allocated = layout.bits_allocated
    if layout.frame_bits <= 0 or (bits_allocated != 1 and bits_allocated % 8):
        raise FrameTableError(f"no native frame size for {layout}")
    needed = layout.native_value_bytes
    if value_length < needed:  # more is allowed: the pad byte, or trailing padding
        raise FrameTableError(
            f"Pixel Data holds {value_length} bytes but {layout.number_of_frames} frame(s) of "
            f"{layout.frame_bits} bits need {needed}"
        )
    file_size = fp.seek(0, os.SEEK_END)
    if value_offset + value_length > file_size:
        raise FrameTableError(
            f"Pixel Data value of {value_length} bytes at offset {value_offset} runs past the end "
            f"of the file ({file_size} bytes): the file is truncated"
        )
    if syntax.big_endian and layout.number_of_frames > 1 and layout.frame_bits % 16:
        raise FrameTableError(  # 8-bit OW values are byte-swapped per word in big endian
            f"big endian frames of {layout.frame_bits} bits do not end on a 16-bit word, so a "
            "word may straddle two frames"
        )


def _native_fragment(value_offset: int, frame_bits: int, number: int) -> FrameFragment:
    """The bytes spanned by native frame `number` (1-based) and the bit where it starts."""
    first_bit = (number - 1) * frame_bits
    bit_offset = first_bit % 8
    length = -(-(bit_offset + frame_bits) // 8)
    return FrameFragment(number, 0, value_offset + first_bit // 8, length, bit_offset)


def _encapsulated_fragments(
    fp: BinaryIO,
    stream: ItemStream,
    layout: PixelLayout,
    syntax: TransferSyntax,
    extended: ExtendedOffsets | None,
) -> tuple[FrameFragment, ...]:
    """Group the fragment items into frames, each frame's items in stream order (PS3.5 A.4)."""
    items = stream.fragments
    if not items:
        raise EncapsulationError("no fragment items")
    if syntax.is_video:  # one stream holds every frame: frame_number 0
        return _fragments_of(0, items)
    starts = frame_starts(fp, stream, layout.number_of_frames, syntax, extended)
    return tuple(
        fragment
        for number, (first, stop) in enumerate(pairwise([*starts, len(items)]), start=1)
        for fragment in _fragments_of(number, items[first:stop])
    )


def _fragments_of(frame_number: int, items: Sequence[FragmentItem]) -> tuple[FrameFragment, ...]:
    return tuple(
        FrameFragment(frame_number, index, item.data_offset, item.length) for index, item in enumerate(items)
    )


def _read_exactly(read_range: Callable[[int, int], bytes], offset: int, length: int) -> bytes:
    """`read_range`'s bytes; a short read means the file no longer matches its table."""
    data = read_range(offset, length)
    if len(data) != length:
        raise FrameTableError(f"read {len(data)} of {length} bytes at offset {offset}")
    return data


def _realign_bits(data: bytes, bit_offset: int, frame_bits: int) -> bytes:
    """The `frame_bits` bits from bit `bit_offset` of `data` (LSB first), moved to bit 0.

    Why: Bits Allocated 1 frames are packed continuously, so frame k may start mid-byte
    (PS3.5 8.1.1); a frame served alone must start at bit 0 with zero padding bits.
    """
    bits = (int.from_bytes(data, "little") >> bit_offset) & ((1 << frame_bits) - 1)
    return bits.to_bytes(-(-frame_bits // 8), "little")
