"""The Deflated Image Frame Compression family (1.2.840.10008.1.2.8.1, PS3.5 8.2.16, A.4.13).

Why: each frame is a raw RFC 1951 stream (no zlib header or Adler-32 trailer) of the native frame,
so inflating it is the whole decode. libdeflate is the fast path, as the frame's size is known in
advance; zlib is the slow path that says why a stream is bad, and copes with one that inflates to
more than the frame needs (the excess is dropped, as trailing padding is for native values).

Encoding is libdeflate, raw RFC 1951, of the native bytes as given, in any layout (so Photometric
Interpretation and Planar Configuration stay as stored); libdeflate releases the GIL.
"""

from __future__ import annotations

import zlib
from types import MappingProxyType

import deflate
import numpy as np

from app.imaging.codecs.family import CodecFamily, Decoder, Encoder
from app.imaging.codecs.frame import DecoderRefused, FrameFormat, NativeFrame
from app.imaging.codecs.layouts import any_layout
from app.imaging.syntaxes import DeflatedImageFrameCompression, TransferSyntax

_RAW_DEFLATE = -15  # zlib wbits: no header, no trailer, 32 KiB window
_DEFLATE_LEVEL = 6  # libdeflate's default: about zlib -9's ratio at several times its speed


class InflateError(ValueError):
    """The stream is not raw deflate, or holds fewer bytes than the frame needs."""


def inflate_frame(data: bytes, size: int) -> bytes:
    """The first `size` bytes inflated from the raw deflate stream `data`.

    Bytes after the stream's final block (the NUL that pads an odd-length fragment) are ignored.
    """
    inflated: bytes | bytearray
    try:
        # One byte of room: a pad byte deflated along with the frame is not an error.
        inflated = deflate.deflate_decompress(data, size + 1)
    except deflate.DeflateError:
        inflated = _inflate_with_zlib(data, size)
    if len(inflated) < size:
        raise InflateError(f"the stream inflates to {len(inflated)} bytes but the frame needs {size}")
    return bytes(memoryview(inflated)[:size])


def _inflate_with_zlib(data: bytes, size: int) -> bytes:
    """At most `size` bytes inflated by zlib, which names what is wrong with a bad stream."""
    inflater = zlib.decompressobj(wbits=_RAW_DEFLATE)
    try:
        inflated = inflater.decompress(data, size)
    except zlib.error as exc:
        raise InflateError(f"not a raw deflate stream ({exc})") from exc
    if len(inflated) < size and not inflater.eof:
        raise InflateError(
            f"the stream is truncated: {len(data)} bytes inflate to {len(inflated)} of the "
            f"{size} the frame needs, and its final block is missing"
        )
    return inflated


def _inflate(frame: bytes, _syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    try:
        data = inflate_frame(frame, fmt.frame_bytes)
    except InflateError as exc:
        raise DecoderRefused(str(exc)) from exc
    return NativeFrame(data, fmt.photometric_interpretation, fmt.planar_configuration)


def _deflate(native: np.ndarray, _fmt: FrameFormat) -> bytes:
    """Raw RFC 1951 (libdeflate writes neither zlib header nor Adler-32), PS3.5 A.4.13."""
    return bytes(deflate.deflate_compress(native.tobytes(), _DEFLATE_LEVEL))


FAMILY: CodecFamily = CodecFamily(
    name="deflate",
    decoders=(Decoder("libdeflate", _inflate),),
    encoders=MappingProxyType({DeflatedImageFrameCompression: Encoder(any_layout, _deflate)}),
    keeps_stored_layout=True,  # the native frame, deflated: its layout is the stored one
)
