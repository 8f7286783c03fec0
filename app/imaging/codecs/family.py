"""The shape of one codec family's registry entry: every fact about a family, in one row.

Why: which library decodes a syntax, which layouts its encoder holds, whether the work is worth a
process, how a frame starts and how its header is read were once spread over ten tables; now each
family module (`codecs.jpeg`, `codecs.jpegls`, ...) states its `FAMILY`, and `codecs.registry`
collects them. docs/codecs.md says why each family is what it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from app.imaging.codecs.frame import FrameFormat, NativeFrame
from app.imaging.codecs.stream_header import CodestreamHeader
from app.imaging.syntaxes import TransferSyntax

HeaderReader = Callable[[bytes, int], CodestreamHeader]


def always(_uid: str) -> bool:
    return True


def any_frame(_fmt: FrameFormat) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Decoder:
    """One way to decode a family's frames; a family lists them in the order they are tried."""

    name: str  # the library, for messages ("libjpeg-turbo (imagecodecs)")
    # Raises `DecoderRefused` to hand the frame to the next decoder, `FrameDecodeError` to stop.
    decode: Callable[[bytes, TransferSyntax, FrameFormat], NativeFrame]
    available: Callable[[str], bool] = always  # installed for this syntax UID
    accepts: Callable[[FrameFormat], bool] = any_frame  # frames it is tried on at all


@dataclass(frozen=True, slots=True)
class Encoder:
    """The encoder of one syntax: the layouts it holds and how it writes a frame."""

    accepts: Callable[[FrameFormat], bool]
    # The interleaved, corrected samples; for a family that keeps the stored layout, the native bytes.
    encode: Callable[[np.ndarray, FrameFormat], bytes]
    method: str | None = None  # lossy: the Lossy Image Compression Method (PS3.3 C.7.6.1.1.5)
    colour: str | None = None  # the Photometric Interpretation colour frames come out in, if changed


@dataclass(frozen=True, slots=True)
class CodecFamily:
    """Everything Fovea knows about one codec family (`TransferSyntax.codec`)."""

    name: str  # the `TransferSyntax.codec` it serves
    decoders: tuple[Decoder, ...] = ()  # in preference order; none: frames are not decoded one by one
    encoders: Mapping[str, Encoder] = field(default_factory=lambda: MappingProxyType({}))  # by UID
    no_encoder: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # UID: why none
    # Whether a decode or an encode runs in a worker process: the binding holds the GIL long enough
    # for the hand-off (1 to 2 ms) to pay. False where it releases the GIL, or holds it briefly.
    decode_in_process: bool = False
    encode_in_process: bool = False
    start_markers: tuple[bytes, ...] = ()  # first bytes of a frame's codestream (PS3.5 A.4)
    header_reader: HeaderReader | None = None  # for the size checks before every decode
    # No image codec: frames decode to, and are encoded from, the stored bytes' layout as is (4:2:2
    # and planar included), so the Photometric Interpretation stays; image codecs interleave.
    keeps_stored_layout: bool = False
    # Syntaxes whose colour frames the decoders give back as RGB (lossy JPEG's YCbCr, undone).
    ycbcr_decoded_as_rgb: frozenset[str] = frozenset()
