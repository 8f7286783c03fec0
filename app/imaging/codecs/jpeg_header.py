"""The frame header of a JPEG (ISO/IEC 10918-1) or JPEG-LS (ISO/IEC 14495-1) codestream.

Why: both families share the marker syntax (B.1.1): 0xFF, a marker byte, and, except for the
stand-alone markers, a 2-byte big-endian length that counts itself. The frame header is the first
SOF segment, before the first scan (SOS):

- JPEG SOF0-3, 5-7, 9-11, 13-15 (B.2.2): P (1 byte), Y lines (2), X samples per line (2), Nf (1).
  Y 0 means "given later by a DNL marker", which the decoders here do not support: unreadable.
- JPEG-LS SOF55 (0xFFF7, C.2.2): the same fields. When X or Y does not fit 16 bits, it is 0 and an
  LSE segment of ID 4 (oversize image dimension, C.2.4.1.4) gives both, each in Wxy bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

from app.imaging.codecs.stream_header import CodestreamHeader, HeaderError, need

SOI = 0xD8
SOS = 0xDA
DHP = 0xDE  # hierarchical frame header: the same fields as a SOF
SOF55 = 0xF7  # JPEG-LS frame header
LSE = 0xF8  # JPEG-LS preset parameters
LSE_OVERSIZE_DIMENSION = 4
# SOF markers of ISO/IEC 10918-1 Table B.1: C0-C3, C5-C7, C9-CB, CD-CF (C4 DHT, C8 JPG, CC DAC are not)
JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# markers without a length: TEM, RST0-7, SOI, EOI
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8, 0xD9})


def jpeg_header(data: bytes, _frame_length: int) -> CodestreamHeader:
    """The frame header of a JPEG frame: its first SOF (or DHP) segment."""
    return _frame_header(data, "JPEG")


def jpegls_header(data: bytes, _frame_length: int) -> CodestreamHeader:
    """The frame header of a JPEG-LS frame: SOF55, with an oversize dimension LSE applied."""
    return _frame_header(data, "JPEG-LS")


def _frame_header(data: bytes, family: str) -> CodestreamHeader:
    """The first frame header of either kind: libjpeg, behind pydicom, reads JPEG-LS and JPEG alike,
    so a frame labelled with the other family still decodes, and is judged by what it holds."""
    header: CodestreamHeader | None = None
    oversize: tuple[int, int] | None = None
    for marker, start, length in _segments(data, family):
        if header is None and (marker in JPEG_SOF or marker == DHP):
            header = _frame_fields(data, start, length, "JPEG SOF")
        elif header is None and marker == SOF55:
            header = _frame_fields(data, start, length, "JPEG-LS SOF55")
        elif marker == LSE and length >= 1 and data[start] == LSE_OVERSIZE_DIMENSION:
            oversize = _oversize_dimension(data, start, length)
    if header is None:
        raise HeaderError(f"no {family} frame header (SOF) before the first scan")
    if oversize is not None and header.kind.startswith("JPEG-LS"):
        rows, columns = oversize
        return CodestreamHeader(header.kind, columns, rows, header.components, header.precision)
    if not header.rows or not header.columns:
        raise HeaderError(f"the {header.kind} header gives {header.columns}x{header.rows} pixels")
    return header


def _segments(data: bytes, family: str) -> Iterator[tuple[int, int, int]]:
    """(marker, payload start, payload length) of each segment from SOI to the first SOS."""
    need(data, 2)
    if data[0] != 0xFF or data[1] != SOI:
        raise HeaderError(f"not a {family} codestream: it does not start with SOI (FFD8)")
    position = 2
    while True:
        need(data, position + 2)
        if data[position] != 0xFF:
            raise HeaderError(f"no marker at byte {position} of the {family} header")
        while data[position + 1] == 0xFF:  # fill bytes (B.1.1.2)
            position += 1
            need(data, position + 2)
        marker = data[position + 1]
        position += 2
        if marker in _STANDALONE:
            continue
        need(data, position + 2)
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            raise HeaderError(f"marker FF{marker:02X} has a segment length of {length}")
        need(data, position + length)
        yield marker, position + 2, length - 2
        if marker == SOS:
            return
        position += length


def _frame_fields(data: bytes, start: int, length: int, kind: str) -> CodestreamHeader:
    if length < 6:
        raise HeaderError(f"the {kind} segment is {length} bytes, too short for a frame header")
    precision = data[start]
    rows = int.from_bytes(data[start + 1 : start + 3], "big")
    columns = int.from_bytes(data[start + 3 : start + 5], "big")
    components = data[start + 5]
    return CodestreamHeader(kind, columns, rows, components, precision)


def _oversize_dimension(data: bytes, start: int, length: int) -> tuple[int, int]:
    """Rows and columns of an LSE ID 4 segment: ID, Wxy, then Y and X in Wxy bytes each."""
    if length < 2:
        raise HeaderError("the JPEG-LS oversize dimension segment is too short")
    width = data[start + 1]
    if not 1 <= width <= 4 or length < 2 + 2 * width:
        raise HeaderError(f"the JPEG-LS oversize dimension segment has Wxy {width}")
    rows = int.from_bytes(data[start + 2 : start + 2 + width], "big")
    columns = int.from_bytes(data[start + 2 + width : start + 2 + 2 * width], "big")
    return rows, columns
