"""Encode one native frame into a compressed transfer syntax, one fragment's worth of bytes.

Why: per-frame transcoding (PS3.18 8.7.3.5: a client may ask for a frame in a syntax other than
the stored one), so a frame must be encoded on its own, from the bytes Fovea serves as
`application/octet-stream`: little-endian samples of Bits Allocated bits, colour interleaved (or
planar when Planar Configuration is 1), Bits Allocated 1 bit-packed LSB first.

Who encodes what, lossless (each row of `_ENCODERS` says which layouts it takes, `can_encode` reads
it; every frame written is one `decode_to_native` reads back bit for bit):
- Deflated Image Frame Compression (PS3.5 8.2.16, A.4.13): libdeflate, raw RFC 1951; any layout,
  the native bytes as given (so Photometric Interpretation and Planar Configuration stay as stored).
- Encapsulated Uncompressed Explicit VR Little Endian (.1.98, PS3.5 A.4.11): no codec, the native
  frame is the fragment (padded to even length); any layout, as given, like deflate.
- RLE Lossless (PS3.5 8.2.2, Annex G): pylibjpeg-rle; 8, 16 or 32 bits, 1 or 3 samples.
- JPEG Lossless, Process 14 (.57) and Process 14 SV1 (.70) (PS3.5 8.2.1): libjpeg-turbo 3 through
  imagecodecs (`jpeg8_encode(lossless=True)`), Huffman SOF3 with Bits Stored (2-16) as the
  precision. Both use predictor 1 (Ss = 1 in SOS), the only one .70 allows; for .57 no other
  predictor saved more than 5 % on test frames, so .57 gets the same stream. Signed samples are
  encoded as their Bits Stored bit pattern, unsigned (as for JPEG-LS), and read back signed by
  pydicom from Pixel Representation. Colour: unsigned RGB of 8 or 16 bits (Bits Stored 2-16), no
  colour transform (component ids R, G, B and an Adobe marker saying so). YBR_FULL is refused:
  asked for YCbCr, libjpeg-turbo subsamples the chroma 2:1 even in lossless mode, a stream libjpeg
  cannot decode.
- JPEG-LS Lossless (PS3.5 8.2.3): CharLS through pyjpegls, which writes Bits Stored as the precision
  (imagecodecs' CharLS writes 16 for 12-bit data and rejects int16). Signed samples are encoded as
  their Bits Stored bit pattern, unsigned, as PS3.5 8.2.3 has it. Colour: unsigned RGB of 8 or 16
  bits, YBR_FULL of 8, sample-interleaved. pyjpegls holds the GIL.
- JPEG 2000 Lossless (PS3.5 8.2.4): OpenJPEG through imagecodecs (reversible 5/3, J2K codestream,
  precision and sign from Bits Stored and Pixel Representation). Not pylibjpeg-openjpeg: its encoder
  crashes when two threads call it at once.
- HTJ2K Lossless (.201) and HTJ2K Lossless RPCL (.202) (PS3.5 8.2.15): OpenJPH through imagecodecs,
  in `codecs.htj2k`: encoded in an 8- or 16-bit container, the header then set to Bits Stored and
  Pixel Representation (exactly; Bits Stored 2-8 and 10-16). RPCL progression for both; .202 adds
  TLM markers, tile-parts split at resolutions and a lowest resolution of 64 samples or fewer.
- JPEG XL Lossless (PS3.5 8.2.17): libjxl through imagecodecs, a bare codestream; unsigned only.

Lossy (`encodes_lossy`; each names its Lossy Image Compression Method, `lossy_method`); PALETTE
COLOR is refused by all of them (its samples are indices, not intensities), and so is every layout
whose reconstruction could overshoot Bits Stored, since pydicom would wrap the overshoot through
its high-bit correction rather than clip it:
- JPEG Baseline (.50, ISO_10918_1): libjpeg-turbo, quality `_JPEG_QUALITY` (90) with the standard
  IJG tables; 8-bit unsigned only (Bits Stored 8: a 12-bit source is refused, never cut to 8 bits).
  MONOCHROME1/2 stay as they are; RGB (or YBR_FULL) becomes YCbCr with 4:2:2 chroma subsampling, so
  the frame is YBR_FULL_422 (SOF: three components, Y sampled 2x1).
- JPEG Extended (.51, ISO_10918_1): libjpeg-turbo, the same quality, greyscale unsigned only, Bits
  Stored 12 in 16 (SOF1, precision 12) or 8 in 8 (libjpeg-turbo writes that as SOF0, which every
  Process 2 decoder reads). 10- or 11-bit data is refused: the decoder clips at 4095, not at Bits
  Stored. The IJG tables are not scaled up for 12 bits, so 12-bit frames lose far less than 8-bit
  ones at the same quality (about 60 dB against 43 dB on test frames).
- JPEG-LS Near-Lossless (.81, ISO_14495_1): CharLS, NEAR = `_JPEGLS_NEAR` (2): every sample is
  within 2 of the original, whatever the bit depth; same layouts as .80 (signed as a bit pattern).
- JPEG 2000 (.91, ISO_15444_1): OpenJPEG, irreversible 9/7, one quality layer rate-allocated to a
  PSNR of `_JPEG2000_PSNR_DB` (50 dB against the range the frame's samples actually span: an RMS
  error about 1/316 of it, under one step of an 8-bit display of the whole range). Against the Bits
  Stored range instead, a CT frame spanning 4,000 of 65,536 values would get an error of 200 HU
  (12 dB over its own range, ratio 700). OpenJPEG's allocation misses badly on small or flat frames
  (18-25 dB for a uniform 8x8 frame), so each frame is decoded once and, below
  `_JPEG2000_PSNR_FLOOR_DB` over its range, re-encoded with every bit-plane kept (only the 9/7
  rounding lost).
  Colour: RGB only, with the irreversible component transform, so the frame is YBR_ICT; the target
  is met on the transformed components, which leaves RGB about 3 dB under it.
- HTJ2K (.203, ISO_15444_15): OpenJPH (`codecs.htj2k`), irreversible 9/7 with quantisation step
  `htj2k.QSTEP` of the range the frame's samples span (about 51 dB over the span on test frames and
  CT alike), the precision as for .201. Colour: RGB only, with the irreversible component transform
  (YBR_ICT).
- JPEG XL (.112, ISO_18181_1): libjxl VarDCT, Butteraugli distance `_JPEGXL_DISTANCE` (1.0, libjxl's
  "visually lossless") times span / full range, at least `_JPEGXL_MIN_DISTANCE` (0.1),
  unsigned 8 or 16-bit, Bits Stored as the bit depth (the decoder clips there).
  Colour: RGB only (libjxl codes it through XYB; the decoder gives back RGB).

No row, and why (`_why_not`): JPEG XL JPEG Recompression (.111) re-packs an existing JPEG
bitstream losslessly, it has no pixel encoder; JPEG 2000 Part 2 (.92, .93) would need a
multi-component transform no installed encoder writes; video is not encoded a frame at a time;
native syntaxes are served as stored.

Colour goes into the lossless syntaxes without a colour transform, so the frame's Photometric
Interpretation (RGB) still holds. (A reversible MCT in JPEG 2000 would make it YBR_RCT.)
`encoded_photometric` says how the encoded frame must be described. Planar input is interleaved
first: every codec but deflate encodes interleaved samples, so the encoded frame has Planar
Configuration 0 whatever the input had; deflate keeps the input's.

Samples above Bits Stored are corrected before encoding, as pydicom corrects them after decoding
(zeroed when unsigned, sign-extended when signed; PS3.5 8.1.1), so a round trip gives back what
`decode_to_native` serves.

Errors: `FrameEncodeError` (a ValueError) names the syntax and the reason; the codec's own error is
its `__cause__`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import deflate
import imagecodecs
import jpeg_ls
import numpy as np
from rle.utils import encode_pixel_data as rle_encode_pixel_data

from app.imaging.codecs import htj2k
from app.imaging.codecs.decode import FrameFormat, correct_unused_bits
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

_DEFLATE_LEVEL = 6  # libdeflate's default: about zlib -9's ratio at several times its speed
_RLE_MAX_SEGMENTS = 15  # PS3.5 G.2: the RLE header has room for 15 segment offsets
_JPEG_LOSSLESS_PREDICTOR = 1  # Ra, the sample to the left: the only one .70 allows
_JPEG_QUALITY = 90  # libjpeg-turbo's 0-100 scale of the IJG tables: 43 dB on 8-bit test frames
_JPEGLS_NEAR = 2  # JPEG-LS near-lossless: no sample moves by more than this
_JPEG2000_PSNR_DB = 50  # rate-allocation target, against the range the frame's samples span
_JPEG2000_PSNR_FLOOR_DB = 44  # below this on decoding, re-encode with every bit-plane kept
_JPEGXL_DISTANCE = 1.0  # libjxl's Butteraugli distance; 1.0 is its "visually lossless" default
_JPEGXL_MIN_DISTANCE = 0.1  # the floor of the distance scaled to the span (about 49 dB on CT)
_COLOUR = frozenset({"RGB", "YBR_FULL"})  # three full-resolution samples a codec may take as is
_GREY = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"})
_INTENSITY = frozenset({"MONOCHROME1", "MONOCHROME2"})  # grey a lossy codec may approximate

# Encapsulated syntaxes with no row, and why (the generic reason covers the rest).
_NO_ENCODER: Mapping[str, str] = MappingProxyType(
    {
        "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression re-packs an existing JPEG bitstream; "
        "there is no encoder from pixels",
        "1.2.840.10008.1.2.4.92": "no installed encoder writes JPEG 2000 Part 2 multi-component transforms",
        "1.2.840.10008.1.2.4.93": "no installed encoder writes JPEG 2000 Part 2 multi-component transforms",
    }
)


class FrameEncodeError(ValueError):
    """A native frame that cannot be encoded into a syntax; the message names the syntax and why."""


@dataclass(frozen=True, slots=True)
class _Encoder:
    accepts: Callable[[FrameFormat], bool]
    encode: Callable[[np.ndarray, FrameFormat], bytes]  # the interleaved, corrected samples
    samples: bool = True  # False: `encode` takes the native bytes as given (deflate)
    method: str | None = None  # lossy: the Lossy Image Compression Method (PS3.3 C.7.6.1.1.5)
    colour: str | None = None  # the Photometric Interpretation colour frames come out in, if changed


def can_encode(transfer_syntax_uid: str, fmt: FrameFormat) -> bool:
    """Whether `encode_native_frame` can encode frames of this layout into this syntax."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    encoder = _ENCODERS.get(transfer_syntax_uid)
    return syntax is not None and encoder is not None and _plausible(fmt) and encoder.accepts(fmt)


def missing_encoder_reason(transfer_syntax_uid: str) -> str | None:
    """Why no frame of any layout can be encoded into this syntax; None where an encoder exists."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None:
        return "not a transfer syntax Fovea knows"
    return None if syntax.uid in _ENCODERS else _why_not(syntax)


def encodes_lossy(transfer_syntax_uid: str) -> bool:
    """Whether Fovea's encoder for this syntax loses information (False where it has none)."""
    return lossy_method(transfer_syntax_uid) is not None


def lossy_method(transfer_syntax_uid: str) -> str | None:
    """The Lossy Image Compression Method (0028,2114) term for a lossy encoder, else None."""
    encoder = _ENCODERS.get(transfer_syntax_uid)
    return None if encoder is None else encoder.method


def encoded_photometric(transfer_syntax_uid: str, fmt: FrameFormat) -> tuple[str, int]:
    """(Photometric Interpretation, Planar Configuration) describing the frame once encoded.

    Deflate and Encapsulated Uncompressed keep both as given; every other codec encodes interleaved
    samples (planar 0), and a lossy one may change the colour model (RGB to YBR_FULL_422 for JPEG
    baseline, to YBR_ICT for irreversible JPEG 2000 and HTJ2K). Raises `FrameEncodeError` where
    `can_encode` is False.
    """
    if not can_encode(transfer_syntax_uid, fmt):
        raise FrameEncodeError(f"{transfer_syntax_uid}: cannot encode {fmt.description}")
    encoder = _ENCODERS[transfer_syntax_uid]
    if not encoder.samples:
        return fmt.photometric_interpretation, fmt.planar_configuration
    if fmt.samples_per_pixel == 3 and encoder.colour is not None:
        return encoder.colour, 0
    return fmt.photometric_interpretation, 0


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
        raise FrameEncodeError(f"{syntax.label}: cannot hold {fmt.description}")
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


def _uncompressed(native: np.ndarray, fmt: FrameFormat) -> bytes:
    """Encapsulated Uncompressed (PS3.5 A.4.11): the native frame itself is the fragment."""
    return native.tobytes()


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
    pattern = _unsigned_pattern(samples, fmt)
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


def _jpegls(samples: np.ndarray, fmt: FrameFormat, near: int = 0) -> bytes:
    """CharLS with Bits Stored as the precision; signed samples as their unsigned bit pattern."""
    samples = _unsigned_pattern(samples, fmt)
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


def _jpeg2k_lossy(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Irreversible 9/7 at a PSNR target; colour through the irreversible component transform.

    imagecodecs' `level` is OpenJPEG's fixed-quality target in dB (None: no rate allocation, every
    bit-plane coded). The decode that checks the result costs about a fifth of the encode.
    """

    def encode(psnr: int | None) -> bytes:
        return bytes(
            imagecodecs.jpeg2k_encode(
                samples,
                level=psnr,
                codecformat=imagecodecs.JPEG2K.CODEC.J2K,
                reversible=False,
                mct=fmt.samples_per_pixel == 3,
                bitspersample=fmt.bits_stored,
                numthreads=1,
            )
        )

    # OpenJPEG measures PSNR against the Bits Stored range: raise the target by what it adds
    full_range, span = _ranges(samples, fmt)
    encoded = encode(math.ceil(_JPEG2000_PSNR_DB + 20 * math.log10(full_range / span)))
    decoded = imagecodecs.jpeg2k_decode(encoded, numthreads=1)
    if _psnr(samples, decoded, span) < _JPEG2000_PSNR_FLOOR_DB:
        encoded = encode(None)
    return encoded


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
    full_range, span = _ranges(samples, fmt)
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


# --- which layouts each encoder takes ---------------------------------------------------------------


def _any_layout(fmt: FrameFormat) -> bool:
    return True


def _rle_layout(fmt: FrameFormat) -> bool:
    segments = fmt.samples_per_pixel * fmt.bits_allocated // 8
    return fmt.bits_allocated in (8, 16, 32) and _full_resolution(fmt) and segments <= _RLE_MAX_SEGMENTS


def _jpeg_baseline_layout(fmt: FrameFormat) -> bool:
    """8 bits stored in 8, unsigned; MONOCHROME1/2, RGB or YBR_FULL."""
    depth = fmt.bits_allocated == 8 and fmt.bits_stored == 8 and not fmt.pixel_representation
    return depth and _intensities(fmt, colour=_COLOUR)


def _jpeg_extended_layout(fmt: FrameFormat) -> bool:
    """Greyscale, unsigned, 12 bits stored in 16 or 8 in 8 (the decoder clips at 4095 or 255)."""
    depth = (fmt.bits_allocated, fmt.bits_stored) in ((16, 12), (8, 8))
    return depth and fmt.samples_per_pixel == 1 and _intensities(fmt) and not fmt.pixel_representation


def _jpeg_lossless_layout(fmt: FrameFormat) -> bool:
    """2-16 bits stored in 8 or 16, either sign; colour: unsigned RGB (YCbCr would be subsampled)."""
    if not (_full_resolution(fmt) and fmt.bits_allocated in (8, 16) and fmt.bits_stored >= 2):
        return False
    if fmt.samples_per_pixel == 1:
        return True
    return fmt.photometric_interpretation == "RGB" and not fmt.pixel_representation


def _jpegls_layout(fmt: FrameFormat) -> bool:
    """2-16 bits stored in 8 or 16, either sign; colour unsigned: RGB 8 or 16 bits, YBR_FULL 8
    (the layouts PS3.5 8.2.3 lists)."""
    if not (_full_resolution(fmt) and fmt.bits_allocated in (8, 16) and fmt.bits_stored >= 2):
        return False
    if fmt.samples_per_pixel == 1:
        return True
    if fmt.pixel_representation:
        return False
    return fmt.photometric_interpretation == "RGB" or fmt.bits_allocated == 8


def _jpegls_near_layout(fmt: FrameFormat) -> bool:
    return _jpegls_layout(fmt) and _intensities(fmt, colour=_COLOUR)


def _jpeg2k_layout(fmt: FrameFormat) -> bool:
    return _full_resolution(fmt) and fmt.bits_allocated in (8, 16)


def _jpeg2k_lossy_layout(fmt: FrameFormat) -> bool:
    return _jpeg2k_layout(fmt) and _intensities(fmt)


def _htj2k_layout(fmt: FrameFormat) -> bool:
    return _jpeg2k_layout(fmt) and htj2k.holds_precision(fmt)


def _htj2k_lossy_layout(fmt: FrameFormat) -> bool:
    return _htj2k_layout(fmt) and _intensities(fmt)


def _jpegxl_layout(fmt: FrameFormat) -> bool:
    return _full_resolution(fmt) and fmt.bits_allocated in (8, 16) and not fmt.pixel_representation


def _jpegxl_lossy_layout(fmt: FrameFormat) -> bool:
    return _jpegxl_layout(fmt) and _intensities(fmt)


_ISO_10918_1 = "ISO_10918_1"  # JPEG
_ISO_14495_1 = "ISO_14495_1"  # JPEG-LS
_ISO_15444_1 = "ISO_15444_1"  # JPEG 2000
_ISO_15444_15 = "ISO_15444_15"  # HTJ2K
_ISO_18181_1 = "ISO_18181_1"  # JPEG XL

# Keyed by UID; native syntaxes, video and the encapsulated ones in `_NO_ENCODER` have no row.
_ENCODERS: Mapping[str, _Encoder] = MappingProxyType(
    {
        "1.2.840.10008.1.2.8.1": _Encoder(_any_layout, _deflate, samples=False),
        "1.2.840.10008.1.2.1.98": _Encoder(_any_layout, _uncompressed, samples=False),
        "1.2.840.10008.1.2.5": _Encoder(_rle_layout, _rle),
        "1.2.840.10008.1.2.4.50": _Encoder(
            _jpeg_baseline_layout, _jpeg_baseline, method=_ISO_10918_1, colour="YBR_FULL_422"
        ),
        "1.2.840.10008.1.2.4.51": _Encoder(_jpeg_extended_layout, _jpeg_extended, method=_ISO_10918_1),
        "1.2.840.10008.1.2.4.57": _Encoder(_jpeg_lossless_layout, _jpeg_lossless),
        "1.2.840.10008.1.2.4.70": _Encoder(_jpeg_lossless_layout, _jpeg_lossless),
        "1.2.840.10008.1.2.4.80": _Encoder(_jpegls_layout, _jpegls),
        "1.2.840.10008.1.2.4.81": _Encoder(_jpegls_near_layout, _jpegls_near, method=_ISO_14495_1),
        "1.2.840.10008.1.2.4.90": _Encoder(_jpeg2k_layout, _jpeg2k),
        "1.2.840.10008.1.2.4.91": _Encoder(
            _jpeg2k_lossy_layout, _jpeg2k_lossy, method=_ISO_15444_1, colour="YBR_ICT"
        ),
        "1.2.840.10008.1.2.4.201": _Encoder(_htj2k_layout, htj2k.encode_lossless),
        "1.2.840.10008.1.2.4.202": _Encoder(_htj2k_layout, htj2k.encode_lossless_rpcl),
        "1.2.840.10008.1.2.4.203": _Encoder(
            _htj2k_lossy_layout, htj2k.encode_lossy, method=_ISO_15444_15, colour="YBR_ICT"
        ),
        "1.2.840.10008.1.2.4.110": _Encoder(_jpegxl_layout, _jpegxl),
        "1.2.840.10008.1.2.4.112": _Encoder(_jpegxl_lossy_layout, _jpegxl_lossy, method=_ISO_18181_1),
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


def _intensities(fmt: FrameFormat, *, colour: frozenset[str] = frozenset({"RGB"})) -> bool:
    """Samples a lossy codec may approximate: MONOCHROME1/2 (not palette indices) or `colour`.

    RGB only by default: the irreversible transforms (ICT, XYB) assume RGB input.
    """
    allowed = _INTENSITY if fmt.samples_per_pixel == 1 else colour
    return fmt.photometric_interpretation in allowed


def _why_not(syntax: TransferSyntax) -> str:
    if not syntax.encapsulated:
        return "a native syntax: frames are served as stored, not encoded"
    if syntax.is_video:
        return "a video stream is not encoded one frame at a time"
    return _NO_ENCODER.get(syntax.uid, "no encoder is installed for it")


def _ranges(samples: np.ndarray, fmt: FrameFormat) -> tuple[float, float]:
    """The Bits Stored range and the range the samples span (at least 1), as floats."""
    full_range = float((1 << fmt.bits_stored) - 1)
    span = float(max(1, int(samples.max()) - int(samples.min())))
    return full_range, min(span, full_range)


def _psnr(original: np.ndarray, decoded: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB against `peak` (inf when identical)."""
    error = np.mean(np.square(decoded.astype(np.float64) - original.astype(np.float64)))
    if error == 0:
        return float("inf")
    return float(10 * np.log10(peak * peak / error))


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


def _unsigned_pattern(samples: np.ndarray, fmt: FrameFormat) -> np.ndarray:
    """Signed samples as their Bits Stored bit pattern, unsigned (JPEG-LS, JPEG lossless); else as is."""
    if not fmt.pixel_representation:
        return samples
    unsigned = samples.view(f"<u{samples.itemsize}")
    return unsigned & np.array((1 << fmt.bits_stored) - 1, unsigned.dtype)
