"""pydicom's decoders as a `Decoder` entry: RLE, JPEG, JPEG-LS, JPEG 2000 and HTJ2K frames.

Why pydicom: its plugins are what makes a frame's output equal `pixel_array`, byte for byte. The
frame is wrapped as a one-frame Pixel Data value and decoded by pydicom's own plugin order, or by a
preferred plugin first.

Thread safety: `Decoder.as_array` keeps its per-call state in a new `DecodeRunner` and only reads
the decoder singletons. Warnings are not filtered: `warnings.catch_warnings` swaps the process-wide
filter list, which is not thread-safe; `validate=False` avoids the one warning routine frames
raise, and the rest flag a stored frame at odds with its attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import Decoder as PydicomDecoder
from pydicom.pixels.decoders.base import get_decoder

from app.imaging.codecs.family import Decoder
from app.imaging.codecs.frame import DecoderRefused, FrameFormat, NativeFrame, to_native
from app.imaging.syntaxes import TransferSyntax


def pydicom_decoder(
    *,
    preferred_plugin: str = "",
    decoded_as: Mapping[str, str] = MappingProxyType({}),
    as_rgb: frozenset[str] = frozenset(),
) -> Decoder:
    """pydicom's decoder for each syntax (or the one `decoded_as` names), `preferred_plugin` tried
    alone first; colour frames of the syntaxes in `as_rgb` are converted to RGB."""

    def lookup(uid: str) -> PydicomDecoder | None:
        try:
            decoder = get_decoder(decoded_as.get(uid, uid))
        except NotImplementedError:
            return None
        return decoder if decoder.is_available else None

    def decode(frame: bytes, syntax: TransferSyntax, fmt: FrameFormat) -> NativeFrame:
        decoder = lookup(syntax.uid)
        if decoder is None:
            raise DecoderRefused("no decoder is installed for it")
        value = encapsulate([frame], has_bot=False)
        try:
            pixels, properties = _as_array(
                decoder, value, fmt, preferred_plugin, as_rgb=decoder.UID in as_rgb
            )
        except (RuntimeError, ValueError) as exc:  # RuntimeError: every plugin failed, each one named
            raise DecoderRefused(str(exc)) from exc
        return to_native(pixels, syntax, fmt, str(properties["photometric_interpretation"]))

    return Decoder("pydicom", decode, available=lambda uid: lookup(uid) is not None)


def _as_array(
    decoder: PydicomDecoder, value: bytes, fmt: FrameFormat, preferred: str, *, as_rgb: bool
) -> tuple[np.ndarray, dict[str, str | int]]:
    """`Decoder.as_array` on frame 0 of `value`: the preferred plugin alone, then all in pydicom's order."""
    if preferred in decoder.available_plugins:
        try:
            return _as_array_with(decoder, value, fmt, preferred, as_rgb=as_rgb)
        except (RuntimeError, ValueError):
            pass  # the stream may still suit another plugin, as it would for pixel_array
    return _as_array_with(decoder, value, fmt, "", as_rgb=as_rgb)


def _as_array_with(
    decoder: PydicomDecoder, value: bytes, fmt: FrameFormat, plugin: str, *, as_rgb: bool
) -> tuple[np.ndarray, dict[str, str | int]]:
    """`Decoder.as_array` on frame 0 of `value`, by `plugin` alone or, for "", by each in turn.

    `validate=False`: its only check beyond the attributes is a warning when the compressed size
    happens to equal the native one.
    """
    options: dict[str, Any] = {
        "number_of_frames": 1,
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples_per_pixel,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": fmt.pixel_representation,
        "photometric_interpretation": fmt.photometric_interpretation,
        "planar_configuration": fmt.planar_configuration,
        "as_rgb": as_rgb,
    }
    return decoder.as_array(value, index=0, validate=False, decoding_plugin=plugin, **options)
