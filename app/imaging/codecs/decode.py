"""Decode one stored frame to native little-endian pixels, as `application/octet-stream` sends them.

Why: PS3.18 8.7.3.3.1 lets a client ask for any frame as uncompressed little-endian bytes, so a
frame stored compressed must be decoded, one frame at a time, without reading the rest of the
instance. The output is what pydicom's `pixel_array` gives for that frame, byte for byte: samples
of Bits Allocated bits (signed when Pixel Representation is 1, unused high bits corrected the way
pydicom corrects them), colour samples interleaved (Planar Configuration 0), YBR_FULL and
YBR_FULL_422 JPEG converted to RGB; Bits Allocated 1 is bit-packed, LSB first, from bit 0.

Who decodes what is each family's `decoders`, tried in order (`codecs.registry`, docs/codecs.md).
Native syntaxes are served as stored and a video stream has no frames to decode one by one: neither
is decoded here.

Before any decoder runs, the frame's codestream header is compared with the data set
(`frame_header`): a header that cannot be read, or that claims another size, component count or a
precision above Bits Allocated, is refused, since the decoder would size its work by it.

Errors: `FrameDecodeError` (a ValueError) names the syntax and the reason; the codec's own error is
its `__cause__`.
"""

from __future__ import annotations

from app.imaging.codecs.family import CodecFamily
from app.imaging.codecs.frame import (
    DecoderRefused,
    FrameDecodeError,
    FrameFormat,
    NativeFrame,
    correct_unused_bits,
)
from app.imaging.codecs.frame_header import FrameHeaderError, check_frame_header
from app.imaging.codecs.registry import family_of
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

__all__ = [
    "FrameDecodeError",
    "FrameFormat",
    "NativeFrame",
    "can_decode",
    "correct_unused_bits",
    "decode_to_native",
]


def can_decode(transfer_syntax_uid: str) -> bool:
    """Whether `decode_to_native` can decode frames of this syntax with the libraries installed."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    return syntax is not None and _decoding_family(syntax) is not None


def decode_to_native(frame: bytes, transfer_syntax_uid: str, fmt: FrameFormat) -> NativeFrame:
    """Decode `frame`, one frame's bytes as stored (fragments joined, pad byte included)."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None:
        raise FrameDecodeError(f"{transfer_syntax_uid}: not a transfer syntax Fovea knows")
    family = _decoding_family(syntax)
    if family is None:
        raise FrameDecodeError(f"{syntax.label}: {_why_not(syntax)}")
    try:  # the decoder sizes its work by this header: it must say what the data set says
        check_frame_header(syntax.codec, frame, len(frame), fmt, what="codestream header")
    except FrameHeaderError as exc:
        raise FrameDecodeError(f"{syntax.label}: {exc}") from exc
    return _decode(family, frame, syntax, fmt)


def _decode(family: CodecFamily, frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
    """The first of the family's decoders that decodes the frame; else every refusal, the first
    bare, the later ones named by their library."""
    reasons: list[str] = []
    cause: BaseException | None = None
    for decoder in family.decoders:
        if not (decoder.available(syntax.uid) and decoder.accepts(fmt)):
            continue
        try:
            return decoder.decode(frame, syntax, fmt)
        except DecoderRefused as refusal:
            if refusal.reason is not None:
                reasons.append(f"{decoder.name}: {refusal.reason}" if reasons else refusal.reason)
                cause = refusal.__cause__
    if not reasons:
        raise FrameDecodeError(f"{syntax.label}: {_why_not(syntax)}")
    raise FrameDecodeError(f"{syntax.label}: " + "\n  ".join(reasons)) from cause


def _decoding_family(syntax: TransferSyntax) -> CodecFamily | None:
    """The syntax's family when one of its decoders is installed; native frames are served as stored."""
    if not syntax.encapsulated:
        return None
    family = family_of(syntax)
    return family if any(decoder.available(syntax.uid) for decoder in family.decoders) else None


def _why_not(syntax: TransferSyntax) -> str:
    if not syntax.encapsulated:
        return "native frames are served as stored, not decoded"
    if syntax.is_video:
        return "a video stream has no separate frames to decode"
    return "no decoder is installed for it"
