"""What a compressed frame's own header says about the image, checked against the data set.

Why: a decoder sizes its output from the codestream's header, not from Rows and Columns. A frame
whose header claims 16000x16000 behind a data set saying 512x512 makes the decoder allocate and
work for minutes; so the header is read (a few bytes of well-defined markers) and compared with the
Image Pixel attributes before any decoder runs: at ingest, and again before every decode.

Each codec family's registry entry names its header reader, `(prefix, frame_length) ->
CodestreamHeader`: `jpeg_header`, `jpegls_header`, `j2k_header` (JPEG 2000 and HTJ2K),
`jpegxl_header`, `rle_header`. A reader raises `HeaderTruncated` when the header runs
past `prefix`, so a caller holding only the first bytes of a frame can read more and retry.

What is compared, and why it is not stricter:
- size: the header's columns and rows equal Columns and Rows, exactly; anything else decodes to the
  wrong shape and is refused by the decode anyway, so refusing it first loses nothing.
- components: equal to Samples per Pixel (a 4:2:2 JPEG still has 3 components).
- precision: at most Bits Allocated, not equal to Bits Stored: real files carry a JPEG precision of
  12 or 16 with Bits Stored 10, or a JPEG 2000 precision below Bits Stored.
- RLE: the segment count is Samples per Pixel times bytes per sample (PS3.5 G.2), the first
  segment starts right after the 64-byte header, and the offsets increase and stay inside the frame.

Two outcomes, two policies: `FrameHeaderMismatch` (a readable header that contradicts the data set)
refuses the instance at ingest; `FrameHeaderUnreadable` (not a codestream of the family at all, or
one no decoder accepts, such as pydicom's test file whose SIZ holds a delimiter's bytes) is stored as
received, as it always was. Both are refused before every decode, so neither ever reaches a decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from app.imaging.codecs.family import HeaderReader
from app.imaging.codecs.registry import CODEC_FAMILIES
from app.imaging.codecs.stream_header import CodestreamHeader, HeaderError, HeaderTruncated

__all__ = [
    "HEADER_READERS",
    "CodestreamHeader",
    "FrameHeaderError",
    "FrameHeaderMismatch",
    "FrameHeaderUnreadable",
    "HeaderError",
    "HeaderTruncated",
    "PixelAttributes",
    "check_frame_header",
    "check_stored_frame",
    "header_mismatch",
]

FIRST_READ = 4096  # bytes of a stored frame read first to find its header

# Keyed by `TransferSyntax.codec`, read from the registry; a family not listed (native, deflate,
# video) has no header to read (native and deflated frames are sized by the data set alone; a
# deflated frame is inflated to at most the frame's size).
HEADER_READERS: Mapping[str, HeaderReader] = MappingProxyType(
    {name: family.header_reader for name, family in CODEC_FAMILIES.items() if family.header_reader}
)


class FrameHeaderError(ValueError):
    """A frame's codestream header cannot be trusted to size a decode."""


class FrameHeaderUnreadable(FrameHeaderError):
    """The frame does not start with a well-formed header of its codec family."""


class FrameHeaderMismatch(FrameHeaderError):
    """A well-formed header that contradicts the data set's pixel attributes."""


class PixelAttributes(Protocol):
    """The Image Pixel attributes a header is compared with (`FrameFormat` has them)."""

    @property
    def rows(self) -> int: ...
    @property
    def columns(self) -> int: ...
    @property
    def samples_per_pixel(self) -> int: ...
    @property
    def bits_allocated(self) -> int: ...


def header_mismatch(header: CodestreamHeader, pixels: PixelAttributes) -> str | None:
    """Why `header` does not fit `pixels`, in a few words; None when it fits."""
    problems = [header.contradiction] if header.contradiction else []
    size = (header.columns, header.rows)
    if None not in size and size != (pixels.columns, pixels.rows):
        problems.append(f"{header.columns}x{header.rows} pixels, data set {pixels.columns}x{pixels.rows}")
    if header.components is not None and header.components != pixels.samples_per_pixel:
        problems.append(f"{header.components} components, Samples per Pixel {pixels.samples_per_pixel}")
    if header.precision is not None and header.precision > pixels.bits_allocated:
        problems.append(f"{header.precision}-bit samples, Bits Allocated {pixels.bits_allocated}")
    if header.segments is not None:
        expected = pixels.samples_per_pixel * -(-pixels.bits_allocated // 8)
        if header.segments != expected:
            problems.append(f"{header.segments} segments, {expected} expected")
    return "; ".join(problems) or None


def check_frame_header(
    codec: str, prefix: bytes, frame_length: int, pixels: PixelAttributes, *, what: str = "frame"
) -> None:
    """Raise unless the header at the start of `prefix` is readable and fits `pixels`.

    `prefix` is the frame's first bytes (or all of them), `frame_length` its whole length; a family
    without a header reader passes. `HeaderTruncated` propagates while `prefix` is shorter than the
    frame: the caller may read more. `FrameHeaderUnreadable`, `FrameHeaderMismatch` otherwise.
    """
    reader = HEADER_READERS.get(codec)
    if reader is None:
        return
    try:
        header = reader(prefix, frame_length)
    except HeaderTruncated as exc:
        if len(prefix) < frame_length:
            raise
        raise FrameHeaderUnreadable(f"{what}: the codestream ends inside its header") from exc
    except HeaderError as exc:
        raise FrameHeaderUnreadable(f"{what}: {exc}") from exc
    problem = header_mismatch(header, pixels)
    if problem is not None:
        raise FrameHeaderMismatch(f"{what}: {header.kind} says {problem}")


def check_stored_frame(
    codec: str,
    read_prefix: Callable[[int], bytes],
    frame_length: int,
    pixels: PixelAttributes,
    *,
    what: str = "frame",
) -> None:
    """`check_frame_header` on a frame read a little at a time: `read_prefix(n)` gives its first n
    bytes. Most headers sit in the first few hundred bytes; JPEG APP segments (an ICC profile) can
    push the frame header further, so the prefix grows until the header fits."""
    size = FIRST_READ
    while True:
        prefix = read_prefix(min(size, frame_length))
        try:
            check_frame_header(codec, prefix, frame_length, pixels, what=what)
            return
        except HeaderTruncated:
            size *= 16
