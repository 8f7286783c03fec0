"""The segment table that opens an RLE Lossless frame (PS3.5 Annex G).

Why: the frame starts with a 64-byte header of sixteen little-endian 32-bit numbers: the number of
segments (1 to 15), then the offset of each segment from the start of the frame (G.5), unused
offsets 0. A decoder follows the offsets, so each must lie inside the frame, after the header
(the first is 64), in increasing order; the count must match the data set (`frame_header`).
"""

from __future__ import annotations

import struct

from app.imaging.codecs.stream_header import CodestreamHeader, need

RLE_HEADER_BYTES = 64
MAX_SEGMENTS = 15
_TABLE = struct.Struct("<16I")


def rle_header(data: bytes, frame_length: int) -> CodestreamHeader:
    """The segment count of an RLE frame; a table that cannot be right is its `contradiction`."""
    need(data, RLE_HEADER_BYTES)
    count, *offsets = _TABLE.unpack_from(data)
    return CodestreamHeader(
        "RLE header", segments=count, contradiction=_table_problem(count, offsets, frame_length)
    )


def _table_problem(count: int, offsets: list[int], frame_length: int) -> str | None:
    if not 1 <= count <= MAX_SEGMENTS:
        return f"{count} segments (1 to {MAX_SEGMENTS} allowed)"
    used = offsets[:count]
    if used[0] != RLE_HEADER_BYTES:
        return f"segment 1 at byte {used[0]}, not {RLE_HEADER_BYTES}"
    for index, (this, following) in enumerate(zip(used, [*used[1:], frame_length], strict=True), start=1):
        if this >= frame_length:
            return f"segment {index} at byte {this}, past the frame's {frame_length} bytes"
        if following <= this:
            return f"segment {index + 1} at byte {following}, before segment {index}"
    return None
