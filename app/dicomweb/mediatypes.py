"""DICOMweb media types and the transfer syntaxes each one carries (PS3.18 8.7.3, Table 10.4.4-1).

Why: the same rows answer both questions negotiation and responses ask, "which syntax does this Accept
range mean?" and "which Content-Type labels a part in this syntax?", so the tables are written once,
as data. Transfer syntaxes are named by their registry keyword (`app.imaging.syntaxes`), so a row can
only name a syntax Fovea knows.

Implicit VR Little Endian and Explicit VR Big Endian appear in no row: PS3.18 8.7.3 forbids them in
every web service. Deflated Image Frame Compression (1.2.840.10008.1.2.8.1, Sup 244) is labelled
`application/x-deflate`, the only name attributed to the published Table 8.7.3-5; the draft-era name
`application/vnd.dicom-deflate` is accepted as an alias on input and never emitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from app.imaging.syntaxes import TRANSFER_SYNTAXES, FrameLayout, find_transfer_syntax

APPLICATION_DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"
MULTIPART_RELATED = "multipart/related"
ANY_TRANSFER_SYNTAX = "*"  # transfer-syntax=* in an Accept range: any, the stored one preferred
DEFLATED_FRAMES = "application/x-deflate"
MEDIA_TYPE_ALIASES: Mapping[str, str] = MappingProxyType({"application/vnd.dicom-deflate": DEFLATED_FRAMES})
# The `type` of a STOW-RS request body (PS3.18 10.5.1.2): Part 10 files, or metadata with bulk data parts.
STORE_PART10_TYPE = APPLICATION_DICOM
STORE_METADATA_TYPES = (DICOM_JSON, DICOM_XML)

_UID_BY_KEYWORD: Mapping[str, str] = MappingProxyType({ts.keyword: ts.uid for ts in TRANSFER_SYNTAXES})
ENCAPSULATED_UNCOMPRESSED = _UID_BY_KEYWORD["EncapsulatedUncompressedExplicitVRLittleEndian"]


class ResourceCategory(StrEnum):
    """What a WADO-RS target returns, which decides its media types (PS3.18 Table 10.4.4-1)."""

    INSTANCE = "instance"  # study, series and instance resources
    METADATA = "metadata"
    BULKDATA = "bulkdata"  # frames, bulkdata and pixeldata resources
    RENDERED = "rendered"
    THUMBNAIL = "thumbnail"


@dataclass(frozen=True, slots=True)
class MediaTypeRow:
    """One row of PS3.18 Table 8.7.3-2, 8.7.3-4 or 8.7.3-5: a media type carrying one transfer syntax."""

    media_type: str
    transfer_syntax: str
    default: bool  # "D" in the table: the syntax meant when a range names no transfer-syntax
    category: ResourceCategory


@dataclass(frozen=True, slots=True)
class DefaultMediaType:
    """A category's default response: `media_type` alone, or as the parts of a multipart/related body."""

    media_type: str
    multipart: bool


def _rows(
    media_type: str, default: str, *optional: str, category: ResourceCategory = ResourceCategory.BULKDATA
) -> tuple[MediaTypeRow, ...]:
    """The default keyword's row, then one optional row per further keyword."""
    keywords = (default, *optional)
    return tuple(
        MediaTypeRow(media_type, _UID_BY_KEYWORD[keyword], index == 0, category)
        for index, keyword in enumerate(keywords)
    )


# Table 8.7.3-4: uncompressed bulk data, little-endian bytes (PS3.18 8.7.3.3.1).
UNCOMPRESSED_BULK_MEDIA_TYPES: tuple[MediaTypeRow, ...] = _rows(OCTET_STREAM, "ExplicitVRLittleEndian")

# Table 8.7.3-5: compressed bulk data, one codestream per frame (PS3.18 8.7.3.3.2), plus Sup 244.
COMPRESSED_BULK_MEDIA_TYPES: tuple[MediaTypeRow, ...] = (
    *_rows("image/jpeg", "JPEGLosslessSV1", "JPEGBaseline8Bit", "JPEGExtended12Bit", "JPEGLossless"),
    *_rows("image/dicom-rle", "RLELossless"),
    *_rows("image/jls", "JPEGLSLossless", "JPEGLSNearLossless"),
    *_rows("image/jp2", "JPEG2000Lossless", "JPEG2000"),
    *_rows("image/jpx", "JPEG2000MCLossless", "JPEG2000MC"),
    *_rows("image/jphc", "HTJ2KLossless", "HTJ2KLosslessRPCL", "HTJ2K"),
    *_rows("image/jxl", "JPEGXLLossless", "JPEGXLJPEGRecompression", "JPEGXL"),
    *_rows(DEFLATED_FRAMES, "DeflatedImageFrameCompression"),
    *_rows("video/mpeg", "MPEG2MPML", "MPEG2MPHL", "MPEG2MPMLF", "MPEG2MPHLF"),
    *_rows(
        "video/mp4",
        "MPEG4HP41",
        *("MPEG4HP41BD", "MPEG4HP422D", "MPEG4HP423D", "MPEG4HP42STEREO"),
        *("MPEG4HP41F", "MPEG4HP41BDF", "MPEG4HP422DF", "MPEG4HP423DF", "MPEG4HP42STEREOF"),
    ),
    *_rows("video/H265", "HEVCMP51", "HEVCM10P51"),
)

# Table 8.7.3-2: application/dicom in Explicit VR LE (default), deflated, encapsulated uncompressed, or
# any syntax of Table 8.7.3-5 (those rows are reused, not retyped).
DICOM_MEDIA_TYPES: tuple[MediaTypeRow, ...] = (
    *_rows(
        APPLICATION_DICOM,
        "ExplicitVRLittleEndian",
        "DeflatedExplicitVRLittleEndian",
        "EncapsulatedUncompressedExplicitVRLittleEndian",
        category=ResourceCategory.INSTANCE,
    ),
    *(
        MediaTypeRow(
            APPLICATION_DICOM, row.transfer_syntax, default=False, category=ResourceCategory.INSTANCE
        )
        for row in COMPRESSED_BULK_MEDIA_TYPES
    ),
)

MEDIA_TYPE_ROWS: tuple[MediaTypeRow, ...] = (
    *DICOM_MEDIA_TYPES,
    *UNCOMPRESSED_BULK_MEDIA_TYPES,
    *COMPRESSED_BULK_MEDIA_TYPES,
)

# PS3.18 Table 10.4.4-1: what `*/*` means for each category.
CATEGORY_DEFAULTS: Mapping[ResourceCategory, DefaultMediaType] = MappingProxyType(
    {
        ResourceCategory.INSTANCE: DefaultMediaType(APPLICATION_DICOM, multipart=True),
        ResourceCategory.METADATA: DefaultMediaType(DICOM_JSON, multipart=False),
        ResourceCategory.BULKDATA: DefaultMediaType(OCTET_STREAM, multipart=True),
        ResourceCategory.RENDERED: DefaultMediaType("image/jpeg", multipart=False),
        ResourceCategory.THUMBNAIL: DefaultMediaType("image/jpeg", multipart=False),
    }
)


def _index_by_media_type() -> Mapping[str, tuple[MediaTypeRow, ...]]:
    index: dict[str, list[MediaTypeRow]] = {}
    for row in MEDIA_TYPE_ROWS:
        index.setdefault(row.media_type.lower(), []).append(row)
    return MappingProxyType({key: tuple(rows) for key, rows in index.items()})


_ROWS_BY_MEDIA_TYPE = _index_by_media_type()
_BULK_ROW_BY_SYNTAX: Mapping[str, MediaTypeRow] = MappingProxyType(
    {row.transfer_syntax: row for row in (*UNCOMPRESSED_BULK_MEDIA_TYPES, *COMPRESSED_BULK_MEDIA_TYPES)}
)


def canonical_media_type(media_type: str) -> str:
    """`media_type` lower-cased with aliases resolved, spelled as the table spells it (`video/H265`)."""
    key = media_type.strip().lower()
    key = MEDIA_TYPE_ALIASES.get(key, key)
    rows = _ROWS_BY_MEDIA_TYPE.get(key)
    return rows[0].media_type if rows else key


def rows_for_media_type(media_type: str) -> tuple[MediaTypeRow, ...]:
    """The rows of `media_type` (any case, aliases accepted), default row first; () when unknown."""
    return _ROWS_BY_MEDIA_TYPE.get(canonical_media_type(media_type).lower(), ())


def transfer_syntaxes_for(media_type: str) -> tuple[str, ...]:
    """The transfer syntaxes `media_type` may carry, default first."""
    return tuple(row.transfer_syntax for row in rows_for_media_type(media_type))


def default_transfer_syntax(media_type: str) -> str | None:
    """The syntax meant by `media_type` without a transfer-syntax parameter (the "D" row)."""
    return next((row.transfer_syntax for row in rows_for_media_type(media_type) if row.default), None)


def transfer_syntax_rows(media_type: str, parameter: str | None, stored_syntax: str) -> list[MediaTypeRow]:
    """The rows a media type with this transfer-syntax parameter names, best first (8.7.3.5.2, 8.7.8.2).

    None: the default row; a lossy stored syntax of the same type goes first for compressed types
    (re-encoding it under a lossless-only default would hide the loss) and after the default for
    uncompressed ones (8.7.3.3: lossy-only data may come back as stored). `*`: the stored syntax if the
    type carries it, then the others in table order. A UID: its row, or none.
    """
    rows = rows_for_media_type(media_type)
    if not rows:
        return []
    if parameter is None:
        lossy_stored = [
            row for row in rows if row.transfer_syntax == stored_syntax and is_lossy(stored_syntax)
        ]
        default_first = is_uncompressed(rows[0].transfer_syntax)
        return list(dict.fromkeys([rows[0], *lossy_stored] if default_first else [*lossy_stored, rows[0]]))
    if parameter == ANY_TRANSFER_SYNTAX:
        return sorted(rows, key=lambda row: row.transfer_syntax != stored_syntax)
    return [row for row in rows if row.transfer_syntax == parameter]


def bulk_media_type_for(transfer_syntax: str) -> str | None:
    """The media type that labels frames or bulk data in `transfer_syntax` (Tables 8.7.3-4/-5)."""
    row = _BULK_ROW_BY_SYNTAX.get(transfer_syntax)
    return row.media_type if row else None


def is_uncompressed(transfer_syntax: str) -> bool:
    """True for native pixel syntaxes and Encapsulated Uncompressed (1.2.840.10008.1.2.1.98).

    Why: only these may answer `application/octet-stream; transfer-syntax=*` as stored (Clunie,
    OHIF #4382); compressed bytes are never labelled octet-stream.
    """
    syntax = find_transfer_syntax(transfer_syntax)
    if syntax is None:
        return False
    return syntax.frames is FrameLayout.NATIVE or syntax.uid == ENCAPSULATED_UNCOMPRESSED


def is_lossy(transfer_syntax: str) -> bool:
    """True unless the syntax is lossless-only (PS3.5); "either" syntaxes count as lossy."""
    syntax = find_transfer_syntax(transfer_syntax)
    return syntax is None or syntax.lossless is not True


def part_content_type(media_type: str, transfer_syntax: str) -> str:
    """The Content-Type of one part (or single-part body), always naming its syntax (PS3.18 8.7.9)."""
    return f"{media_type}; transfer-syntax={transfer_syntax}"


def multipart_content_type(part_media_type: str) -> str:
    """The Content-Type of a multipart/related body of such parts, less the boundary."""
    return f'{MULTIPART_RELATED}; type="{part_media_type}"'
