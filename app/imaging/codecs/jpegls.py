"""The JPEG-LS family (ISO/IEC 14495-1; PS3.5 8.2.3): Lossless (.80) and Near-Lossless (.81).

Decoding: CharLS through imagecodecs first (it releases the GIL; JPEG-LS decoding is exact, so it
gives what pyjpegls and libjpeg give, five times faster than libjpeg); a frame it refuses or shapes
otherwise goes to pyjpegls alone, then to pydicom's other plugins.
Encoding: CharLS through pyjpegls, which writes Bits Stored as the precision (imagecodecs' CharLS
writes 16 for 12-bit data and rejects int16). pyjpegls holds the GIL: encodes run in a process.
"""

from __future__ import annotations

from types import MappingProxyType

import imagecodecs
import jpeg_ls
import numpy as np
from pydicom.uid import JPEGLSLossless, JPEGLSNearLossless

from app.imaging.codecs.family import CodecFamily, Decoder, Encoder
from app.imaging.codecs.frame import (
    DecoderRefused,
    FrameFormat,
    NativeFrame,
    as_sample_type,
    to_native,
    unsigned_pattern,
)
from app.imaging.codecs.jpeg_header import jpegls_header
from app.imaging.codecs.layouts import COLOUR, full_resolution, intensities
from app.imaging.codecs.pydicom_decoding import pydicom_decoder
from app.imaging.syntaxes import TransferSyntax

_JPEGLS_NEAR = 2  # JPEG-LS near-lossless: no sample moves by more than this
_ISO_14495_1 = "ISO_14495_1"  # the Lossy Image Compression Method


def _decode_with_charls(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """CharLS through imagecodecs; anything it refuses or shapes otherwise goes to the next decoder.

    The stream holds each sample's Bits Stored bit pattern (PS3.5 8.2.3): signed samples are
    sign-extended from Bits Stored, exactly as pydicom does for this syntax.
    """
    try:
        pixels = imagecodecs.jpegls_decode(frame)
    except (imagecodecs.JpeglsError, ValueError, RuntimeError) as exc:
        raise DecoderRefused(None) from exc
    expected: tuple[int, ...] = (fmt.rows, fmt.columns)
    if fmt.samples_per_pixel != 1:
        expected += (fmt.samples_per_pixel,)
    if pixels.shape != expected or pixels.dtype.kind != "u" or fmt.bits_allocated not in (8, 16):
        raise DecoderRefused(None)
    return to_native(as_sample_type(pixels, syntax, fmt), syntax, fmt, fmt.photometric_interpretation)


def _jpegls(samples: np.ndarray, fmt: FrameFormat, near: int = 0) -> bytes:
    """CharLS with Bits Stored as the precision; signed samples as their unsigned bit pattern."""
    samples = unsigned_pattern(samples, fmt)
    interleave = 2 if fmt.samples_per_pixel == 3 else None  # sample-interleaved, as the input is
    try:
        return bytes(
            jpeg_ls.encode_buffer(
                samples.tobytes(),
                fmt.rows,
                fmt.columns,
                fmt.samples_per_pixel,
                fmt.bits_stored,
                lossy_error=near,
                interleave_mode=interleave,
            )
        )
    except RuntimeError as exc:
        # pyjpegls sizes its output from the input, too small for a few pixels plus the headers; for
        # a full-depth unsigned frame imagecodecs' CharLS writes the same stream with its own buffer.
        if "too small" not in str(exc) or fmt.pixel_representation or fmt.bits_stored != 8 * samples.itemsize:
            raise
        shape = (fmt.rows, fmt.columns, 3) if fmt.samples_per_pixel == 3 else (fmt.rows, fmt.columns)
        return bytes(imagecodecs.jpegls_encode(samples.reshape(shape), level=near))


def _jpegls_near(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Near-lossless: each sample within `_JPEGLS_NEAR` of the original (NEAR in the SOS)."""
    return _jpegls(samples, fmt, near=_JPEGLS_NEAR)


def _jpegls_layout(fmt: FrameFormat) -> bool:
    """2-16 bits stored in 8 or 16, either sign; colour unsigned: RGB 8 or 16 bits, YBR_FULL 8
    (the layouts PS3.5 8.2.3 lists)."""
    if not (full_resolution(fmt) and fmt.bits_allocated in (8, 16) and fmt.bits_stored >= 2):
        return False
    if fmt.samples_per_pixel == 1:
        return True
    if fmt.pixel_representation:
        return False
    return fmt.photometric_interpretation == "RGB" or fmt.bits_allocated == 8


def _jpegls_near_layout(fmt: FrameFormat) -> bool:
    return _jpegls_layout(fmt) and intensities(fmt, colour=COLOUR)


FAMILY: CodecFamily = CodecFamily(
    name="jpegls",
    decoders=(
        Decoder("CharLS (imagecodecs)", _decode_with_charls),
        pydicom_decoder(preferred_plugin="pyjpegls"),
    ),
    encoders=MappingProxyType(
        {
            JPEGLSLossless: Encoder(_jpegls_layout, _jpegls),
            JPEGLSNearLossless: Encoder(_jpegls_near_layout, _jpegls_near, method=_ISO_14495_1),
        }
    ),
    encode_in_process=True,
    start_markers=(b"\xff\xd8",),  # SOI
    header_reader=jpegls_header,
)
