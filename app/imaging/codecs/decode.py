"""Decode one stored frame to native little-endian pixels, as `application/octet-stream` sends them.

Why: PS3.18 8.7.3.3.1 lets a client ask for any frame as uncompressed little-endian bytes, so a
frame stored compressed must be decoded, one frame at a time, without reading the rest of the
instance. The output is what pydicom's `pixel_array` gives for that frame, byte for byte: samples
of Bits Allocated bits (signed when Pixel Representation is 1, unused high bits corrected the way
pydicom corrects them), colour samples interleaved (Planar Configuration 0), YBR_FULL and
YBR_FULL_422 JPEG converted to RGB; Bits Allocated 1 is bit-packed, LSB first, from bit 0.

Who decodes what:
- Deflated Image Frame Compression (PS3.5 8.2.16, A.4.13): `codecs.deflate`. The result is the
  native frame, so its Planar Configuration and Photometric Interpretation stay as stored.
- Encapsulated Uncompressed Explicit VR Little Endian: the fragment is the frame.
- RLE, JPEG, JPEG-LS, JPEG 2000 and HTJ2K: pydicom's decoders and their plugins, which is what
  makes the output equal `pixel_array`. JPEG 2000 Part 2 goes to the Part 1 decoders (OpenJPEG
  reads the multi-component transform markers). JPEG-LS goes to CharLS through imagecodecs first
  (it releases the GIL; the same output as pyjpegls and libjpeg, five times faster than libjpeg),
  then to pyjpegls alone, then to pydicom's other plugins. A greyscale JPEG frame every plugin
  refuses is retried with libjpeg-turbo (imagecodecs), which reads some streams libjpeg does not;
  colour is not, as its YCbCr conversion differs from pydicom's.
- JPEG XL (1.2.840.10008.1.2.4.110-112): imagecodecs (libjxl); pydicom 3.0.2 has no decoder.
- Native syntaxes are served as stored (`codecs.native`), and a video stream has no frames to
  decode one by one: neither is decoded here.

Thread safety: `Decoder.as_array` keeps its per-call state in a new `DecodeRunner` and only reads
the decoder singletons. Warnings are not filtered: `warnings.catch_warnings` swaps the process-wide
filter list, which is not thread-safe; `validate=False` avoids the one warning routine frames
raise, and the rest flag a stored frame at odds with its attributes.

Before any decoder runs, the frame's codestream header is compared with the data set
(`frame_header`): a header that cannot be read, or that claims another size, component count or a
precision above Bits Allocated, is refused, since the decoder would size its work by it.

Errors: `FrameDecodeError` (a ValueError) names the syntax and the reason; the codec's own error is
its `__cause__`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import imagecodecs
import numpy as np
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import (
    JPEG2000,
    JPEG2000MC,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

from app.imaging.codecs.deflate import InflateError, inflate_frame
from app.imaging.codecs.frame_header import FrameHeaderError, check_frame_header
from app.imaging.frames import PixelLayout
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

_JPEGXL_RECOMPRESSION = "1.2.840.10008.1.2.4.111"

# pydicom 3.0.2 has no Part 2 decoders; OpenJPEG, behind the Part 1 ones, reads Part 2 codestreams.
_DECODED_AS: Mapping[str, str] = MappingProxyType(
    {JPEG2000MCLossless: JPEG2000Lossless, JPEG2000MC: JPEG2000}
)


# Plugins tried alone before pydicom's own order. JPEG-LS decoding is exact (ISO/IEC 14495-1 fixes
# the decoder's output, near-lossless included), so CharLS gives what libjpeg gives, five times faster.
_PREFERRED_PLUGIN: Mapping[str, str] = MappingProxyType(
    {JPEGLSLossless: "pyjpegls", JPEGLSNearLossless: "pyjpegls"}
)


# Lossy JPEG codes colour as YCbCr by design (JFIF); its frames are given as RGB, as viewers expect.
# Every other codec stores the samples it was given: YBR_FULL comes back as YBR_FULL, untouched, since
# converting to RGB rounds (not reversible), and a lossless syntax must give back what it holds.
_YCBCR_DECODED_AS_RGB = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})


class FrameDecodeError(ValueError):
    """A frame that cannot be decoded to native pixels; the message names the syntax and why."""


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """The Image Pixel attributes a decoder needs (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int  # 0 unsigned, 1 signed
    photometric_interpretation: str
    planar_configuration: int  # 0 when absent

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame (4:2:2 subsampled, Bits Allocated 1 rounded up)."""
        layout = PixelLayout(
            self.rows,
            self.columns,
            self.samples_per_pixel,
            self.bits_allocated,
            1,
            self.photometric_interpretation,
        )
        return layout.frame_bytes

    @property
    def description(self) -> str:
        """The layout in words, for messages: "512x512 MONOCHROME2, 1 sample(s) of 12 signed bits in 16"."""
        sign = "signed" if self.pixel_representation else "unsigned"
        return (
            f"{self.rows}x{self.columns} {self.photometric_interpretation}, {self.samples_per_pixel} "
            f"sample(s) of {self.bits_stored} {sign} bits in {self.bits_allocated}"
        )


@dataclass(frozen=True, slots=True)
class NativeFrame:
    """One frame as native little-endian bytes, with the colour attributes that describe them."""

    data: bytes
    photometric_interpretation: str  # of `data` (e.g. "RGB" after a JPEG YBR_FULL_422 decode)
    planar_configuration: int  # of `data`


def can_decode(transfer_syntax_uid: str) -> bool:
    """Whether `decode_to_native` can decode frames of this syntax with the libraries installed."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    return syntax is not None and _route_for(syntax) is not None


def decode_to_native(frame: bytes, transfer_syntax_uid: str, fmt: FrameFormat) -> NativeFrame:
    """Decode `frame`, one frame's bytes as stored (fragments joined, pad byte included)."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None:
        raise FrameDecodeError(f"{transfer_syntax_uid}: not a transfer syntax Fovea knows")
    route = _route_for(syntax)
    if route is None:
        raise FrameDecodeError(f"{syntax.label}: {_why_not(syntax)}")
    try:  # the decoder sizes its work by this header: it must say what the data set says
        check_frame_header(syntax.codec, frame, len(frame), fmt, what="codestream header")
    except FrameHeaderError as exc:
        raise FrameDecodeError(f"{syntax.label}: {exc}") from exc
    return route.decode(frame, syntax, fmt)


# --- the routes, one per codec family --------------------------------------------------------------


def _unwrap_uncompressed(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """The fragment is the native frame, maybe followed by a pad byte."""
    size = fmt.frame_bytes
    if len(frame) < size:
        raise FrameDecodeError(f"{syntax.label}: the fragment holds {len(frame)} bytes, the frame {size}")
    return NativeFrame(frame[:size], fmt.photometric_interpretation, fmt.planar_configuration)


def _inflate(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    try:
        data = inflate_frame(frame, fmt.frame_bytes)
    except InflateError as exc:
        raise FrameDecodeError(f"{syntax.label}: {exc}") from exc
    return NativeFrame(data, fmt.photometric_interpretation, fmt.planar_configuration)


def _decode_with_pydicom(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """pydicom's decoder for the syntax, on the frame wrapped as a one-frame Pixel Data value."""
    decoder = _pydicom_decoder(syntax.uid)
    if decoder is None:
        raise FrameDecodeError(f"{syntax.label}: {_why_not(syntax)}")
    try:
        pixels, properties = _as_array(decoder, encapsulate([frame], has_bot=False), fmt)
    except (RuntimeError, ValueError) as exc:  # RuntimeError: every plugin failed, each one named
        if syntax.codec == "jpeg" and fmt.samples_per_pixel == 1:
            return _decode_jpeg_with_libjpeg_turbo(frame, syntax, fmt, pydicom_error=exc)
        raise FrameDecodeError(f"{syntax.label}: {exc}") from exc
    return _to_native(pixels, syntax, fmt, str(properties["photometric_interpretation"]))


def _as_array(decoder: Decoder, value: bytes, fmt: FrameFormat) -> tuple[np.ndarray, dict[str, str | int]]:
    """`Decoder.as_array` on frame 0 of `value`: the preferred plugin alone, then all in pydicom's order."""
    preferred = _PREFERRED_PLUGIN.get(decoder.UID, "")
    if preferred in decoder.available_plugins:
        try:
            return _as_array_with(decoder, value, fmt, preferred)
        except (RuntimeError, ValueError):
            pass  # the stream may still suit another plugin, as it would for pixel_array
    return _as_array_with(decoder, value, fmt, "")


def _as_array_with(
    decoder: Decoder, value: bytes, fmt: FrameFormat, plugin: str
) -> tuple[np.ndarray, dict[str, str | int]]:
    """`Decoder.as_array` on frame 0 of `value`, by `plugin` alone or, for "", by each in turn.

    `validate=False`: its only check beyond the attributes is a warning when the compressed size
    happens to equal the native one.
    """
    options: dict[str, Any] = {
        "number_of_frames": 1,
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples_per_pixel,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": fmt.pixel_representation,
        "photometric_interpretation": fmt.photometric_interpretation,
        "planar_configuration": fmt.planar_configuration,
        "as_rgb": decoder.UID in _YCBCR_DECODED_AS_RGB,
    }
    return decoder.as_array(value, index=0, validate=False, decoding_plugin=plugin, **options)


def _decode_jpeg_with_libjpeg_turbo(
    frame: bytes, syntax: TransferSyntax, fmt: FrameFormat, *, pydicom_error: Exception
) -> NativeFrame:
    """A greyscale JPEG frame pydicom's plugins all refused, decoded by libjpeg-turbo."""
    try:
        pixels = imagecodecs.jpeg8_decode(frame)
    except (imagecodecs.Jpeg8Error, ValueError) as exc:
        raise FrameDecodeError(
            f"{syntax.label}: {pydicom_error}\n  libjpeg-turbo (imagecodecs): {exc}"
        ) from exc
    samples = _as_sample_type(pixels, syntax, fmt)
    return _to_native(samples, syntax, fmt, fmt.photometric_interpretation)


def _decode_jpegls(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """CharLS through imagecodecs, which releases the GIL (pyjpegls, the same CharLS, holds it);
    anything it refuses or shapes otherwise goes to pydicom's plugins, as before.

    The stream holds each sample's Bits Stored bit pattern (PS3.5 8.2.3): signed samples are
    sign-extended from Bits Stored, exactly as pydicom does for this syntax.
    """
    try:
        pixels = imagecodecs.jpegls_decode(frame)
    except (imagecodecs.JpeglsError, ValueError, RuntimeError):
        return _decode_with_pydicom(frame, syntax, fmt)
    expected: tuple[int, ...] = (fmt.rows, fmt.columns)
    if fmt.samples_per_pixel != 1:
        expected += (fmt.samples_per_pixel,)
    if pixels.shape != expected or pixels.dtype.kind != "u" or fmt.bits_allocated not in (8, 16):
        return _decode_with_pydicom(frame, syntax, fmt)
    return _to_native(_as_sample_type(pixels, syntax, fmt), syntax, fmt, fmt.photometric_interpretation)


def _decode_jpegxl(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """libjxl's pixels, interleaved; a recompressed colour JPEG comes back as RGB."""
    try:
        pixels = imagecodecs.jpegxl_decode(frame)
    except (imagecodecs.JpegxlError, ValueError, RuntimeError) as exc:  # RuntimeError: a broken stream
        raise FrameDecodeError(f"{syntax.label}: {exc}") from exc
    photometric = fmt.photometric_interpretation
    if syntax.uid == _JPEGXL_RECOMPRESSION and fmt.samples_per_pixel == 3:
        photometric = "RGB"
    return _to_native(_as_sample_type(pixels, syntax, fmt), syntax, fmt, photometric)


@dataclass(frozen=True, slots=True)
class _Route:
    decode: Callable[[bytes, TransferSyntax, FrameFormat], NativeFrame]
    available: Callable[[str], bool]


def _always(uid: str) -> bool:
    return True


_PYDICOM = _Route(_decode_with_pydicom, lambda uid: _pydicom_decoder(uid) is not None)

# Keyed by `TransferSyntax.codec`; only encapsulated syntaxes get this far.
_ROUTES: Mapping[str, _Route] = MappingProxyType(
    {
        "native": _Route(_unwrap_uncompressed, _always),
        "deflate": _Route(_inflate, _always),
        "rle": _PYDICOM,
        "jpeg": _PYDICOM,
        "jpegls": _Route(_decode_jpegls, lambda uid: True),
        "jpeg2000": _PYDICOM,
        "htj2k": _PYDICOM,
        "jpegxl": _Route(_decode_jpegxl, lambda uid: bool(imagecodecs.JPEGXL.available)),
    }
)


def _route_for(syntax: TransferSyntax) -> _Route | None:
    if not syntax.encapsulated:  # native frames are served as stored
        return None
    route = _ROUTES.get(syntax.codec)  # none for video
    return route if route is not None and route.available(syntax.uid) else None


def _why_not(syntax: TransferSyntax) -> str:
    if not syntax.encapsulated:
        return "native frames are served as stored, not decoded"
    if syntax.is_video:
        return "a video stream has no separate frames to decode"
    return "no decoder is installed for it"


def _pydicom_decoder(uid: str) -> Decoder | None:
    try:
        decoder = get_decoder(_DECODED_AS.get(uid, uid))
    except NotImplementedError:
        return None
    return decoder if decoder.is_available else None


# --- the shared tail: check the array, write its bytes ---------------------------------------------


def _to_native(pixels: np.ndarray, syntax: TransferSyntax, fmt: FrameFormat, photometric: str) -> NativeFrame:
    """The decoded array as native little-endian bytes, once its shape is the frame's."""
    expected: tuple[int, ...] = (fmt.rows, fmt.columns)
    if fmt.samples_per_pixel != 1:
        expected += (fmt.samples_per_pixel,)
    if pixels.shape != expected:
        raise FrameDecodeError(
            f"{syntax.label}: decoded to shape {pixels.shape}, the frame is {expected} "
            "(rows, columns[, samples])"
        )
    if fmt.bits_allocated == 1:
        data = np.packbits(pixels, axis=None, bitorder="little").tobytes()
    else:
        data = pixels.astype(_sample_dtype(syntax, fmt), copy=False).tobytes()
    return NativeFrame(data, photometric, 0)


def _as_sample_type(pixels: np.ndarray, syntax: TransferSyntax, fmt: FrameFormat) -> np.ndarray:
    """A decoded integer array in the frame's sample type, unused high bits corrected.

    Why: pydicom corrects the bits above Bits Stored for every syntax but JPEG-LS and JPEG 2000
    (sign-extended when signed, zeroed when not; PS3.5 8.1.1), so decoders it lacks do the same.
    """
    if fmt.bits_allocated == 1:
        return pixels
    dtype = _sample_dtype(syntax, fmt)
    if pixels.dtype.kind not in "ui" or pixels.dtype.itemsize > dtype.itemsize:
        raise FrameDecodeError(
            f"{syntax.label}: decoded {pixels.dtype} samples do not fit Bits Allocated {fmt.bits_allocated}"
        )
    samples = pixels.astype(dtype)  # a copy: corrected in place
    correct_unused_bits(samples, fmt)
    return samples


def correct_unused_bits(samples: np.ndarray, fmt: FrameFormat) -> None:
    """Sign-extend (signed) or zero (unsigned) the bits above Bits Stored, in place (PS3.5 8.1.1).

    The left shift drops the unused bits; the arithmetic (signed) or logical (unsigned) right shift
    brings the stored ones back, extended the way the sample type says.
    """
    unused = fmt.bits_allocated - fmt.bits_stored
    if unused > 0:
        np.left_shift(samples, unused, out=samples)
        np.right_shift(samples, unused, out=samples)


def _sample_dtype(syntax: TransferSyntax, fmt: FrameFormat) -> np.dtype:
    if fmt.bits_allocated not in (8, 16, 32, 64):
        raise FrameDecodeError(f"{syntax.label}: Bits Allocated {fmt.bits_allocated} is not supported")
    kind = "i" if fmt.pixel_representation else "u"
    return np.dtype(f"<{kind}{fmt.bits_allocated // 8}")
