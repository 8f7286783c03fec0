"""The "native" family: uncompressed frames (PS3.5 A.4.11 and the native syntaxes).

Native syntaxes are served as stored and never decoded or encoded a frame at a time. Encapsulated
Uncompressed Explicit VR Little Endian (.1.98) puts each native frame in a fragment: decoding unwraps
it, encoding wraps it (padded to even length by `encode`), in any layout, as given.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from app.imaging.codecs.family import CodecFamily, Decoder, Encoder
from app.imaging.codecs.frame import FrameDecodeError, FrameFormat, NativeFrame
from app.imaging.codecs.layouts import any_layout
from app.imaging.syntaxes import EncapsulatedUncompressedExplicitVRLittleEndian, TransferSyntax


def _unwrap(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """The fragment is the native frame, maybe followed by a pad byte."""
    size = fmt.frame_bytes
    if len(frame) < size:
        raise FrameDecodeError(f"{syntax.label}: the fragment holds {len(frame)} bytes, the frame {size}")
    return NativeFrame(frame[:size], fmt.photometric_interpretation, fmt.planar_configuration)


def _wrap(native: np.ndarray, fmt: FrameFormat) -> bytes:
    """The native frame itself is the fragment."""
    return native.tobytes()


FAMILY: CodecFamily = CodecFamily(
    name="native",
    decoders=(Decoder("the fragment itself", _unwrap),),
    encoders=MappingProxyType({EncapsulatedUncompressedExplicitVRLittleEndian: Encoder(any_layout, _wrap)}),
    keeps_stored_layout=True,
)
