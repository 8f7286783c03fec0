"""Whole-instance transcoding, streamed: a stored instance rewritten as Explicit VR Little Endian
(native pixels) or re-encoded into an encapsulated transfer syntax.

Why: PS3.18 8.7.3.4 asks every origin server to deliver `application/dicom` in Explicit VR Little
Endian (Implicit VR and Big Endian are not allowed on the web at all), whatever was stored, and a
client may ask for another (compressed) syntax. The data set (less Pixel Data) is re-encoded by
pydicom; the pixels arrive frame by frame from the caller, so a multi-gigabyte instance never sits
in memory. Elements after the pixel data (trailing padding, signatures that would no longer verify)
are dropped.

- `iter_explicit_vr_little_endian`: native little-endian frames (decoded or byte-swapped by the
  caller) written as one defined-length value; with `deflated`, everything after the File Meta goes
  through one raw deflate stream (Deflated Explicit VR Little Endian).
- `iter_encapsulated`: frames already encoded by the caller (one fragment each) written as
  encapsulated Pixel Data (PS3.5 A.4): undefined length, a Basic Offset Table (or, past 4 GiB, an
  empty one plus the Extended Offset Table), one item per frame, the Sequence Delimitation Item. The
  table comes first but needs every frame's length, so the frames are encoded once into a spool
  (memory up to `SPOOL_MEMORY_BYTES`, then a temporary file) and copied out in chunks. Photometric
  Interpretation, Planar Configuration and the lossy attributes (PS3.3 C.7.6.1.1.5) are set to
  describe the frames written.
"""

from __future__ import annotations

import io
import itertools
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info as read_file_meta_info  # public one takes a path
from pydicom.filewriter import dcmwrite, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from app.imaging.codecs.decode import NativeFrame
from app.imaging.codecs.native import BINARY_WORD_BYTES, little_endian_value
from app.imaging.syntaxes import find_transfer_syntax
from app.pydicom_warnings import reading_instance

_DEFLATE_LEVEL = 6  # zlib's default
_META_GROUP_LENGTH_AT = 140  # preamble (128), "DICM", then (0002,0000) UL: tag, VR, length, value
MAX_DEFINED_LENGTH = 0xFFFFFFFE  # 0xFFFFFFFF means undefined length
# Encapsulation-only elements of the Pixel Data group that native pixel data must not carry (PS3.5 A.4).
_ENCAPSULATION_TAGS = (0x7FE00001, 0x7FE00002, 0x7FE00003)
_PIXEL_VR = {0x7FE00008: b"OF", 0x7FE00009: b"OD"}

# Encapsulated writing. Frames are spooled in memory up to this many bytes, then in a temporary file.
SPOOL_MEMORY_BYTES = 32 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024  # bytes read back from the spool per step (about what each chunk yields)
_MAX_BOT_OFFSET = 0xFFFFFFFF  # largest Basic Offset Table entry (32 bits); past it: Extended Offset Table
_PIXEL_DATA_UNDEFINED = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
_ITEM = struct.Struct("<HHI")  # FFFE,E000 item header: tag and length
_SEQUENCE_DELIMITER = _ITEM.pack(0xFFFE, 0xE0DD, 0)
_RATIO_DIGITS = 5  # significant digits of a Lossy Image Compression Ratio value (DS: 16 chars at most)


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
    source: BinaryIO, *, big_endian: bool, pixels: NativePixels | None, deflated: bool = False
) -> Iterator[bytes]:
    """The Part 10 bytes of the instance in `source` as Explicit VR Little Endian, in chunks.

    `source` is the stored file (for a deflated data set, its inflated copy); `big_endian` says its
    binary values need their words swapped. `deflated`: Deflated Explicit VR Little Endian instead
    (PS3.5 A.5), the same bytes after the File Meta sent through one raw deflate stream. Raises
    ValueError when the value would be too long for an Explicit VR Little Endian length field
    (callers check `value_length` first).
    """
    chunks = _iter_explicit_vr_little_endian(source, big_endian=big_endian, pixels=pixels)
    yield from _deflate_data_set(chunks) if deflated else chunks


def _deflate_data_set(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Part 10 chunks (the first holding preamble, File Meta and the start of the data set) with the
    data set deflated (raw RFC 1951), padded to even length, and the File Meta saying so."""
    first = next(chunks)
    (group_length,) = struct.unpack_from("<I", first, _META_GROUP_LENGTH_AT)
    meta_end = _META_GROUP_LENGTH_AT + 4 + group_length
    meta = read_file_meta_info(io.BytesIO(first[132:meta_end]))
    meta.TransferSyntaxUID = UID(DeflatedExplicitVRLittleEndian)
    head = DicomBytesIO()
    head.write(first[:132])  # preamble and "DICM"
    write_file_meta_info(head, meta, enforce_standard=True)
    yield head.getvalue()
    deflater = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    written = 0
    for chunk in itertools.chain((first[meta_end:],), chunks):
        if out := deflater.compress(chunk):
            written += len(out)
            yield out
    tail = deflater.flush()
    yield tail + b"\x00" if (written + len(tail)) % 2 else tail


def _iter_explicit_vr_little_endian(
    source: BinaryIO, *, big_endian: bool, pixels: NativePixels | None
) -> Iterator[bytes]:
    ds = _data_set_without_pixels(source, big_endian=big_endian)
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


@dataclass(frozen=True, slots=True)
class EncodedPixels:
    """Encoded frames to write as encapsulated Pixel Data, and what the data set must say of them."""

    transfer_syntax_uid: str  # the target (encapsulated) syntax
    number_of_frames: int
    frame: Callable[[int], bytes]  # encoded frame n (1-based): one fragment's bytes, even length
    photometric_interpretation: str  # as the encoded frames must be described
    planar_configuration: int
    native_frame_bytes: int  # bytes of one uncompressed frame (for the compression ratio)
    lossy_method: str | None  # set when this encoding is lossy: appended to 0028,2114
    source_lossy: bool  # the stored pixels already went through a lossy step


def iter_encapsulated(
    source: BinaryIO,
    *,
    big_endian: bool,
    pixels: EncodedPixels | None,
    transfer_syntax_uid: str | None = None,
    spool_dir: str | None = None,
    streamed: bool = False,
) -> Iterator[bytes]:
    """The Part 10 bytes of the instance in `source` re-encoded into an encapsulated syntax, in chunks.

    `source` and `big_endian` as for `iter_explicit_vr_little_endian`. The data set is written in
    Explicit VR Little Endian, as every encapsulated syntax has it; 7FE0,0001-0003 of the source
    are dropped (the offsets and lengths are the old encoding's). `pixels` None (no Pixel Data):
    the data set is relabelled with `transfer_syntax_uid` and nothing else changes; otherwise
    `transfer_syntax_uid` may be left out, and must agree with `pixels` if given.

    Pixel Data (PS3.5 A.4): OB, undefined length; a Basic Offset Table with one 32-bit offset per
    frame (from the first item after the table to the frame's item tag); one fragment per frame;
    the Sequence Delimitation Item. When the last offset would not fit 32 bits the table is left
    empty and the Extended Offset Table and its Lengths (7FE0,0001/0002, OV) go before Pixel Data.

    Memory: the offsets must precede the first fragment, so every frame is encoded once into a
    `tempfile.SpooledTemporaryFile` (in memory up to `SPOOL_MEMORY_BYTES`, then a file in
    `spool_dir`, the system default if None) while only the lengths are kept; nothing is yielded
    until the last frame is encoded. The frames are then copied out in chunks of about
    `_COPY_CHUNK` bytes, so memory stays flat however many frames there are. The spool is closed
    (and its file removed) when the generator finishes or is closed.

    `streamed` (for a response, where the first byte matters more than the offsets): unless this
    encoding is lossy (whose compression ratio, written before Pixel Data, needs every frame's
    length), the Basic Offset Table is left empty, as PS3.5 A.4 allows, and each frame goes out as
    soon as it is encoded: the first chunk after one frame, nothing spooled. A bad frame after the
    first can then only end the output early (the ValueError is raised on iteration).

    Lossy bookkeeping (PS3.3 C.7.6.1.1.5): Lossy Image Compression becomes 01 when the source was
    lossy or this encoding is (never back to 00); a lossy encoding appends one value to Lossy
    Image Compression Ratio (native bytes / encoded bytes, all frames) and one to Lossy Image
    Compression Method, keeping the values already there.

    Raises ValueError when the target is not an encapsulated syntax (or is video), for fewer than
    one frame, and for a frame of odd or zero length (raised on iteration, before anything is yielded).
    """
    target = _encapsulated_target(pixels, transfer_syntax_uid)
    ds = _data_set_without_pixels(source, big_endian=big_endian)
    if pixels is None:
        yield _encode(ds, target)
        return
    if streamed and not pixels.lossy_method:
        yield from _streamed_items(ds, pixels, target)
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=spool_dir) as spool:
        lengths = _spool_frames(pixels, spool)
        _describe_pixels(ds, pixels, lengths)
        offsets = _item_offsets(lengths)
        if offsets[-1] > _MAX_BOT_OFFSET:
            ds.add_new(0x7FE00001, "OV", struct.pack(f"<{len(offsets)}Q", *offsets))
            ds.add_new(0x7FE00002, "OV", struct.pack(f"<{len(lengths)}Q", *lengths))
            table = b""
        else:
            table = struct.pack(f"<{len(offsets)}I", *offsets)
        yield _encode(ds, target) + _PIXEL_DATA_UNDEFINED + _ITEM.pack(0xFFFE, 0xE000, len(table)) + table
        spool.seek(0)
        yield from _copy_items(spool, lengths)


def _encapsulated_target(pixels: EncodedPixels | None, transfer_syntax_uid: str | None) -> str:
    """The target syntax's UID, checked: encapsulated, and the same wherever it is given."""
    if pixels is not None:
        if transfer_syntax_uid is not None and transfer_syntax_uid != pixels.transfer_syntax_uid:
            raise ValueError(
                f"transfer syntax {transfer_syntax_uid} disagrees with the frames' "
                f"{pixels.transfer_syntax_uid}"
            )
        if pixels.number_of_frames < 1:
            raise ValueError(f"{pixels.number_of_frames} frames: encapsulated Pixel Data needs at least one")
        transfer_syntax_uid = pixels.transfer_syntax_uid
    if transfer_syntax_uid is None:
        raise ValueError("no target transfer syntax: give `transfer_syntax_uid` when there are no pixels")
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None or not syntax.encapsulated or syntax.deflated_dataset:
        raise ValueError(f"{transfer_syntax_uid} is not an encapsulated transfer syntax Fovea knows")
    if syntax.is_video:
        raise ValueError(f"{syntax.label}: a video stream is not written one fragment per frame")
    return transfer_syntax_uid


def _spool_frames(pixels: EncodedPixels, spool: IO[bytes]) -> list[int]:
    """Write every encoded frame to `spool`, in order; their lengths (checked even and non-zero)."""
    lengths = []
    for number in range(1, pixels.number_of_frames + 1):
        data = _checked_frame(pixels, number)
        spool.write(data)
        lengths.append(len(data))
        del data
    return lengths


def _streamed_items(ds: Dataset, pixels: EncodedPixels, target: str) -> Iterator[bytes]:
    """The data set, an empty Basic Offset Table and each frame's item as soon as it is encoded."""
    _describe_pixels(ds, pixels, [])
    first = _checked_frame(pixels, 1)  # before any output: a first frame that fails is still an error
    head = _encode(ds, target) + _PIXEL_DATA_UNDEFINED + _ITEM.pack(0xFFFE, 0xE000, 0)
    yield head + _ITEM.pack(0xFFFE, 0xE000, len(first)) + first
    del first
    for number in range(2, pixels.number_of_frames + 1):
        data = _checked_frame(pixels, number)
        yield _ITEM.pack(0xFFFE, 0xE000, len(data)) + data
    yield _SEQUENCE_DELIMITER


def _checked_frame(pixels: EncodedPixels, number: int) -> bytes:
    data = pixels.frame(number)
    if not data or len(data) % 2:
        raise ValueError(
            f"encoded frame {number} has {len(data)} bytes; a fragment needs an even, non-zero length"
        )
    return data


def _item_offsets(lengths: list[int]) -> list[int]:
    """Offset of each frame's item tag from the first item after the Basic Offset Table."""
    offsets, position = [], 0
    for length in lengths:
        offsets.append(position)
        position += _ITEM.size + length
    return offsets


def _copy_items(spool: IO[bytes], lengths: list[int]) -> Iterator[bytes]:
    """One item per frame, read back from `spool`, then the Sequence Delimitation Item, in chunks."""
    buffer = bytearray()
    for length in lengths:
        buffer += _ITEM.pack(0xFFFE, 0xE000, length)
        remaining = length
        while remaining:
            data = spool.read(min(remaining, _COPY_CHUNK))
            if not data:
                raise OSError("the frame spool ended early")
            buffer += data
            remaining -= len(data)
            if len(buffer) >= _COPY_CHUNK:
                yield bytes(buffer)
                buffer.clear()
    buffer += _SEQUENCE_DELIMITER
    yield bytes(buffer)


def _describe_pixels(ds: Dataset, pixels: EncodedPixels, lengths: list[int]) -> None:
    """Set the colour and lossy attributes to describe the encoded frames (PS3.3 C.7.6.3, C.7.6.1.1.5)."""
    ds.PhotometricInterpretation = pixels.photometric_interpretation
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        ds.PlanarConfiguration = pixels.planar_configuration
    if pixels.source_lossy or pixels.lossy_method:
        ds.LossyImageCompression = "01"
    if pixels.lossy_method:
        ratio = pixels.native_frame_bytes * pixels.number_of_frames / sum(lengths)
        ds.LossyImageCompressionRatio = [*_values(ds, "LossyImageCompressionRatio"), _ds_number(ratio)]
        ds.LossyImageCompressionMethod = [*_values(ds, "LossyImageCompressionMethod"), pixels.lossy_method]


def _values(ds: Dataset, keyword: str) -> list[object]:
    """The values of a possibly multi-valued element; none when absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, MultiValue | list) else [value]


def _ds_number(value: float) -> str:
    """`value` with a few significant digits, as a Decimal String value (16 characters at most)."""
    mantissa, exponent, power = f"{value:.{_RATIO_DIGITS}g}".partition("e")
    return f"{mantissa}e{int(power)}" if exponent else mantissa


def _data_set_without_pixels(source: BinaryIO, *, big_endian: bool) -> Dataset:
    """The stored data set up to Pixel Data, less the old encapsulation's elements, binary values
    little-endian."""
    with reading_instance(f"stored file {getattr(source, 'name', '')}".rstrip()) as warned:
        ds = dcmread(source, stop_before_pixels=True, force=True)
        warned.sop_instance_uid = str(ds.get("SOPInstanceUID", ""))
    for tag in _ENCAPSULATION_TAGS:
        if tag in ds:
            del ds[tag]
    if big_endian:
        _swap_binary_words(ds)
    return ds


def _encode(ds: Dataset, transfer_syntax_uid: str = ExplicitVRLittleEndian) -> bytes:
    """File Meta (saying `transfer_syntax_uid`) and data set, the data set in Explicit VR LE."""
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax_uid)
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
