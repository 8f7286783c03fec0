"""Inflate one Deflated Image Frame Compression frame (1.2.840.10008.1.2.8.1, PS3.5 8.2.16, A.4.13).

Why: each frame is a raw RFC 1951 stream (no zlib header or Adler-32 trailer) of the native frame,
so inflating it is the whole decode. libdeflate is the fast path, as the frame's size is known in
advance; zlib is the slow path that says why a stream is bad, and copes with one that inflates to
more than the frame needs (the excess is dropped, as trailing padding is for native values).
"""

from __future__ import annotations

import zlib

import deflate

_RAW_DEFLATE = -15  # zlib wbits: no header, no trailer, 32 KiB window


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
