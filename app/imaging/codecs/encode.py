"""Encode one native frame into a lossless compressed transfer syntax, one fragment's worth of bytes.

Why: groundwork for per-frame transcoding (PS3.18 8.7.3.5: a client may ask for a frame in a syntax
other than the stored one), so a frame must be encoded on its own, from the bytes Fovea serves as
`application/octet-stream`: little-endian samples of Bits Allocated bits, colour interleaved (or
planar when Planar Configuration is 1), Bits Allocated 1 bit-packed LSB first.

Who encodes what (each row of `_ENCODERS` says which layouts it takes, `can_encode` reads it):
- Deflated Image Frame Compression (PS3.5 8.2.16, A.4.13): libdeflate, raw RFC 1951; any layout,
  the native bytes as given (so Planar Configuration stays as stored).
- RLE Lossless (PS3.5 8.2.2, Annex G): pylibjpeg-rle; 8, 16 or 32 bits, 1 or 3 samples.
- JPEG-LS Lossless (PS3.5 8.2.3): CharLS through pyjpegls, which writes Bits Stored as the precision
  (imagecodecs' CharLS writes 16 for 12-bit data and rejects int16). Signed samples are encoded as
  their Bits Stored bit pattern, unsigned, as PS3.5 8.2.3 has it. pyjpegls holds the GIL.
- JPEG 2000 Lossless (PS3.5 8.2.4): OpenJPEG through imagecodecs (reversible 5/3, J2K codestream,
  precision and sign from Bits Stored and Pixel Representation). Not pylibjpeg-openjpeg: its encoder
  crashes when two threads call it at once.
- HTJ2K Lossless (PS3.5 8.2.15): OpenJPH through imagecodecs. It cannot be told a bit depth and
  writes the container's (8 or 16) as the precision, so only Bits Stored = Bits Allocated is taken.
- JPEG XL Lossless (PS3.5 8.2.17): libjxl through imagecodecs, a bare codestream; unsigned only.

Colour goes into JPEG-LS, JPEG 2000, HTJ2K and JPEG XL without a colour transform, so the frame's
Photometric Interpretation (RGB) still holds. (A reversible MCT in JPEG 2000 would make it YBR_RCT.)
Planar input is interleaved first: every codec but deflate encodes interleaved samples, so the
encoded frame has Planar Configuration 0 whatever the input had; deflate keeps the input's.

Samples above Bits Stored are corrected before encoding, as pydicom corrects them after decoding
(zeroed when unsigned, sign-extended when signed; PS3.5 8.1.1), so a round trip gives back what
`decode_to_native` serves.

Errors: `FrameEncodeError` (a ValueError) names the syntax and the reason; the codec's own error is
its `__cause__`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import deflate
import imagecodecs
import jpeg_ls
import numpy as np
from rle.utils import encode_pixel_data as rle_encode_pixel_data

from app.imaging.codecs.decode import FrameFormat, correct_unused_bits
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

_DEFLATE_LEVEL = 6  # libdeflate's default: about zlib -9's ratio at several times its speed
_RLE_MAX_SEGMENTS = 15  # PS3.5 G.2: the RLE header has room for 15 segment offsets
_COLOUR = frozenset({"RGB", "YBR_FULL"})  # three full-resolution samples a codec may take as is
_GREY = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"})


class FrameEncodeError(ValueError):
    """A native frame that cannot be encoded into a syntax; the message names the syntax and why."""


@dataclass(frozen=True, slots=True)
class _Encoder:
    accepts: Callable[[FrameFormat], bool]
    encode: Callable[[np.ndarray, FrameFormat], bytes]  # the interleaved, corrected samples
    samples: bool = True  # False: `encode` takes the native bytes as given (deflate)


def can_encode(transfer_syntax_uid: str, fmt: FrameFormat) -> bool:
    """Whether `encode_native_frame` can encode frames of this layout into this syntax."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    encoder = _ENCODERS.get(transfer_syntax_uid)
    return syntax is not None and encoder is not None and _plausible(fmt) and encoder.accepts(fmt)


def encode_native_frame(native: bytes, transfer_syntax_uid: str, fmt: FrameFormat) -> bytes:
    """One native frame encoded into `transfer_syntax_uid`, as its Pixel Data fragment holds it.

    The result is padded here, and only here, to an even length with one trailing 0x00, as every
    fragment must be (PS3.5 A.4); the decoders ignore bytes after the end of the codestream.
    """
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None:
        raise FrameEncodeError(f"{transfer_syntax_uid}: not a transfer syntax Fovea knows")
    encoder = _ENCODERS.get(syntax.uid)
    if encoder is None:
        raise FrameEncodeError(f"{syntax.label}: {_why_not(syntax)}")
    if not (_plausible(fmt) and encoder.accepts(fmt)):
        raise FrameEncodeError(f"{syntax.label}: cannot hold {_describe(fmt)}")
    size = fmt.frame_bytes
    if len(native) != size:
        raise FrameEncodeError(f"{syntax.label}: the native frame holds {len(native)} bytes, {size} expected")
    try:
        if encoder.samples:
            encoded = encoder.encode(_samples(native, fmt), fmt)
        else:
            encoded = encoder.encode(np.frombuffer(native, np.uint8), fmt)
    except (RuntimeError, ValueError) as exc:  # the codecs' own errors derive from these
        raise FrameEncodeError(f"{syntax.label}: {exc}") from exc
    return encoded + b"\x00" if len(encoded) % 2 else encoded


# --- the encoders, one per syntax ------------------------------------------------------------------


def _deflate(native: np.ndarray, fmt: FrameFormat) -> bytes:
    """Raw RFC 1951 (libdeflate writes neither zlib header nor Adler-32), PS3.5 A.4.13."""
    return bytes(deflate.deflate_compress(native.tobytes(), _DEFLATE_LEVEL))


def _rle(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """PackBits segments, most significant byte of each sample first (PS3.5 G.2)."""
    return bytes(
        rle_encode_pixel_data(
            samples.tobytes(),
            byteorder="<",
            rows=fmt.rows,
            columns=fmt.columns,
            samples_per_pixel=fmt.samples_per_pixel,
            bits_allocated=fmt.bits_allocated,
        )
    )


def _jpegls(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """CharLS with Bits Stored as the precision; signed samples as their unsigned bit pattern."""
    if fmt.pixel_representation:
        unsigned = samples.view(f"<u{samples.itemsize}")
        samples = unsigned & np.array((1 << fmt.bits_stored) - 1, unsigned.dtype)
    interleave = 2 if fmt.samples_per_pixel == 3 else None  # sample-interleaved, as the input is
    try:
        return bytes(
            jpeg_ls.encode_buffer(
                samples.tobytes(),
                fmt.rows,
                fmt.columns,
                fmt.samples_per_pixel,
                fmt.bits_stored,
                interleave_mode=interleave,
            )
        )
    except RuntimeError as exc:
        # pyjpegls sizes its output from the input, too small for a few pixels plus the headers; for
        # a full-depth unsigned frame imagecodecs' CharLS writes the same stream with its own buffer.
        if "too small" not in str(exc) or fmt.pixel_representation or fmt.bits_stored != 8 * samples.itemsize:
            raise
        shape = (fmt.rows, fmt.columns, 3) if fmt.samples_per_pixel == 3 else (fmt.rows, fmt.columns)
        return bytes(imagecodecs.jpegls_encode(samples.reshape(shape)))


def _jpeg2k(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Reversible 5/3 wavelet, no colour transform, J2K codestream (not a JP2 file)."""
    return bytes(
        imagecodecs.jpeg2k_encode(
            samples,
            level=0,
            codecformat=imagecodecs.JPEG2K.CODEC.J2K,
            reversible=True,
            mct=False,
            bitspersample=fmt.bits_stored,
            numthreads=1,
        )
    )


def _htj2k(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Reversible HT codestream; OpenJPH takes the precision from the array's dtype."""
    return bytes(imagecodecs.htj2k_encode(samples, level=0, reversible=True, rgb=False))


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


# --- which layouts each encoder takes ---------------------------------------------------------------


def _any_layout(fmt: FrameFormat) -> bool:
    return True


def _rle_layout(fmt: FrameFormat) -> bool:
    segments = fmt.samples_per_pixel * fmt.bits_allocated // 8
    return fmt.bits_allocated in (8, 16, 32) and _full_resolution(fmt) and segments <= _RLE_MAX_SEGMENTS


def _jpegls_layout(fmt: FrameFormat) -> bool:
    if not (_full_resolution(fmt) and fmt.bits_allocated in (8, 16) and fmt.bits_stored >= 2):
        return False
    return fmt.samples_per_pixel == 1 or fmt.bits_stored == 8  # colour: 8-bit only (PS3.5 8.2.3)


def _jpeg2k_layout(fmt: FrameFormat) -> bool:
    return _full_resolution(fmt) and fmt.bits_allocated in (8, 16)


def _htj2k_layout(fmt: FrameFormat) -> bool:
    return _jpeg2k_layout(fmt) and fmt.bits_stored == fmt.bits_allocated


def _jpegxl_layout(fmt: FrameFormat) -> bool:
    return _full_resolution(fmt) and fmt.bits_allocated in (8, 16) and not fmt.pixel_representation


# Keyed by UID: the lossless syntaxes only; lossy ones, native ones and video have no row.
_ENCODERS: Mapping[str, _Encoder] = MappingProxyType(
    {
        "1.2.840.10008.1.2.8.1": _Encoder(_any_layout, _deflate, samples=False),
        "1.2.840.10008.1.2.5": _Encoder(_rle_layout, _rle),
        "1.2.840.10008.1.2.4.80": _Encoder(_jpegls_layout, _jpegls),
        "1.2.840.10008.1.2.4.90": _Encoder(_jpeg2k_layout, _jpeg2k),
        "1.2.840.10008.1.2.4.201": _Encoder(_htj2k_layout, _htj2k),
        "1.2.840.10008.1.2.4.110": _Encoder(_jpegxl_layout, _jpegxl),
    }
)


def _plausible(fmt: FrameFormat) -> bool:
    """Attributes any native frame has (PS3.3 C.7.6.3): a size, a sample width, stored bits that fit."""
    if fmt.rows < 1 or fmt.columns < 1 or fmt.samples_per_pixel not in (1, 3):
        return False
    if fmt.bits_allocated != 1 and fmt.bits_allocated % 8:
        return False
    return 1 <= fmt.bits_stored <= fmt.bits_allocated and fmt.pixel_representation in (0, 1)


def _full_resolution(fmt: FrameFormat) -> bool:
    """One sample per pixel and component (no YBR_*_422 subsampling), in a photometric a codec keeps."""
    photometric = _GREY if fmt.samples_per_pixel == 1 else _COLOUR
    return fmt.photometric_interpretation in photometric


def _why_not(syntax: TransferSyntax) -> str:
    if not syntax.encapsulated:
        return "a native syntax: frames are served as stored, not encoded"
    if syntax.is_video:
        return "a video stream is not encoded one frame at a time"
    if syntax.lossless is not True:
        return "lossy encoding is not supported"
    return "no encoder is installed for it"


# --- the shared head: size the frame, read its samples ---------------------------------------------


def _samples(native: bytes, fmt: FrameFormat) -> np.ndarray:
    """The frame's samples as (rows, columns[, samples]), interleaved, high bits corrected."""
    kind = "i" if fmt.pixel_representation else "u"
    samples = np.frombuffer(native, f"<{kind}{fmt.bits_allocated // 8}")
    if fmt.samples_per_pixel == 1:
        samples = samples.reshape(fmt.rows, fmt.columns)
    elif fmt.planar_configuration == 1:
        samples = samples.reshape(fmt.samples_per_pixel, fmt.rows, fmt.columns).transpose(1, 2, 0)
    else:
        samples = samples.reshape(fmt.rows, fmt.columns, fmt.samples_per_pixel)
    samples = np.array(samples, order="C")  # a copy: corrected in place
    correct_unused_bits(samples, fmt)
    return samples


def _describe(fmt: FrameFormat) -> str:
    sign = "signed" if fmt.pixel_representation else "unsigned"
    return (
        f"{fmt.rows}x{fmt.columns} {fmt.photometric_interpretation}, {fmt.samples_per_pixel} sample(s) of "
        f"{fmt.bits_stored} {sign} bits in {fmt.bits_allocated}"
    )
