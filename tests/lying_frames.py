"""Compressed frames whose own header lies about the image: the shape of a decompression bomb.

Each starts as an honest 512x512 frame from Fovea's encoders; then only its header is rewritten,
with a small marker walker of its own (not the code under test), to claim another size (or, for
RLE, another segment table). Decoders trust the header: on an unguarded server, decoding one of
these took minutes and gigabytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from pydicom.uid import (
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from app.imaging.codecs.decode import FrameFormat
from app.imaging.codecs.encode import encode_native_frame

ROWS = COLUMNS = 512
CLAIMED = 16000
FORMAT_16 = FrameFormat(ROWS, COLUMNS, 1, 16, 16, 0, "MONOCHROME2", 0)
FORMAT_8 = FrameFormat(ROWS, COLUMNS, 1, 8, 8, 0, "MONOCHROME2", 0)

JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"


@dataclass(frozen=True)
class LyingFrame:
    name: str
    transfer_syntax_uid: str
    fmt: FrameFormat  # what the data set says
    honest: bytes
    lying: bytes
    complaint: str  # what the refusal must say

    def __str__(self) -> str:
        return self.name


def native_pixels(fmt: FrameFormat) -> bytes:
    """A smooth gradient with some noise: compresses like an image, not like a constant."""
    rng = np.random.default_rng(7)
    ramp = np.add.outer(np.arange(fmt.rows), np.arange(fmt.columns)) << max(0, fmt.bits_stored - 10)
    values = ramp + rng.integers(0, 4, (fmt.rows, fmt.columns))
    if fmt.samples_per_pixel > 1:
        values = np.stack([values + sample for sample in range(fmt.samples_per_pixel)], axis=-1)
    dtype = "<u2" if fmt.bits_allocated == 16 else "u1"
    return (values % (1 << fmt.bits_stored)).astype(dtype).tobytes()


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(marker, offset of its length field) of each segment before the first scan."""
    found, position = [], 2
    while data[position + 1] != 0xDA:
        marker = data[position + 1]
        found.append((marker, position + 2))
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return found


def _jpeg_claiming(data: bytes, markers: set[int], columns: int, rows: int) -> bytes:
    """The frame with Y and X of its frame header (SOF or SOF55) replaced."""
    for marker, length_at in _jpeg_segments(data):
        if marker in markers:
            fields = length_at + 3  # length (2), precision (1), then Y, X
            return data[:fields] + struct.pack(">HH", rows, columns) + data[fields + 4 :]
    raise AssertionError("no frame header found")


def _j2k_claiming(data: bytes, columns: int, rows: int) -> bytes:
    """Xsiz and Ysiz of SIZ (right after SOC, FF51 and Lsiz, Rsiz) replaced; origins are 0."""
    assert data[:4] == b"\xff\x4f\xff\x51"
    return data[:8] + struct.pack(">II", columns, rows) + data[16:]


class _BitWriter:
    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def write(self, value: int, bits: int) -> None:
        self.value |= value << self.count
        self.count += bits


def _jxl_claiming(data: bytes, columns: int, rows: int) -> bytes:
    """A JPEG XL codestream whose SizeHeader says columns x rows, the rest of its bits unchanged.

    The original SizeHeader is skipped by its own rules (18181-1: small flag, then a 5-bit size or a
    U32 of 9/13/18/30 bits after a 2-bit selector, a 3-bit ratio, and the width the same way)."""
    assert data[:2] == b"\xff\x0a"
    bits = int.from_bytes(data[2:], "little")
    position = 0

    def read(count: int) -> int:
        nonlocal position
        value = (bits >> position) & ((1 << count) - 1)
        position += count
        return value

    def skip_size() -> None:
        if small:
            read(5)
        else:
            read((9, 13, 18, 30)[read(2)])

    small = read(1)
    skip_size()
    if read(3) == 0:
        skip_size()
    rest, rest_bits = bits >> position, len(data[2:]) * 8 - position
    out = _BitWriter()
    out.write(0, 1)  # not small
    out.write(2, 2)  # selector: 18 bits + 1
    out.write(rows - 1, 18)
    out.write(0, 3)  # no ratio: the width follows
    out.write(2, 2)
    out.write(columns - 1, 18)
    out.write(rest, rest_bits)
    return b"\xff\x0a" + out.value.to_bytes(-(-out.count // 8), "little")


def _jxl_container_claiming(data: bytes, columns: int, rows: int) -> bytes:
    """The codestream in a container's `jxlc` box (the last box, as Fovea's encoder writes it) lying."""
    position = 0
    while data[position + 4 : position + 8] != b"jxlc":
        position += int.from_bytes(data[position : position + 4], "big")
    end = position + int.from_bytes(data[position : position + 4], "big")
    assert end >= len(data.rstrip(b"\x00")), "jxlc is not the last box"
    codestream = _jxl_claiming(data[position + 8 : end], columns, rows)
    return data[:position] + struct.pack(">I", 8 + len(codestream)) + b"jxlc" + codestream


def _rle_with_segments(data: bytes, count: int) -> bytes:
    return struct.pack("<I", count) + data[4:]


def _rle_with_offset(data: bytes, index: int, offset: int) -> bytes:
    at = 4 + 4 * index
    return data[:at] + struct.pack("<I", offset) + data[at + 4 :]


def lying_frames() -> list[LyingFrame]:
    """One lie per codec family (two for RLE)."""
    size = f"{CLAIMED}x{CLAIMED} pixels, data set {COLUMNS}x{ROWS}"
    sof = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
    cases = []
    for name, uid, fmt in (
        ("jpeg-baseline", JPEGBaseline8Bit, FORMAT_8),
        ("jpeg-lossless", JPEGLosslessSV1, FORMAT_16),
        ("jpegls", JPEGLSLossless, FORMAT_16),
        ("j2k", JPEG2000Lossless, FORMAT_16),
        ("htj2k", HTJ2KLossless, FORMAT_16),
        ("jpegxl", JPEGXL_LOSSLESS, FORMAT_16),
        ("rle-segments", RLELossless, FORMAT_16),
        ("rle-offset", RLELossless, FORMAT_16),
    ):
        honest = encode_native_frame(native_pixels(fmt), uid, fmt)
        if name.startswith("jpeg-"):
            lying, complaint = _jpeg_claiming(honest, sof, CLAIMED, CLAIMED), f"JPEG SOF says {size}"
        elif name == "jpegls":
            lying = _jpeg_claiming(honest, {0xF7}, CLAIMED, CLAIMED)
            complaint = f"JPEG-LS SOF55 says {size}"
        elif name in ("j2k", "htj2k"):
            lying, complaint = _j2k_claiming(honest, CLAIMED, CLAIMED), f"JPEG 2000 SIZ says {size}"
        elif name == "jpegxl":
            lying = _jxl_container_claiming(honest, CLAIMED, CLAIMED)
            complaint = f"JPEG XL size says {size}"
        elif name == "rle-segments":
            lying = _rle_with_segments(honest, 15)
            complaint = "RLE header says segment 3 at byte 0, before segment 2"
        else:
            lying = _rle_with_offset(honest, 1, 1 << 30)
            complaint = f"RLE header says segment 2 at byte {1 << 30}, past the frame's"
        if len(lying) % 2:  # fragments are even (PS3.5 A.4)
            lying += b"\x00"
        cases.append(LyingFrame(name, uid, fmt, honest, lying, complaint))
    return cases
