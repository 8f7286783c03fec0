"""Whole-instance transcoding: a stored instance rewritten as Explicit VR Little Endian, streamed.

Why: PS3.18 8.7.3.4 asks every origin server to deliver `application/dicom` in Explicit VR Little
Endian (Implicit VR and Big Endian are not allowed on the web at all), whatever was stored. The data
set (less Pixel Data) is re-encoded by pydicom; the pixels arrive frame by frame, already native
little-endian (decoded or byte-swapped by the caller), so a multi-gigabyte instance never sits in
memory. Elements after the pixel data (trailing padding, signatures that would no longer verify)
are dropped.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID

from app.imaging.codecs.decode import NativeFrame
from app.imaging.codecs.native import BINARY_WORD_BYTES, little_endian_value

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
MAX_DEFINED_LENGTH = 0xFFFFFFFE  # 0xFFFFFFFF means undefined length
# Encapsulation-only elements of the Pixel Data group that native pixel data must not carry (PS3.5 A.4).
_ENCAPSULATION_TAGS = (0x7FE00001, 0x7FE00002, 0x7FE00003)
_PIXEL_VR = {0x7FE00008: b"OF", 0x7FE00009: b"OD"}


@dataclass(frozen=True, slots=True)
class NativePixels:
    """The pixel data to write: `frame(n)` gives native little-endian frame n (1-based)."""

    tag: int  # 7FE00010, 7FE00008 or 7FE00009
    number_of_frames: int
    bits_allocated: int
    frame_bits: int  # bits of one frame as `frame` returns it (Bits Allocated 1: not byte-rounded)
    frame: Callable[[int], NativeFrame]
    lossy: bool  # the stored pixels went through a lossy step: Lossy Image Compression must say 01

    @property
    def value_length(self) -> int:
        """Bytes of the native value, pad byte excluded (frames are bit-packed for Bits Allocated 1)."""
        return -(-(self.frame_bits * self.number_of_frames) // 8)


def iter_explicit_vr_little_endian(
    source: BinaryIO, *, big_endian: bool, pixels: NativePixels | None
) -> Iterator[bytes]:
    """The Part 10 bytes of the instance in `source` as Explicit VR Little Endian, in chunks.

    `source` is the stored file (for a deflated data set, its inflated copy); `big_endian` says its
    binary values need their words swapped. Raises ValueError when the value would be too long for
    an Explicit VR Little Endian length field (callers check `value_length` first).
    """
    ds = dcmread(source, stop_before_pixels=True, force=True)
    for tag in _ENCAPSULATION_TAGS:
        if tag in ds:
            del ds[tag]
    if big_endian:
        _swap_binary_words(ds)
    if pixels is None:
        yield _encode(ds)
        return
    if pixels.value_length > MAX_DEFINED_LENGTH:
        raise ValueError(f"{pixels.value_length} bytes of pixel data do not fit an Explicit VR LE length")
    first = pixels.frame(1)
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        ds.PhotometricInterpretation = first.photometric_interpretation
        ds.PlanarConfiguration = first.planar_configuration
    if pixels.lossy:
        ds.LossyImageCompression = "01"  # PS3.3 C.7.6.1.1.5: once lossy, always said so
    yield _encode(ds)
    length = pixels.value_length
    padded = length + length % 2
    vr = _PIXEL_VR.get(pixels.tag, b"OW" if pixels.bits_allocated > 8 else b"OB")
    yield struct.pack("<HH2sHI", pixels.tag >> 16, pixels.tag & 0xFFFF, vr, 0, padded)
    frames = (
        first if number == 1 else pixels.frame(number) for number in range(1, pixels.number_of_frames + 1)
    )
    if pixels.bits_allocated == 1 and pixels.frame_bits % 8:
        yield from _bit_packed(frames, pixels.frame_bits)
    else:
        for frame in frames:
            yield frame.data
    if padded != length:
        yield b"\x00"


def _encode(ds: Dataset) -> bytes:
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def _bit_packed(frames: Iterator[NativeFrame], frame_bits: int) -> Iterator[bytes]:
    """Frames of `frame_bits` bits (each starting at bit 0) packed back to back, LSB first (PS3.5 8.1.1)."""
    carry, carried = 0, 0
    for frame in frames:
        bits = int.from_bytes(frame.data, "little") & ((1 << frame_bits) - 1)
        carry |= bits << carried
        carried += frame_bits
        whole = carried // 8
        yield (carry & ((1 << (whole * 8)) - 1)).to_bytes(whole, "little")
        carry >>= whole * 8
        carried -= whole * 8
    if carried:
        yield carry.to_bytes(1, "little")


def _swap_binary_words(ds: Dataset) -> None:
    """Byte-swap the words of OW/OF/OL/OD/OV values read from a big-endian file, in every item.

    Why: pydicom converts numbers (US, FL, ...) on writing, but writes binary values as they are.
    """
    for tag in list(ds.keys()):
        element = ds[tag]
        if element.VR == "SQ" and isinstance(element.value, DicomSequence):
            for item in element.value:
                _swap_binary_words(item)
            continue
        if element.VR in BINARY_WORD_BYTES and isinstance(element.value, bytes):
            element.value = little_endian_value(element.value, element.VR, big_endian=True)
