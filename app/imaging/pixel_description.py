"""One stored instance's pixels, described once: layout, sample attributes, stored syntax, lossy history.

Why: the index row, the frame reader, the codecs and negotiation all need the same facts about the
stored pixels; they read them here, built once per lookup (and kept with a cached frame table), and
the derived ones (the codecs' `FrameFormat` of a stored and of a native frame) are worked out once.
The production rules, which are imaging facts (what pixels that went through a lossy step may be
labelled as, what an encoder can hold), live here as well: the HTTP layer and the CLI ask them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from app.imaging.codecs.decode import can_decode
from app.imaging.codecs.encode import can_encode
from app.imaging.codecs.frame import FrameFormat
from app.imaging.codecs.registry import family_of
from app.imaging.instance_transcode import MAX_DEFINED_LENGTH
from app.imaging.pixel_layout import PixelLayout
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

# Colour a codec's decoder gives back as RGB (its own colour transform undone).
_DECODED_AS_RGB = frozenset({"YBR_RCT", "YBR_ICT", "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420"})


def stored_syntax(uid: str) -> TransferSyntax:
    """The registry row of a stored syntax (ingest refuses unknown ones, so the index never holds one)."""
    syntax = find_transfer_syntax(uid)
    if syntax is None:
        raise LookupError(f"unknown stored transfer syntax {uid}")
    return syntax


def went_through_lossy_step(syntax: TransferSyntax, lossy_image_compression: str) -> bool:
    """Whether pixels stored in `syntax` may have lost information: Lossy Image Compression 01, a
    lossy-only syntax, or a syntax that allows either (.91, .203, .112...) unless the data set says 00.

    Why so strict: such a stream may be irreversible while the attribute is absent, and a lossy image
    must never be labelled lossless (PS3.3 C.7.6.1.1.5); saying 01 of a lossless one is the safe error.
    """
    if lossy_image_compression == "01" or syntax.lossless is False:
        return True
    return syntax.lossless is None and lossy_image_compression != "00"


def keeps_stored_layout(syntax: TransferSyntax) -> bool:
    """Native syntaxes, Encapsulated Uncompressed and Deflated Image Frame Compression give back the
    stored bytes' layout (4:2:2 and planar included); the image codecs give interleaved pixels."""
    return family_of(syntax).keeps_stored_layout


def may_carry_lossy_pixels(target: TransferSyntax) -> bool:
    """False for a lossless image codec's syntax (labelling lossy pixels lossless); True for the
    rest, Deflated Image Frame Compression and Encapsulated Uncompressed included (no image codec)."""
    return target.lossless is not True or keeps_stored_layout(target)


def can_make_native(syntax: TransferSyntax) -> bool:
    """True when frames of `syntax` can become native pixels: always if native, else with a decoder."""
    return not syntax.encapsulated or can_decode(syntax.uid)


@dataclass(frozen=True)  # no slots: the derived formats are cached on the instance
class PixelDescription:
    """The pixels of one stored instance (PS3.3 C.7.6.3) and what they went through."""

    layout: PixelLayout
    bits_stored: int
    pixel_representation: int  # 0 unsigned, 1 signed
    planar_configuration: int  # 0 when absent
    syntax: TransferSyntax  # the stored transfer syntax
    lossy_image_compression: str  # (0028,2110) as stored: "00", "01" or ""

    @classmethod
    def of(
        cls,
        layout: PixelLayout,
        syntax: TransferSyntax,
        *,
        bits_stored: int | None,
        pixel_representation: int | None,
        planar_configuration: int | None,
        lossy_image_compression: str | None,
    ) -> PixelDescription:
        """The description of attributes as a data set (or the index) gives them, absent ones None:
        Bits Stored defaults to Bits Allocated, the others to 0 (unsigned, interleaved) and ""."""
        return cls(
            layout,
            bits_stored or layout.bits_allocated,
            pixel_representation or 0,
            planar_configuration or 0,
            syntax,
            lossy_image_compression or "",
        )

    @cached_property
    def stored_format(self) -> FrameFormat:
        """A stored frame's layout, as a decoder is given it."""
        layout = self.layout
        return FrameFormat(
            layout.rows,
            layout.columns,
            layout.samples_per_pixel,
            layout.bits_allocated,
            self.bits_stored,
            self.pixel_representation,
            layout.photometric_interpretation,
            self.planar_configuration,
        )

    @cached_property
    def native_format(self) -> FrameFormat:
        """The layout of a frame's native pixels: as stored where the syntax keeps it; an image codec's
        colour frame decodes sample-interleaved, and to RGB where the codec's own colour transform is
        undone by the decoder (lossy JPEG's YCbCr, JPEG 2000's YBR_RCT/YBR_ICT); YBR_FULL stays."""
        fmt, syntax = self.stored_format, self.syntax
        if keeps_stored_layout(syntax) or fmt.samples_per_pixel == 1:
            return fmt
        photometric = fmt.photometric_interpretation
        if syntax.uid in family_of(syntax).ycbcr_decoded_as_rgb or photometric in _DECODED_AS_RGB:
            photometric = "RGB"
        return replace(fmt, photometric_interpretation=photometric, planar_configuration=0)

    @property
    def native_frame_bits(self) -> int:
        """Bits of one frame as native pixels (see `native_format`)."""
        if keeps_stored_layout(self.syntax):
            return self.layout.frame_bits
        fmt = self.native_format
        return fmt.rows * fmt.columns * fmt.samples_per_pixel * fmt.bits_allocated

    @cached_property
    def went_through_lossy_step(self) -> bool:
        """See the module function of that name."""
        return went_through_lossy_step(self.syntax, self.lossy_image_compression)

    @property
    def can_make_native(self) -> bool:
        return can_make_native(self.syntax)

    @property
    def fits_explicit_vr_little_endian(self) -> bool:
        """True when the pixels can be written as Explicit VR LE: pixels it can make, in a 32-bit length."""
        if self.syntax.is_video or not self.can_make_native:
            return False
        value_bits = self.native_frame_bits * self.layout.number_of_frames
        return -(-value_bits // 8) <= MAX_DEFINED_LENGTH

    def can_make_frames_in(self, uid: str) -> bool:
        """Whether the frames can be made into syntax `uid` besides their stored one (negotiation asks).

        Native pixels (Explicit VR LE) wherever they can be made; any syntax an encoder can hold the
        layout in, except that pixels which went through a lossy step are never labelled with a
        lossless image codec's syntax (PS3.5 8.2). Deflated Image Frame Compression and Encapsulated
        Uncompressed are no image codec: they carry the native pixels byte for byte, as octet-stream
        does, so they are offered for lossy pixels too (the metadata keeps Lossy Image Compression 01).
        A lossy syntax is only ever chosen when the client names it (no media type defaults to one), so
        nothing is made lossy unasked.
        """
        if self.syntax.is_video or not self.can_make_native:
            return False
        if uid == ExplicitVRLittleEndian:
            return True
        target = find_transfer_syntax(uid)
        if target is None or (self.went_through_lossy_step and not may_carry_lossy_pixels(target)):
            return False
        return can_encode(uid, self.native_format)


def can_rewrite_instance_in(pixels: PixelDescription | None, uid: str) -> bool:
    """Whether a whole instance with `pixels` (None: no pixel data) can be rewritten into syntax `uid`
    besides its stored one (application/dicom).

    Explicit VR LE, or Deflated Explicit VR LE, where the native pixels fit its 32-bit length; an
    encapsulated syntax where every frame can be made into it (`can_make_frames_in`). An instance
    without pixel data can be labelled with any encapsulated syntax unchanged (its data set is
    Explicit VR LE either way); never a video one.
    """
    if uid in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        return pixels is None or pixels.fits_explicit_vr_little_endian
    target = find_transfer_syntax(uid)
    if target is None or not target.encapsulated or target.is_video:
        return False
    return pixels is None or pixels.can_make_frames_in(uid)
