"""The codec registry covers every syntax, and what its entries say is what the codecs do."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit

from app.imaging.codecs.decode import FrameFormat, can_decode, decode_to_native
from app.imaging.codecs.encode import (
    can_encode,
    encode_native_frame,
    encoded_photometric,
    missing_encoder_reason,
)
from app.imaging.codecs.frame_header import HEADER_READERS
from app.imaging.codecs.registry import CODEC_FAMILIES, family_of
from app.imaging.pixel_description import PixelDescription
from app.imaging.pixel_layout import PixelLayout
from app.imaging.syntaxes import TRANSFER_SYNTAXES, FrameLayout, TransferSyntax, find_transfer_syntax

FRAMED = [s for s in TRANSFER_SYNTAXES if s.encapsulated and not s.is_video]
ENCODED = [uid for family in CODEC_FAMILIES.values() for uid in family.encoders]
GREY = FrameFormat(16, 16, 1, 8, 8, 0, "MONOCHROME2", 0)
RGB_PLANAR = FrameFormat(16, 16, 3, 8, 8, 0, "RGB", 1)


def ramp(fmt: FrameFormat) -> bytes:
    """A native frame whose samples differ (flat frames hide colour and plane mix-ups)."""
    values = np.arange(fmt.frame_bytes, dtype=np.uint32) * 7 % 251
    return values.astype(np.uint8).tobytes()


def test_every_syntax_has_a_family_and_every_family_a_syntax() -> None:
    assert {s.codec for s in TRANSFER_SYNTAXES} == set(CODEC_FAMILIES)
    assert all(family_of(s).name == s.codec for s in TRANSFER_SYNTAXES)


def test_encoder_rows_belong_to_their_family_and_every_framed_syntax_is_accounted_for() -> None:
    for name, family in CODEC_FAMILIES.items():
        for uid in [*family.encoders, *family.no_encoder]:
            syntax = find_transfer_syntax(uid)
            assert syntax is not None and syntax.codec == name and syntax.encapsulated, uid
        assert not set(family.encoders) & set(family.no_encoder), name
    for syntax in FRAMED:  # an encoder, or a reason there is none
        family = family_of(syntax)
        assert (syntax.uid in family.encoders) != (syntax.uid in family.no_encoder), syntax.label
        assert (missing_encoder_reason(syntax.uid) is None) == (syntax.uid in family.encoders)


def test_every_framed_syntax_decodes_and_native_or_video_ones_do_not() -> None:
    for syntax in TRANSFER_SYNTAXES:
        assert can_decode(syntax.uid) is (syntax in FRAMED), syntax.label
    assert CODEC_FAMILIES["video"].decoders == ()


def test_families_whose_frames_span_fragments_name_their_start_markers() -> None:
    spanning = {s.codec for s in TRANSFER_SYNTAXES if s.frames is FrameLayout.FRAGMENTS}
    assert spanning and all(CODEC_FAMILIES[name].start_markers for name in spanning)


@pytest.mark.parametrize("uid", ENCODED)
def test_an_encoded_frame_starts_with_its_family_marker_and_its_header_says_its_size(uid: str) -> None:
    syntax = find_transfer_syntax(uid)
    assert syntax is not None and can_encode(uid, GREY)
    family = family_of(syntax)
    encoded = encode_native_frame(ramp(GREY), uid, GREY)
    if family.start_markers:
        assert encoded.startswith(family.start_markers)
    reader = family.header_reader
    assert HEADER_READERS.get(syntax.codec) is reader
    if reader is not None:
        header = reader(encoded, len(encoded))
        assert (header.columns, header.rows) in ((16, 16), (None, None))


def _stored(fmt: FrameFormat, photometric: str, planar: int, syntax: TransferSyntax) -> PixelDescription:
    layout = PixelLayout(fmt.rows, fmt.columns, fmt.samples_per_pixel, fmt.bits_allocated, 1, photometric)
    return PixelDescription(layout, fmt.bits_stored, fmt.pixel_representation, planar, syntax, "")


@pytest.mark.parametrize("uid", [uid for uid in ENCODED if can_encode(uid, RGB_PLANAR)])
def test_the_colour_a_frame_decodes_to_is_the_one_the_frame_source_predicts(uid: str) -> None:
    """The registry's colour facts (YCbCr decoded as RGB, the stored layout kept) hold for both
    `decode_to_native` and `PixelDescription.native_format`, which sizes and labels the frames before
    decoding."""
    syntax = find_transfer_syntax(uid)
    assert isinstance(syntax, TransferSyntax)
    photometric, planar = encoded_photometric(uid, RGB_PLANAR)
    stored = _stored(RGB_PLANAR, photometric, planar, syntax)
    stored_fmt = FrameFormat(16, 16, 3, 8, 8, 0, photometric, planar)
    decoded = decode_to_native(encode_native_frame(ramp(RGB_PLANAR), uid, RGB_PLANAR), uid, stored_fmt)
    predicted = stored.native_format
    assert (decoded.photometric_interpretation, decoded.planar_configuration) == (
        predicted.photometric_interpretation,
        predicted.planar_configuration,
    )
    assert len(decoded.data) == predicted.frame_bytes
    if family_of(syntax).keeps_stored_layout:
        assert (photometric, planar, decoded.planar_configuration) == ("RGB", 1, 1)
    if uid in family_of(syntax).ycbcr_decoded_as_rgb:
        assert photometric == "YBR_FULL_422" and decoded.photometric_interpretation == "RGB"


@pytest.mark.parametrize("uid", [JPEGBaseline8Bit, JPEGExtended12Bit])
def test_full_resolution_ycbcr_jpeg_decodes_to_rgb_as_the_frame_source_predicts(uid: str) -> None:
    """YBR_FULL (4:4:4) JPEG, as cameras write it: neither the photometric nor the subsampling says
    RGB, only the registry's fact about the syntax."""
    syntax = find_transfer_syntax(uid)
    assert isinstance(syntax, TransferSyntax)
    rgb = np.frombuffer(ramp(RGB_PLANAR), np.uint8).reshape(16, 16, 3)
    frame = imagecodecs.jpeg8_encode(
        rgb, level=95, colorspace="RGB", outcolorspace="YCbCr", subsampling="444"
    )
    stored_fmt = FrameFormat(16, 16, 3, 8, 8, 0, "YBR_FULL", 0)
    decoded = decode_to_native(bytes(frame), uid, stored_fmt)
    predicted = _stored(stored_fmt, "YBR_FULL", 0, syntax).native_format
    assert decoded.photometric_interpretation == predicted.photometric_interpretation == "RGB"
    error = np.abs(np.frombuffer(decoded.data, np.uint8).astype(int) - rgb.reshape(-1).astype(int))
    assert error.mean() < 4  # RGB again, not the YCbCr samples (tens of values off)
