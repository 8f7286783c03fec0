"""Content codings for responses (RFC 9110 8.4, 12.5.3): gzip, and br for JSON.

Why selective: DICOM JSON and uncompressed pixel frames shrink well; JPEG, JPEG 2000 and other
compressed frames do not, so compressing them would only burn CPU. Frames use the fastest gzip level
(libdeflate) because a viewer waits for each one; JSON gets a stronger level, and Brotli when the
client accepts it. Bodies below `MIN_COMPRESSED_BYTES` go out as they are.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from enum import StrEnum

import brotli
import deflate

MIN_COMPRESSED_BYTES = 1024
JSON_GZIP_LEVEL = 6
JSON_BROTLI_QUALITY = 5
FRAME_GZIP_LEVEL = 1


class Coding(StrEnum):
    GZIP = "gzip"
    BROTLI = "br"


def choose_coding(accept_encoding: str | None, *, brotli_allowed: bool) -> Coding | None:
    """The coding to use for a compressible body: br (when allowed) or gzip if acceptable, else None."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for entry in accept_encoding.split(","):
        name, _, params = entry.partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            weights[name] = q
    wildcard = weights.get("*", 0.0)
    candidates = [Coding.BROTLI, Coding.GZIP] if brotli_allowed else [Coding.GZIP]
    acceptable = [(weights.get(c.value, wildcard), c) for c in candidates]
    acceptable = [(q, c) for q, c in acceptable if q > 0]
    if not acceptable:
        return None
    best = max(q for q, _ in acceptable)
    return next(c for q, c in acceptable if q == best)


def compress_json(body: bytes, coding: Coding) -> bytes:
    if coding is Coding.BROTLI:
        return bytes(brotli.compress(body, quality=JSON_BROTLI_QUALITY, mode=brotli.MODE_TEXT))
    return bytes(deflate.gzip_compress(body, JSON_GZIP_LEVEL))


def compress_frame(body: bytes) -> bytes:
    return bytes(deflate.gzip_compress(body, FRAME_GZIP_LEVEL))


def iter_gzip(chunks: Iterable[bytes], level: int = FRAME_GZIP_LEVEL) -> Iterator[bytes]:
    """One gzip member over a stream of chunks (multipart bodies are written part by part)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()
