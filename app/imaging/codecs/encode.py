"""Encode one native frame into a compressed transfer syntax, one fragment's worth of bytes.

Why: per-frame transcoding (PS3.18 8.7.3.5: a client may ask for a frame in a syntax other than
the stored one), so a frame must be encoded on its own, from the bytes Fovea serves as
`application/octet-stream`: little-endian samples of Bits Allocated bits, colour interleaved (or
planar when Planar Configuration is 1), Bits Allocated 1 bit-packed LSB first.

Who encodes what, and which layouts each encoder holds, is each family's `encoders`
(`codecs.registry`); docs/codecs.md says why. Every frame written is one `decode_to_native` reads
back (bit for bit where the syntax is lossless). Samples above Bits Stored are corrected before
encoding, as pydicom corrects them after decoding (PS3.5 8.1.1), so a round trip gives back what
`decode_to_native` serves.

Errors: `FrameEncodeError` (a ValueError) names the syntax and the reason; the codec's own error is
its `__cause__`.
"""

from __future__ import annotations

import numpy as np

from app.imaging.codecs.family import CodecFamily, Encoder
from app.imaging.codecs.frame import FrameEncodeError, FrameFormat, samples_of
from app.imaging.codecs.layouts import plausible
from app.imaging.codecs.registry import family_of
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

__all__ = [
    "FrameEncodeError",
    "can_encode",
    "encode_native_frame",
    "encoded_photometric",
    "encodes_lossy",
    "lossy_method",
    "missing_encoder_reason",
]


def can_encode(transfer_syntax_uid: str, fmt: FrameFormat) -> bool:
    """Whether `encode_native_frame` can encode frames of this layout into this syntax."""
    found = _encoder_for(transfer_syntax_uid)
    return found is not None and plausible(fmt) and found[1].accepts(fmt)


def missing_encoder_reason(transfer_syntax_uid: str) -> str | None:
    """Why no frame of any layout can be encoded into this syntax; None where an encoder exists."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None:
        return "not a transfer syntax Fovea knows"
    return None if _encoder_for(transfer_syntax_uid) is not None else _why_not(syntax)


def encodes_lossy(transfer_syntax_uid: str) -> bool:
    """Whether Fovea's encoder for this syntax loses information (False where it has none)."""
    return lossy_method(transfer_syntax_uid) is not None


def lossy_method(transfer_syntax_uid: str) -> str | None:
    """The Lossy Image Compression Method (0028,2114) term for a lossy encoder, else None."""
    found = _encoder_for(transfer_syntax_uid)
    return None if found is None else found[1].method


def encoded_photometric(transfer_syntax_uid: str, fmt: FrameFormat) -> tuple[str, int]:
    """(Photometric Interpretation, Planar Configuration) describing the frame once encoded.

    A family that keeps the stored layout (deflate, Encapsulated Uncompressed) keeps both as given;
    every other codec encodes interleaved samples (planar 0), and a lossy one may change the colour
    model (RGB to YBR_FULL_422 for JPEG baseline, to YBR_ICT for irreversible JPEG 2000 and HTJ2K).
    Raises `FrameEncodeError` where `can_encode` is False.
    """
    found = _encoder_for(transfer_syntax_uid)
    if found is None or not can_encode(transfer_syntax_uid, fmt):
        raise FrameEncodeError(f"{transfer_syntax_uid}: cannot encode {fmt.description}")
    family, encoder = found
    if family.keeps_stored_layout:
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
    found = _encoder_for(syntax.uid)
    if found is None:
        raise FrameEncodeError(f"{syntax.label}: {_why_not(syntax)}")
    family, encoder = found
    if not (plausible(fmt) and encoder.accepts(fmt)):
        raise FrameEncodeError(f"{syntax.label}: cannot hold {fmt.description}")
    size = fmt.frame_bytes
    if len(native) != size:
        raise FrameEncodeError(f"{syntax.label}: the native frame holds {len(native)} bytes, {size} expected")
    try:
        if family.keeps_stored_layout:  # the native bytes as given, layout and all
            encoded = encoder.encode(np.frombuffer(native, np.uint8), fmt)
        else:
            encoded = encoder.encode(samples_of(native, fmt), fmt)
    except (RuntimeError, ValueError) as exc:  # the codecs' own errors derive from these
        raise FrameEncodeError(f"{syntax.label}: {exc}") from exc
    return encoded + b"\x00" if len(encoded) % 2 else encoded


def _encoder_for(transfer_syntax_uid: str) -> tuple[CodecFamily, Encoder] | None:
    """The syntax's family and its encoder; None for an unknown syntax or one with no encoder."""
    syntax = find_transfer_syntax(transfer_syntax_uid)
    if syntax is None:
        return None
    family = family_of(syntax)
    encoder = family.encoders.get(syntax.uid)
    return None if encoder is None else (family, encoder)


def _why_not(syntax: TransferSyntax) -> str:
    if not syntax.encapsulated:
        return "a native syntax: frames are served as stored, not encoded"
    if syntax.is_video:
        return "a video stream is not encoded one frame at a time"
    return family_of(syntax).no_encoder.get(syntax.uid, "no encoder is installed for it")
