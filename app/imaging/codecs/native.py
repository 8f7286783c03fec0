"""The native family: uncompressed values and frames (PS3.5 A.4.11, the native syntaxes).

Little-endian values (PS3.18 8.7.3.3.1, F.2.7): octet-stream frames, bulk data values, inline binary
and rewritten instances are little-endian, whatever the stored syntax; only Explicit VR Big Endian
stores words in the other order (PS3.5 A.3), so its multi-byte samples and values are swapped on the
way out. One helper does it for all.

The registry entry (`FAMILY`): native syntaxes are served as stored and never decoded or encoded a
frame at a time. Encapsulated Uncompressed Explicit VR Little Endian (.1.98) puts each native frame
in a fragment: decoding unwraps it, encoding wraps it (padded to even length by `encode`), in any
layout, as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from app.imaging.codecs.family import CodecFamily, Decoder, Encoder
from app.imaging.codecs.frame import FrameDecodeError, FrameFormat, NativeFrame
from app.imaging.codecs.layouts import any_layout
from app.imaging.syntaxes import EncapsulatedUncompressedExplicitVRLittleEndian, TransferSyntax

# Bytes per word of the VRs whose values are byte-swapped between byte orders (OB and UN are byte
# streams; text is never swapped).
BINARY_WORD_BYTES: Mapping[str, int] = MappingProxyType({"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8})
NUMERIC_WORD_BYTES: Mapping[str, int] = MappingProxyType(
    {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "SV": 8, "UV": 8}
)


def swap_words(data: bytes, word_bytes: int) -> bytes:
    """`data` with the bytes of each whole `word_bytes`-byte word reversed; a trailing part kept as is."""
    if word_bytes <= 1:
        return data
    whole = len(data) // word_bytes * word_bytes
    words = np.frombuffer(data, dtype=f">u{word_bytes}", count=whole // word_bytes)
    return words.byteswap().tobytes() + data[whole:]


def little_endian_frame(frame: bytes, *, bits_allocated: int, big_endian: bool) -> bytes:
    """The frame's bytes in little-endian sample order (1- and 8-bit samples have no byte order)."""
    if not big_endian or bits_allocated not in (16, 32, 64):
        return frame
    return swap_words(frame, bits_allocated // 8)


def word_bytes(vr: str) -> int:
    """Bytes per swapped word of a value of `vr` (1: a byte stream or text, never swapped)."""
    return BINARY_WORD_BYTES.get(vr) or NUMERIC_WORD_BYTES.get(vr, 1)


def little_endian_value(value: bytes, vr: str, *, big_endian: bool) -> bytes:
    """A binary or numeric value (OW, OF, US, FD, ...) in little-endian byte order."""
    return swap_words(value, word_bytes(vr)) if big_endian else value


def _unwrap(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """The fragment is the native frame, maybe followed by a pad byte."""
    size = fmt.frame_bytes
    if len(frame) < size:
        raise FrameDecodeError(f"{syntax.label}: the fragment holds {len(frame)} bytes, the frame {size}")
    return NativeFrame(frame[:size], fmt.photometric_interpretation, fmt.planar_configuration)


def _wrap(native: np.ndarray, _fmt: FrameFormat) -> bytes:
    """The native frame itself is the fragment."""
    return native.tobytes()


FAMILY: CodecFamily = CodecFamily(
    name="native",
    decoders=(Decoder("the fragment itself", _unwrap),),
    encoders=MappingProxyType({EncapsulatedUncompressedExplicitVRLittleEndian: Encoder(any_layout, _wrap)}),
    keeps_stored_layout=True,
)
