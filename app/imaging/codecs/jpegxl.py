"""The JPEG XL family (ISO/IEC 18181-1; PS3.5 8.2.17): Lossless (.110), JPEG Recompression (.111), .112.

Decoding: libjxl through imagecodecs (releases the GIL); pydicom 3.0.2 has no decoder. A recompressed
colour JPEG comes back as RGB.
Encoding: libjxl, a bare codestream (FF 0A), Bits Stored as the bit depth, unsigned 8 or 16 bits.
JPEG Recompression re-packs an existing JPEG bitstream losslessly: there is no encoder from pixels.
"""

from __future__ import annotations

from types import MappingProxyType

import imagecodecs
import numpy as np

from app.imaging.codecs.family import CodecFamily, Decoder, Encoder
from app.imaging.codecs.frame import DecoderRefused, FrameFormat, NativeFrame, as_sample_type, to_native
from app.imaging.codecs.jpegxl_header import jpegxl_header
from app.imaging.codecs.layouts import full_resolution, intensities, ranges
from app.imaging.syntaxes import JPEGXL, JPEGXLJPEGRecompression, JPEGXLLossless, TransferSyntax

_JPEGXL_DISTANCE = 1.0  # libjxl's Butteraugli distance; 1.0 is its "visually lossless" default
_JPEGXL_MIN_DISTANCE = 0.1  # the floor of the distance scaled to the span (about 49 dB on CT)
_ISO_18181_1 = "ISO_18181_1"  # the Lossy Image Compression Method


def _decode_with_libjxl(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """libjxl's pixels, interleaved; a recompressed colour JPEG comes back as RGB."""
    try:
        pixels = imagecodecs.jpegxl_decode(frame)
    except (imagecodecs.JpegxlError, ValueError, RuntimeError) as exc:  # RuntimeError: a broken stream
        raise DecoderRefused(str(exc)) from exc
    photometric = fmt.photometric_interpretation
    if syntax.uid == JPEGXLJPEGRecompression and fmt.samples_per_pixel == 3:
        photometric = "RGB"
    return to_native(as_sample_type(pixels, syntax, fmt), syntax, fmt, photometric)


def _libjxl_available(_uid: str) -> bool:
    return bool(imagecodecs.JPEGXL.available)


def _jpegxl(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Modular lossless, a bare codestream (FF 0A), Bits Stored as the bit depth."""
    return bytes(
        imagecodecs.jpegxl_encode(
            samples,
            lossless=True,
            usecontainer=False,
            bitspersample=fmt.bits_stored,
            numthreads=1,
        )
    )


def _jpegxl_lossy(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """VarDCT, a bare codestream, Bits Stored as the bit depth; the distance scaled to the span.

    libjxl judges errors against the full bit depth as if it were displayed whole; a CT frame spans a
    sixteenth of 16 bits and is viewed through a narrower window still, so distance 1.0 there leaves
    errors over 100 HU. The distance shrinks with the span, to `_JPEGXL_MIN_DISTANCE` at most.
    """
    full_range, span = ranges(samples, fmt)
    distance = max(_JPEGXL_MIN_DISTANCE, _JPEGXL_DISTANCE * span / full_range)
    return bytes(
        imagecodecs.jpegxl_encode(
            samples,
            lossless=False,
            distance=distance,
            usecontainer=False,
            bitspersample=fmt.bits_stored,
            numthreads=1,
        )
    )


def _jpegxl_layout(fmt: FrameFormat) -> bool:
    return full_resolution(fmt) and fmt.bits_allocated in (8, 16) and not fmt.pixel_representation


def _jpegxl_lossy_layout(fmt: FrameFormat) -> bool:
    return _jpegxl_layout(fmt) and intensities(fmt)


FAMILY: CodecFamily = CodecFamily(
    name="jpegxl",
    decoders=(Decoder("libjxl (imagecodecs)", _decode_with_libjxl, available=_libjxl_available),),
    encoders=MappingProxyType(
        {
            JPEGXLLossless: Encoder(_jpegxl_layout, _jpegxl),
            JPEGXL: Encoder(_jpegxl_lossy_layout, _jpegxl_lossy, method=_ISO_18181_1),
        }
    ),
    no_encoder=MappingProxyType(
        {
            JPEGXLJPEGRecompression: "JPEG XL JPEG Recompression re-packs an existing JPEG bitstream; "
            "there is no encoder from pixels"
        }
    ),
    # The naked codestream's signature, or the container's signature box (ISO/IEC 18181-2).
    start_markers=(b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
    header_reader=jpegxl_header,
)
