"""The codec registry: one entry per codec family, keyed by `TransferSyntax.codec`.

Why: decoding, encoding, the codec pool's placement, the frame-start scan and the frame-header check
all ask this registry, so a family's facts are written once, in its own module: "where is JPEG-LS
encoded?" is `codecs/jpegls.py`. docs/codecs.md has the families in brief.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from app.imaging.codecs import deflate, htj2k, jpeg, jpeg2000, jpegls, jpegxl, native, rle, video
from app.imaging.codecs.family import CodecFamily
from app.imaging.syntaxes import TransferSyntax

CODEC_FAMILIES: Mapping[str, CodecFamily] = MappingProxyType(
    {
        family.name: family
        for family in (
            native.FAMILY,
            deflate.FAMILY,
            rle.FAMILY,
            jpeg.FAMILY,
            jpegls.FAMILY,
            jpeg2000.FAMILY,
            htj2k.FAMILY,
            jpegxl.FAMILY,
            video.FAMILY,
        )
    }
)


def family_of(syntax: TransferSyntax) -> CodecFamily:
    """The registry entry for the syntax's codec family (every known syntax has one)."""
    return CODEC_FAMILIES[syntax.codec]
