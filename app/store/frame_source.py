"""Frames of one stored instance, as stored or as native little-endian pixels.

Why: frames, pixeldata, bulkdata and whole-instance (Explicit VR LE) responses all need the same two
readings of a frame: its stored bytes (a ranged read through the frame table) and its native pixels
(byte-swapped from Big Endian, or decoded from a compressed syntax). Nothing here parses the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from app.imaging.codecs.decode import FrameFormat, NativeFrame, can_decode, decode_to_native
from app.imaging.codecs.encode import can_encode, encode_native_frame
from app.imaging.codecs.native import little_endian_frame
from app.imaging.frames import read_frame
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax
from app.imaging.transcode import MAX_DEFINED_LENGTH, NativePixels
from app.store.blobs import BlobStore
from app.store.retrieval import PixelFormat, StoredFrames, StoredInstance

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


def frame_format(pixels: PixelFormat) -> FrameFormat:
    layout = pixels.layout
    return FrameFormat(
        layout.rows,
        layout.columns,
        layout.samples_per_pixel,
        layout.bits_allocated,
        pixels.bits_stored,
        pixels.pixel_representation,
        layout.photometric_interpretation,
        pixels.planar_configuration,
    )


def stored_syntax(uid: str) -> TransferSyntax:
    """The registry row of a stored syntax (ingest refuses unknown ones, so the index never holds one)."""
    syntax = find_transfer_syntax(uid)
    if syntax is None:
        raise LookupError(f"unknown stored transfer syntax {uid}")
    return syntax


def can_make_native(syntax: TransferSyntax) -> bool:
    """True when frames of `syntax` can become native pixels: always if native, else with a decoder."""
    return not syntax.encapsulated or can_decode(syntax.uid)


def native_frame_bits(pixels: PixelFormat, syntax: TransferSyntax) -> int:
    """Bits of one frame as native pixels (see `native_format`)."""
    if _keeps_stored_layout(syntax):
        return pixels.layout.frame_bits
    fmt = native_format(pixels, syntax)
    return fmt.rows * fmt.columns * fmt.samples_per_pixel * fmt.bits_allocated


def fits_explicit_vr_little_endian(pixels: PixelFormat | None, syntax: TransferSyntax) -> bool:
    """True when the instance can be written as Explicit VR LE: pixels it can make, in a 32-bit length."""
    if pixels is None:
        return True
    if syntax.is_video or not can_make_native(syntax):
        return False
    value_bits = native_frame_bits(pixels, syntax) * pixels.layout.number_of_frames
    return -(-value_bits // 8) <= MAX_DEFINED_LENGTH


def _keeps_stored_layout(syntax: TransferSyntax) -> bool:
    """Native syntaxes, Encapsulated Uncompressed and Deflated Image Frame Compression give back the
    stored bytes' layout (4:2:2 and planar included); the image codecs give interleaved pixels."""
    return syntax.codec in ("native", "deflate")


def native_format(pixels: PixelFormat, syntax: TransferSyntax) -> FrameFormat:
    """The layout of a frame's native pixels: as stored where the syntax keeps it; an image codec's
    colour frame decodes to full-resolution RGB, sample-interleaved (what the decoders give)."""
    fmt = frame_format(pixels)
    if _keeps_stored_layout(syntax) or fmt.samples_per_pixel == 1:
        return fmt
    return FrameFormat(
        fmt.rows, fmt.columns, 3, fmt.bits_allocated, fmt.bits_stored, fmt.pixel_representation, "RGB", 0
    )


def frame_producer(instance: StoredInstance) -> Callable[[str], bool]:
    """What the frames of `instance` can be made into besides their stored syntax (for negotiation).

    Native pixels (Explicit VR LE) wherever they can be made; a lossless syntax an encoder can hold
    the layout in, but only from pixels that never went through a lossy step: a lossy original is
    never labelled with a lossless syntax (PS3.5 8.2, digest section 8).
    """
    syntax = stored_syntax(instance.transfer_syntax_uid)
    if instance.pixels is None or syntax.is_video or not can_make_native(syntax):
        return lambda _uid: False
    lossy = syntax.lossless is False or instance.lossy_image_compression == "01"
    fmt = native_format(instance.pixels, syntax)

    def can_produce(uid: str) -> bool:
        if uid == EXPLICIT_VR_LITTLE_ENDIAN:
            return True
        target = find_transfer_syntax(uid)
        return target is not None and target.lossless is True and not lossy and can_encode(uid, fmt)

    return can_produce


class FrameSource:
    """Reads the frames of `frames` (a frame-table lookup) from `blobs`."""

    def __init__(self, blobs: BlobStore, frames: StoredFrames) -> None:
        self.blobs, self.frames = blobs, frames
        self.syntax = stored_syntax(frames.transfer_syntax_uid)
        self.format = frame_format(frames.pixels)

    def stored(self, number: int) -> bytes:
        """Frame `number` as stored: a codestream, or native bytes (1-bit frames moved to bit 0)."""
        key = self.frames.data_blob_key
        return read_frame(
            lambda offset, length: self.blobs.read_range(key, offset, length),
            self.frames.fragments[number],
            self.frames.layout,
            encapsulated=self.syntax.encapsulated,
        )

    def native(self, number: int) -> NativeFrame:
        """Frame `number` as native little-endian pixels (PS3.18 8.7.3.3.1)."""
        fmt = self.format
        if self.syntax.encapsulated:
            return decode_to_native(self.stored(number), self.syntax.uid, fmt)
        if self.syntax.big_endian and fmt.bits_allocated == 8 and self.frames.pixel_vr == "OW":
            data = self._big_endian_bytes_in_words(number)
        else:
            data = little_endian_frame(
                self.stored(number), bits_allocated=fmt.bits_allocated, big_endian=self.syntax.big_endian
            )
        return NativeFrame(data, fmt.photometric_interpretation, fmt.planar_configuration)

    def _big_endian_bytes_in_words(self, number: int) -> bytes:
        """An 8-bit frame of an OW value in Big Endian: its bytes sit swapped in 16-bit words (PS3.5
        A.3), so an odd-length frame's last byte is the second of its word, where the pad byte is."""
        [fragment] = self.frames.fragments[number]
        length = fragment.length + fragment.length % 2
        word_aligned = self.blobs.read_range(self.frames.data_blob_key, fragment.offset, length)
        swapped = little_endian_frame(word_aligned, bits_allocated=16, big_endian=True)
        return swapped[: fragment.length]

    def encoded(self, number: int, transfer_syntax_uid: str) -> bytes:
        """Frame `number` decoded and encoded into another syntax (one fragment's bytes, padded even)."""
        native = self.native(number)
        expected = native_format(self.frames.pixels, self.syntax)
        layout = replace(
            expected,
            photometric_interpretation=native.photometric_interpretation,
            planar_configuration=native.planar_configuration,
        )
        return encode_native_frame(native.data, transfer_syntax_uid, layout)

    def native_pixels(self, tag: int) -> NativePixels | None:
        """Every frame as native pixels for an Explicit VR LE instance; None when that cannot be made.

        Needs the frame table of every frame (`frames_of`).
        """
        if not fits_explicit_vr_little_endian(self.frames.pixels, self.syntax):
            return None
        layout = self.frames.layout
        return NativePixels(
            tag,
            layout.number_of_frames,
            layout.bits_allocated,
            native_frame_bits(self.frames.pixels, self.syntax),
            self.native,
            lossy=self.syntax.lossless is False,
        )
