"""The transfer-syntax registry: one row of facts per syntax Fovea knows (PS3.5 Section 10, Annex A).

Why: every layer asks the same questions (is it encapsulated? lossless? one fragment per frame? a video
stream?) and must get the same answers, so the answers live here, once, as data.

pydicom 3.0.2 predates Deflated Image Frame Compression (1.2.840.10008.1.2.8.1, PS3.5 A.4.13) and the
JPEG XL syntaxes (1.2.840.10008.1.2.4.110-112); `register_with_pydicom` teaches its UID dictionary about
them so that `dcmread` treats them as encapsulated explicit-VR little-endian syntaxes. It is the only place
that touches pydicom's dictionary and runs when this module is imported (idempotent, adds entries only).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydicom._uid_dict import UID_dictionary
from pydicom.uid import UID

# Syntax UIDs pydicom.uid 3.0.2 has no names for, named as pydicom would name them.
EncapsulatedUncompressedExplicitVRLittleEndian = UID("1.2.840.10008.1.2.1.98")
DeflatedImageFrameCompression = UID("1.2.840.10008.1.2.8.1")
JPEGXLLossless = UID("1.2.840.10008.1.2.4.110")
JPEGXLJPEGRecompression = UID("1.2.840.10008.1.2.4.111")
JPEGXL = UID("1.2.840.10008.1.2.4.112")


class FrameLayout(StrEnum):
    """How the frames of a syntax sit inside the Pixel Data value."""

    NATIVE = "native"  # one contiguous value, frames back to back (bit-packed for Bits Allocated 1)
    ONE_FRAGMENT_PER_FRAME = "one"  # encapsulated; PS3.5 requires exactly one fragment per frame
    FRAGMENTS = "fragments"  # encapsulated; a frame may span several fragments
    STREAM = "stream"  # encapsulated video: one stream holds every frame


@dataclass(frozen=True, slots=True)
class TransferSyntax:
    uid: str
    keyword: str
    name: str
    lossless: bool | None  # None: the syntax allows either (the stream decides; treat as lossy)
    frames: FrameLayout
    codec: str  # codec family: its entry in imaging/codecs/registry.py; "native" for uncompressed
    big_endian: bool = False
    implicit_vr: bool = False
    deflated_dataset: bool = False  # whole data set deflated (1.2.840.10008.1.2.1.99)

    @property
    def encapsulated(self) -> bool:
        return self.frames is not FrameLayout.NATIVE

    @property
    def is_video(self) -> bool:
        return self.frames is FrameLayout.STREAM

    @property
    def label(self) -> str:
        """`Name (UID)`, for messages."""
        return f"{self.name} ({self.uid})"


def _ts(
    uid: str,
    keyword: str,
    name: str,
    frames: FrameLayout,
    codec: str,
    *,
    lossless: bool | None,
    **flags: bool,
) -> TransferSyntax:
    return TransferSyntax(uid, keyword, name, lossless, frames, codec, **flags)


_N, _ONE, _FR, _ST = (
    FrameLayout.NATIVE,
    FrameLayout.ONE_FRAGMENT_PER_FRAME,
    FrameLayout.FRAGMENTS,
    FrameLayout.STREAM,
)

_VIDEO = (
    ("1.2.840.10008.1.2.4.100", "MPEG2MPML", "MPEG2 Main Profile / Main Level"),
    ("1.2.840.10008.1.2.4.100.1", "MPEG2MPMLF", "Fragmentable MPEG2 Main Profile / Main Level"),
    ("1.2.840.10008.1.2.4.101", "MPEG2MPHL", "MPEG2 Main Profile / High Level"),
    ("1.2.840.10008.1.2.4.101.1", "MPEG2MPHLF", "Fragmentable MPEG2 Main Profile / High Level"),
    ("1.2.840.10008.1.2.4.102", "MPEG4HP41", "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
    ("1.2.840.10008.1.2.4.102.1", "MPEG4HP41F", "Fragmentable MPEG-4 AVC/H.264 HP / Level 4.1"),
    ("1.2.840.10008.1.2.4.103", "MPEG4HP41BD", "MPEG-4 AVC/H.264 BD-compatible HP / Level 4.1"),
    ("1.2.840.10008.1.2.4.103.1", "MPEG4HP41BDF", "Fragmentable MPEG-4 AVC/H.264 BD HP / 4.1"),
    ("1.2.840.10008.1.2.4.104", "MPEG4HP422D", "MPEG-4 AVC/H.264 High Profile / Level 4.2 2D"),
    ("1.2.840.10008.1.2.4.104.1", "MPEG4HP422DF", "Fragmentable MPEG-4 AVC/H.264 HP / 4.2 2D"),
    ("1.2.840.10008.1.2.4.105", "MPEG4HP423D", "MPEG-4 AVC/H.264 High Profile / Level 4.2 3D"),
    ("1.2.840.10008.1.2.4.105.1", "MPEG4HP423DF", "Fragmentable MPEG-4 AVC/H.264 HP / 4.2 3D"),
    ("1.2.840.10008.1.2.4.106", "MPEG4HP42STEREO", "MPEG-4 AVC/H.264 Stereo HP / Level 4.2"),
    ("1.2.840.10008.1.2.4.106.1", "MPEG4HP42STEREOF", "Fragmentable MPEG-4 AVC/H.264 Stereo HP"),
    ("1.2.840.10008.1.2.4.107", "HEVCMP51", "HEVC/H.265 Main Profile / Level 5.1"),
    ("1.2.840.10008.1.2.4.108", "HEVCM10P51", "HEVC/H.265 Main 10 Profile / Level 5.1"),
)

TRANSFER_SYNTAXES: tuple[TransferSyntax, ...] = (
    _ts(
        "1.2.840.10008.1.2",
        "ImplicitVRLittleEndian",
        "Implicit VR Little Endian",
        _N,
        "native",
        lossless=True,
        implicit_vr=True,
    ),
    _ts(
        "1.2.840.10008.1.2.1",
        "ExplicitVRLittleEndian",
        "Explicit VR Little Endian",
        _N,
        "native",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.1.99",
        "DeflatedExplicitVRLittleEndian",
        "Deflated Explicit VR Little Endian",
        _N,
        "native",
        lossless=True,
        deflated_dataset=True,
    ),
    _ts(
        "1.2.840.10008.1.2.2",
        "ExplicitVRBigEndian",
        "Explicit VR Big Endian",
        _N,
        "native",
        lossless=True,
        big_endian=True,
    ),
    _ts(
        "1.2.840.10008.1.2.1.98",
        "EncapsulatedUncompressedExplicitVRLittleEndian",
        "Encapsulated Uncompressed Explicit VR Little Endian",
        _ONE,
        "native",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.8.1",
        "DeflatedImageFrameCompression",
        "Deflated Image Frame Compression",
        _ONE,
        "deflate",
        lossless=True,
    ),
    _ts("1.2.840.10008.1.2.5", "RLELossless", "RLE Lossless", _ONE, "rle", lossless=True),
    _ts(
        "1.2.840.10008.1.2.4.50",
        "JPEGBaseline8Bit",
        "JPEG Baseline (Process 1)",
        _FR,
        "jpeg",
        lossless=False,
    ),
    _ts(
        "1.2.840.10008.1.2.4.51",
        "JPEGExtended12Bit",
        "JPEG Extended (Process 2 & 4)",
        _FR,
        "jpeg",
        lossless=False,
    ),
    _ts(
        "1.2.840.10008.1.2.4.57",
        "JPEGLossless",
        "JPEG Lossless, Non-Hierarchical (Process 14)",
        _FR,
        "jpeg",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.4.70",
        "JPEGLosslessSV1",
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)",
        _FR,
        "jpeg",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.4.80",
        "JPEGLSLossless",
        "JPEG-LS Lossless Image Compression",
        _FR,
        "jpegls",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.4.81",
        "JPEGLSNearLossless",
        "JPEG-LS Lossy (Near-Lossless) Image Compression",
        _FR,
        "jpegls",
        lossless=False,
    ),
    _ts(
        "1.2.840.10008.1.2.4.90",
        "JPEG2000Lossless",
        "JPEG 2000 Image Compression (Lossless Only)",
        _FR,
        "jpeg2000",
        lossless=True,
    ),
    _ts("1.2.840.10008.1.2.4.91", "JPEG2000", "JPEG 2000 Image Compression", _FR, "jpeg2000", lossless=None),
    _ts(
        "1.2.840.10008.1.2.4.92",
        "JPEG2000MCLossless",
        "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
        _FR,
        "jpeg2000",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.4.93",
        "JPEG2000MC",
        "JPEG 2000 Part 2 Multi-component Image Compression",
        _FR,
        "jpeg2000",
        lossless=None,
    ),
    _ts(
        "1.2.840.10008.1.2.4.201",
        "HTJ2KLossless",
        "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
        _FR,
        "htj2k",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.4.202",
        "HTJ2KLosslessRPCL",
        "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
        _FR,
        "htj2k",
        lossless=True,
    ),
    _ts(
        "1.2.840.10008.1.2.4.203",
        "HTJ2K",
        "High-Throughput JPEG 2000 Image Compression",
        _FR,
        "htj2k",
        lossless=None,
    ),
    _ts("1.2.840.10008.1.2.4.110", "JPEGXLLossless", "JPEG XL Lossless", _FR, "jpegxl", lossless=True),
    _ts(
        "1.2.840.10008.1.2.4.111",
        "JPEGXLJPEGRecompression",
        "JPEG XL JPEG Recompression",
        _FR,
        "jpegxl",
        lossless=False,
    ),
    _ts("1.2.840.10008.1.2.4.112", "JPEGXL", "JPEG XL", _FR, "jpegxl", lossless=None),
    *(_ts(uid, kw, name, _ST, "video", lossless=False) for uid, kw, name in _VIDEO),
)

_BY_UID: dict[str, TransferSyntax] = {ts.uid: ts for ts in TRANSFER_SYNTAXES}

# Syntaxes pydicom 3.0.2 does not define; registered by `register_with_pydicom`.
_MISSING_FROM_PYDICOM = (DeflatedImageFrameCompression, JPEGXLLossless, JPEGXLJPEGRecompression, JPEGXL)


def find_transfer_syntax(uid: str) -> TransferSyntax | None:
    """The registry row for `uid`, or None for a syntax Fovea does not know."""
    return _BY_UID.get(uid)


def find_transfer_syntax_by_name(name: str) -> TransferSyntax | None:
    """The registry row for a UID or a keyword (`HTJ2KLossless`, any case), as settings and the CLI
    take them; None for a name Fovea does not know."""
    name = name.strip()
    wanted = name.casefold()
    by_keyword = (ts for ts in TRANSFER_SYNTAXES if ts.keyword.casefold() == wanted)
    return _BY_UID.get(name) or next(by_keyword, None)


def register_with_pydicom() -> None:
    """Add the syntaxes pydicom 3.0.2 lacks to its UID dictionary (encapsulated, explicit VR LE)."""
    for uid in _MISSING_FROM_PYDICOM:
        ts = _BY_UID[uid]
        UID_dictionary.setdefault(uid, (ts.name, "Transfer Syntax", "", "", ts.keyword))


register_with_pydicom()
