"""The HTJ2K family (PS3.5 8.2.15; ISO/IEC 15444-15): .201, .202 (RPCL) and .203 (lossy).

Decoding: pydicom's plugins (pylibjpeg-openjpeg holds the GIL: decodes run in a process).
Encoding: OpenJPH through imagecodecs (releases the GIL), any precision, as follows.

Why this module: imagecodecs' `htj2k_encode` takes no bit depth or sign; OpenJPH declares the array's
container (8 or 16 bits, the sign of its dtype) as the precision. A 12-bit CT frame declared as 16
bits decodes to the same numbers, but the codestream says the wrong thing and decoders that trust
SIZ (display windows, the precision check in `frame_header`) get it wrong. So each frame is encoded
in the container and its main header is then made to declare Bits Stored and Pixel Representation
(`declare_precision`). docs/conformance.md ("HTJ2K precision") compares this with the other routes.

Why the rewrite is exact (ISO/IEC 15444-1 Annex E, A.5.1, A.6.4):
- unsigned samples are raised by 2**(C-1) - 2**(P-1) before encoding (C the container's bits, P
  Bits Stored), so the encoder's DC level shift by 2**(C-1) leaves x - 2**(P-1): what an encoder
  of precision P codes. Signed samples need no shift. The coefficients are those of a P-bit encode.
- SIZ: Ssiz of every component becomes P - 1, with the sign bit from Pixel Representation.
- QCD: each subband's exponent eps_b drops by C - P and the guard bits G rise by as much. The
  magnitude bit-planes Mb = G + eps_b - 1, which the packet headers count against, do not change,
  and the step 2**(R_b - eps_b) (R_b = P + the subband's gain) stays what it was, so reversible
  streams stay bit-exact and irreversible ones dequantise to the same values.
- Nothing else in the codestream depends on the precision (CAP's bound B follows Mb), and every
  byte changed keeps its length, so SOT lengths and TLM stay true.
G is 3 bits (at most 7) and OpenJPH writes 1, so C - P is at most 6: Bits Stored 2-8 go into an 8-bit
container, 10-16 into a 16-bit one; 1 and 9 bits are refused (`holds_precision`).

Thread safety: OpenJPH fills its coding tables on first use without a lock (`_fill_openjph_tables`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import MappingProxyType

import imagecodecs
import numpy as np
from pydicom.uid import HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL

from app.imaging.codecs.family import CodecFamily, Encoder
from app.imaging.codecs.frame import FrameFormat
from app.imaging.codecs.j2k_header import j2k_header
from app.imaging.codecs.jpeg2000 import CODESTREAM_START, jpeg2k_layout
from app.imaging.codecs.layouts import intensities
from app.imaging.codecs.pydicom_decoding import pydicom_decoder

QSTEP = 0.006  # lossy base quantisation step, a fraction of the range the frame's samples span
_DEFAULT_DECOMPOSITIONS = 5  # OpenJPH's default, kept unless a frame needs more
_RPCL_LOWEST_RESOLUTION = 64  # PS3.5 8.2.15: the lowest resolution at most 64 wide and high
_OPENJPH_GUARD_BITS = 1  # what OpenJPH writes in QCD
_MAX_GUARD_BITS = 7  # Sqcd holds G in 3 bits (ISO/IEC 15444-1 A.6.4)
_MAX_WIDENING = _MAX_GUARD_BITS - _OPENJPH_GUARD_BITS

_SOT = 0xFF90
_SOD = 0xFF93
_SIZ = 0xFF51
_QCD = 0xFF5C
_QCC = 0xFF5D
_SIZ_FIXED = 38  # Lsiz through Csiz, then 3 bytes per component
_QCD_NO_QUANTISATION = 0  # Sqcd style: one byte per subband, exponent in bits 3-7
_QCD_SCALAR = (1, 2)  # derived and expounded: two bytes per subband, exponent in bits 11-15
_ISO_15444_15 = "ISO_15444_15"  # the Lossy Image Compression Method


class PrecisionError(ValueError):
    """A codestream whose main header cannot be made to declare the asked precision."""


def holds_precision(fmt: FrameFormat) -> bool:
    """Whether Bits Stored fits a container the rewrite can narrow to it (2-8 or 10-16 bits)."""
    if fmt.bits_allocated not in (8, 16):
        return False
    container = _container_bits(fmt)
    return fmt.bits_stored >= 2 and container - fmt.bits_stored <= _MAX_WIDENING


def encode_lossless(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """.201: a reversible HT codestream, RPCL (OpenJPH's progression), no colour transform."""
    return _encode(
        samples, fmt, lambda data: imagecodecs.htj2k_encode(data, level=0, reversible=True, rgb=False)
    )


def encode_lossless_rpcl(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """.202: as .201, plus what PS3.5 8.2.15 asks of it: TLM, tile-parts split at resolutions, and
    enough decompositions to bring the lowest resolution to 64 samples or fewer each way."""
    larger = max(fmt.rows, fmt.columns)
    decompositions = _DEFAULT_DECOMPOSITIONS
    while -(-larger >> decompositions) > _RPCL_LOWEST_RESOLUTION:  # ceil(larger / 2**d)
        decompositions += 1
    return _encode(
        samples,
        fmt,
        lambda data: imagecodecs.htj2k_encode(
            data,
            level=0,
            reversible=True,
            rgb=False,
            resolutions=decompositions,  # imagecodecs passes it on as the decomposition count
            tlm=True,
            tilepart=imagecodecs.HTJ2K.TILEPART.RESOLUTIONS,
        ),
    )


def encode_lossy(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """.203: irreversible 9/7, quantised; colour through the irreversible component transform.

    OpenJPH's step is a fraction of the container's full range, so `QSTEP` of the span the frame's
    samples cover is scaled by span / (2**C - 1); the rewrite keeps the step in sample units.
    """
    span = max(1, int(samples.max()) - int(samples.min()))
    step = QSTEP * span / ((1 << _container_bits(fmt)) - 1)
    colour = fmt.samples_per_pixel == 3
    return _encode(
        samples, fmt, lambda data: imagecodecs.htj2k_encode(data, level=step, reversible=False, rgb=colour)
    )


def _encode(
    samples: np.ndarray, fmt: FrameFormat, encode: Callable[[np.ndarray], bytes | bytearray]
) -> bytes:
    """`encode` on the samples in their container, then the header narrowed to Bits Stored."""
    _fill_openjph_tables()
    encoded = encode(_in_container(samples, fmt, _container_bits(fmt)))
    return declare_precision(bytes(encoded), fmt.bits_stored, signed=bool(fmt.pixel_representation))


def _container_bits(fmt: FrameFormat) -> int:
    return 8 if fmt.bits_stored <= 8 else 16


def _in_container(samples: np.ndarray, fmt: FrameFormat, container: int) -> np.ndarray:
    """The samples in the container's dtype, unsigned ones raised so its level shift is P-bit's."""
    kind = "i" if fmt.pixel_representation else "u"
    contained = samples.astype(f"{kind}{container // 8}", copy=False)  # the values fit: corrected
    raise_by = 0 if fmt.pixel_representation else (1 << (container - 1)) - (1 << (fmt.bits_stored - 1))
    return contained + contained.dtype.type(raise_by) if raise_by else contained  # no overflow: < 2**C


def declare_precision(codestream: bytes, precision: int, *, signed: bool) -> bytes:
    """The codestream with every component declared `precision` bits, `signed` or not (see above).

    Raises `PrecisionError` where the header is not what OpenJPH writes (a sign other than asked, a
    component narrower than `precision`, QCC, quantisation in a tile-part header, too few guard bits
    left).
    """
    out = bytearray(codestream)
    widening: int | None = None
    position = 2  # after SOC
    while True:
        marker, length = _u16(out, position), _u16(out, position + 2)
        if marker == _SOT:
            break
        if marker == _SIZ:
            widening = _narrow_siz(out, position, precision, signed=signed)
        elif marker == _QCD:
            if widening is None:
                raise PrecisionError("QCD before SIZ")
            _narrow_qcd(out, position, length, widening)
        elif marker == _QCC:
            raise PrecisionError("a component quantisation segment (QCC), which OpenJPH does not write")
        position += 2 + length
    _check_tile_part_headers(out, position)
    return bytes(out)


def _narrow_siz(out: bytearray, position: int, precision: int, *, signed: bool) -> int:
    """Set every component's Ssiz; return by how many bits the container was wider."""
    components = _u16(out, position + 2 + _SIZ_FIXED - 2)
    widenings = set()
    for index in range(components):
        at = position + 2 + _SIZ_FIXED + 3 * index
        container, container_signed = (out[at] & 0x7F) + 1, bool(out[at] & 0x80)
        if container_signed != signed or container < precision:
            raise PrecisionError(f"component {index} is {container} bits, signed {container_signed}")
        widenings.add(container - precision)
        out[at] = (0x80 if signed else 0) | (precision - 1)
    if len(widenings) != 1:
        raise PrecisionError("the components have different precisions")
    return widenings.pop()


def _narrow_qcd(out: bytearray, position: int, length: int, widening: int) -> None:
    """Move `widening` bits from every subband exponent to the guard bits (Mb unchanged)."""
    sqcd = out[position + 4]
    guard, style = sqcd >> 5, sqcd & 0x1F
    if guard + widening > _MAX_GUARD_BITS:
        raise PrecisionError(f"{guard} guard bits cannot grow by {widening}")
    out[position + 4] = ((guard + widening) << 5) | style
    values = range(position + 5, position + 2 + length)
    if style == _QCD_NO_QUANTISATION:
        for at in values:
            out[at] = _lowered(out[at] >> 3, widening) << 3 | (out[at] & 0x07)
    elif style in _QCD_SCALAR:
        for at in values[::2]:
            value = _u16(out, at)
            out[at : at + 2] = (_lowered(value >> 11, widening) << 11 | (value & 0x7FF)).to_bytes(2, "big")
    else:
        raise PrecisionError(f"QCD quantisation style {style}")


def _lowered(exponent: int, widening: int) -> int:
    if exponent < widening:
        raise PrecisionError(f"a subband exponent of {exponent} cannot drop by {widening}")
    return exponent - widening


def _check_tile_part_headers(out: bytearray, position: int) -> None:
    """No tile-part header may carry its own quantisation: it would still be the container's."""
    while position + 12 <= len(out) and _u16(out, position) == _SOT:
        tile_part_length = int.from_bytes(out[position + 6 : position + 10], "big")
        at = position + 12
        while at + 4 <= len(out) and _u16(out, at) != _SOD:
            if _u16(out, at) in (_QCD, _QCC):
                raise PrecisionError("quantisation in a tile-part header")
            at += 2 + _u16(out, at + 2)
        if tile_part_length == 0:  # the last tile-part runs to EOC
            break
        position += tile_part_length


def _u16(data: bytearray, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")


_OPENJPH_LOCK = threading.Lock()
_openjph_tables_filled = False


def _fill_openjph_tables() -> None:
    """Make sure OpenJPH's coding tables exist before any HTJ2K encode.

    OpenJPH fills its VLC tables on the first encode without a lock; two threads encoding first at
    once can corrupt them and write undecodable codestreams for the life of the process (seen here:
    1 process in 60 under load, and a storage-policy conversion refused by its own check). One small
    encode under a lock, before any other, fills them.
    """
    global _openjph_tables_filled
    if not _openjph_tables_filled:
        with _OPENJPH_LOCK:
            if not _openjph_tables_filled:
                ramp = np.arange(64).reshape(8, 8) * 3  # not flat: zero code-blocks skip the coder
                for dtype in (np.uint8, np.uint16):
                    imagecodecs.htj2k_encode(ramp.astype(dtype), level=0, reversible=True)
                imagecodecs.htj2k_encode(ramp.astype(np.uint16), level=0.01, reversible=False)
                _openjph_tables_filled = True


def _htj2k_layout(fmt: FrameFormat) -> bool:
    return jpeg2k_layout(fmt) and holds_precision(fmt)


def _htj2k_lossy_layout(fmt: FrameFormat) -> bool:
    return _htj2k_layout(fmt) and intensities(fmt)


FAMILY: CodecFamily = CodecFamily(
    name="htj2k",
    decoders=(pydicom_decoder(),),
    encoders=MappingProxyType(
        {
            HTJ2KLossless: Encoder(_htj2k_layout, encode_lossless),
            HTJ2KLosslessRPCL: Encoder(_htj2k_layout, encode_lossless_rpcl),
            HTJ2K: Encoder(_htj2k_lossy_layout, encode_lossy, method=_ISO_15444_15, colour="YBR_ICT"),
        }
    ),
    decode_in_process=True,
    start_markers=(CODESTREAM_START,),
    header_reader=j2k_header,
)
