"""The JPEG family (ISO/IEC 10918-1; PS3.5 8.2.1): Baseline (.50), Extended (.51), Lossless (.57, .70).

Decoding: pydicom's plugins (pylibjpeg-libjpeg holds the GIL: decodes run in a process); colour
Baseline and Extended frames come back as RGB. A greyscale frame every plugin refuses is retried with
libjpeg-turbo, which reads some streams libjpeg does not; colour is not, as its YCbCr conversion
differs from pydicom's.
Encoding: libjpeg-turbo 3 through imagecodecs (releases the GIL). docs/codecs.md says why each
syntax takes the layouts it does.
"""

from __future__ import annotations

from types import MappingProxyType

import imagecodecs
import numpy as np
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1

from app.imaging.codecs.family import CodecFamily, Decoder, Encoder
from app.imaging.codecs.frame import (
    DecoderRefused,
    FrameFormat,
    NativeFrame,
    as_sample_type,
    to_native,
    unsigned_pattern,
)
from app.imaging.codecs.jpeg_header import jpeg_header
from app.imaging.codecs.layouts import COLOUR, full_resolution, intensities
from app.imaging.codecs.pydicom_decoding import pydicom_decoder
from app.imaging.syntaxes import TransferSyntax

_JPEG_LOSSLESS_PREDICTOR = 1  # Ra, the sample to the left: the only one .70 allows
_JPEG_QUALITY = 90  # libjpeg-turbo's 0-100 scale of the IJG tables: 43 dB on 8-bit test frames
_ISO_10918_1 = "ISO_10918_1"  # the Lossy Image Compression Method

# Lossy JPEG codes colour as YCbCr by design (JFIF); its frames are given as RGB, as viewers expect.
# Every other codec stores the samples it was given: YBR_FULL comes back as YBR_FULL, untouched, since
# converting to RGB rounds (not reversible), and a lossless syntax must give back what it holds.
_YCBCR_DECODED_AS_RGB = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})


def _decode_with_libjpeg_turbo(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """A greyscale JPEG frame pydicom's plugins all refused, decoded by libjpeg-turbo."""
    try:
        pixels = imagecodecs.jpeg8_decode(frame)
    except (imagecodecs.Jpeg8Error, ValueError) as exc:
        raise DecoderRefused(str(exc)) from exc
    return to_native(as_sample_type(pixels, syntax, fmt), syntax, fmt, fmt.photometric_interpretation)


def _greyscale(fmt: FrameFormat) -> bool:
    return fmt.samples_per_pixel == 1


def _jpeg_baseline(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Process 1, 8-bit DCT; colour converted to YCbCr (unless it is already) and subsampled 4:2:2."""
    if fmt.samples_per_pixel == 1:
        return bytes(imagecodecs.jpeg8_encode(samples, level=_JPEG_QUALITY))
    given = "RGB" if fmt.photometric_interpretation == "RGB" else "YCbCr"
    return bytes(
        imagecodecs.jpeg8_encode(
            samples, level=_JPEG_QUALITY, colorspace=given, outcolorspace="YCbCr", subsampling="422"
        )
    )


def _jpeg_extended(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Process 4 (12-bit DCT, SOF1) or, for 8-bit frames, a baseline stream; greyscale."""
    return bytes(imagecodecs.jpeg8_encode(samples, level=_JPEG_QUALITY, bitspersample=fmt.bits_stored))


def _jpeg_lossless(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Process 14 (SOF3), predictor 1, Bits Stored as the precision; no colour transform."""
    pattern = unsigned_pattern(samples, fmt)
    if fmt.bits_stored <= 8:  # libjpeg-turbo takes 2-8 bits in uint8 only, 9-16 in uint16 only
        pattern = pattern.astype(np.uint8)
    return bytes(
        imagecodecs.jpeg8_encode(
            pattern,
            lossless=True,
            predictor=_JPEG_LOSSLESS_PREDICTOR,
            bitspersample=fmt.bits_stored,
        )
    )


def _jpeg_baseline_layout(fmt: FrameFormat) -> bool:
    """8 bits stored in 8, unsigned; MONOCHROME1/2, RGB or YBR_FULL."""
    depth = fmt.bits_allocated == 8 and fmt.bits_stored == 8 and not fmt.pixel_representation
    return depth and intensities(fmt, colour=COLOUR)


def _jpeg_extended_layout(fmt: FrameFormat) -> bool:
    """Greyscale, unsigned, 12 bits stored in 16 or 8 in 8 (the decoder clips at 4095 or 255)."""
    depth = (fmt.bits_allocated, fmt.bits_stored) in ((16, 12), (8, 8))
    return depth and fmt.samples_per_pixel == 1 and intensities(fmt) and not fmt.pixel_representation


def _jpeg_lossless_layout(fmt: FrameFormat) -> bool:
    """2-16 bits stored in 8 or 16, either sign; colour: unsigned RGB (YCbCr would be subsampled)."""
    if not (full_resolution(fmt) and fmt.bits_allocated in (8, 16) and fmt.bits_stored >= 2):
        return False
    if fmt.samples_per_pixel == 1:
        return True
    return fmt.photometric_interpretation == "RGB" and not fmt.pixel_representation


FAMILY: CodecFamily = CodecFamily(
    name="jpeg",
    decoders=(
        pydicom_decoder(as_rgb=_YCBCR_DECODED_AS_RGB),
        Decoder("libjpeg-turbo (imagecodecs)", _decode_with_libjpeg_turbo, accepts=_greyscale),
    ),
    encoders=MappingProxyType(
        {
            JPEGBaseline8Bit: Encoder(
                _jpeg_baseline_layout, _jpeg_baseline, method=_ISO_10918_1, colour="YBR_FULL_422"
            ),
            JPEGExtended12Bit: Encoder(_jpeg_extended_layout, _jpeg_extended, method=_ISO_10918_1),
            JPEGLossless: Encoder(_jpeg_lossless_layout, _jpeg_lossless),
            JPEGLosslessSV1: Encoder(_jpeg_lossless_layout, _jpeg_lossless),
        }
    ),
    decode_in_process=True,
    start_markers=(b"\xff\xd8",),  # SOI
    header_reader=jpeg_header,
    ycbcr_decoded_as_rgb=_YCBCR_DECODED_AS_RGB,
)
