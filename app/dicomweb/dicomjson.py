"""The DICOM JSON model (PS3.18 Annex F) of a data set, and where its bulk data lives in the file.

Why: STOW-RS parses each Part 10 file once, with `dcmread(path, defer_size=N)`; WADO-RS later serves
metadata from the stored JSON and bulk data by a ranged read of the stored file. So this conversion
never reads the file (a deferred value stays unread) and reports, for every BulkDataURI it writes,
the byte range and byte order of the value in the file.

Decoding of values already in memory (character sets, padding, backslash splitting, ambiguous VRs)
is pydicom's, through `ds[tag]`; the mapping to the JSON model is ours.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import hooks
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from app.imaging.codecs.native import little_endian_value
from app.imaging.syntaxes import find_transfer_syntax

PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # Float, Double Float, Pixel Data
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})  # InlineBinary VRs, F.2.7
_INT_VRS = frozenset({"SL", "SS", "UL", "US", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_UNDEFINED_LENGTH = 0xFFFFFFFF
_IS_TEXT = re.compile(r"[+-]?[0-9]+")  # PS3.5 Table 6.2-1
_DS_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class BulkDataLocation:
    """Where the value behind one BulkDataURI sits in the Part 10 file.

    Why: WADO-RS serves bulk data by a ranged read of the stored file, without parsing it again.
    """

    path: str  # "7FE00010" at top level; "54000100/0/54001010" inside sequence items (0-based)
    vr: str
    offset: int  # absolute offset of the value's first byte
    length: int | None  # None: undefined length (encapsulated pixel data); the caller measures it
    little_endian: bool  # byte order of the value as stored


@dataclass(frozen=True, slots=True)
class DicomJson:
    """A data set in the DICOM JSON model and the file locations of its BulkDataURIs.

    Why: the attributes are stored as metadata; the locations index the bulk data (PS3.18 F.2).
    """

    attributes: dict[str, Any]
    bulkdata: tuple[BulkDataLocation, ...]


class UnconvertibleElementError(ValueError):
    """An element that cannot be expressed without reading the file, or without a file to point at.

    Why: a deferred sequence (pydicom defers defined-length SQ values too, and an SQ may not be a
    BulkDataURI, PS3.18 F.2.6); a bulk value with no offset in a file (a data set built in memory);
    or any bulk value of a deflated data set, whose offsets count bytes of the inflated stream.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


@dataclass(frozen=True, slots=True)
class _Context:
    """What one conversion shares: URI prefix, threshold, and the bulk data locations found."""

    uri_prefix: str
    threshold: int
    deflated: bool
    found: list[BulkDataLocation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where the elements of one data set are: tag path prefix, byte order, offset base.

    Why: pydicom's value offsets inside a defined-length sequence count from the sequence value,
    so `base` is the file offset they count from (None: not read from a file).
    """

    prefix: str
    little_endian: bool
    base: int | None


def dataset_to_dicom_json(
    ds: Dataset, *, bulkdata_uri_prefix: str, bulkdata_threshold: int = 1024
) -> DicomJson:
    """Convert `ds` to the DICOM JSON model; pixel, big binary and deferred values become bulk data.

    Why: stored once at ingest, served as WADO-RS metadata (PS3.18 F.2 and 10.4.3.3.2). Each
    BulkDataURI is f"{bulkdata_uri_prefix}/{location.path}"; nothing here reads the file.
    """
    file_meta = getattr(ds, "file_meta", None)
    syntax = find_transfer_syntax(str(file_meta.get("TransferSyntaxUID", ""))) if file_meta else None
    context = _Context(bulkdata_uri_prefix, bulkdata_threshold, bool(syntax and syntax.deflated_dataset))
    little_endian = ds.original_encoding[1]
    frame = _Frame("", True if little_endian is None else little_endian, 0)
    attributes = _dataset(ds, frame, context)
    return DicomJson(attributes, tuple(context.found))


def encode_dicom_json(obj: Any) -> bytes:
    """Serialise a DICOM JSON object (or array of them) as compact UTF-8 bytes.

    Why: metadata is stored and served as these bytes; the attributes are already in tag order.
    """
    return orjson.dumps(obj)


def deferred_sequence_tags(ds: Dataset) -> tuple[BaseTag, ...]:
    """Return the top-level sequences that `dcmread(defer_size=...)` left unread.

    Why: pydicom defers defined-length SQ values larger than defer_size too; the caller loads them
    (`ds[tag]` reads that element only) before `dataset_to_dicom_json`, which never reads the file.
    """
    return tuple(
        tag
        for tag in sorted(ds.keys())
        if isinstance(item := ds.get_item(tag, keep_deferred=True), RawDataElement)
        and _is_deferred(item)
        and _raw_vr(item, ds) == "SQ"
    )


def _dataset(ds: Dataset, frame: _Frame, context: _Context) -> dict[str, Any]:
    """Convert one data set (top level or sequence item); keys in ascending tag order (F.2.1)."""
    out: dict[str, Any] = {}
    for tag in sorted(ds.keys()):
        if tag.group in (0x0002, 0xFFFE) or tag.element == 0:  # File Meta, items, group lengths
            continue
        out[f"{tag:08X}"] = _attribute(ds, tag, frame, context)
    return out


def _attribute(ds: Dataset, tag: BaseTag, frame: _Frame, context: _Context) -> dict[str, Any]:
    """Convert one element, deferred or not, without reading the file."""
    path = f"{frame.prefix}{tag:08X}"
    stored = ds.get_item(tag, keep_deferred=True)
    little_endian = frame.little_endian
    if isinstance(stored, RawDataElement):
        little_endian = stored.is_little_endian
        if _is_deferred(stored):  # only at top level: pydicom reads sequence items in full
            vr = _raw_vr(stored, ds)
            if vr == "SQ":
                raise UnconvertibleElementError(path, "deferred sequence: load it first")
            length = None if stored.length == _UNDEFINED_LENGTH else stored.length
            return _bulk(context, path, vr, stored.value_tell, length, little_endian=little_endian)
    elem = ds[tag]
    vr = str(elem.VR)
    value = elem.value
    if " or " in vr:  # left ambiguous by pydicom (retired and DICONDE attributes only)
        vr = _resolve_ambiguous_vr(vr, ds, undefined_length=elem.is_undefined_length)
        if vr in ("US", "SS") and isinstance(value, bytes):
            fmt = ("<" if little_endian else ">") + ("H" if vr == "US" else "h")
            value = [n for (n,) in struct.iter_unpack(fmt, value[: len(value) // 2 * 2])]
    if elem.is_empty:  # zero length; for SQ, no items (F.2.5)
        return {"vr": vr}
    if vr == "SQ":
        return {"vr": vr, "Value": _items(elem, path, frame, context, little_endian=little_endian)}
    if vr not in BINARY_VRS:
        return {"vr": vr, "Value": [_json_value(v, vr) for v in _values(value)]}
    if tag not in PIXEL_DATA_TAGS and len(value) <= context.threshold:
        return {"vr": vr, "InlineBinary": _inline_binary(value, vr, little_endian=little_endian)}
    if frame.base is None or elem.file_tell is None:
        raise UnconvertibleElementError(path, "bulk data value has no offset in a file")
    length = None if elem.is_undefined_length else len(value)
    return _bulk(context, path, vr, frame.base + elem.file_tell, length, little_endian=little_endian)


def _items(
    elem: DataElement, path: str, frame: _Frame, context: _Context, *, little_endian: bool
) -> list[dict[str, Any]]:
    """Convert the items of a sequence, each a data set of its own (F.2.6 nested objects).

    Why: pydicom parses a defined-length sequence from a copy of its value, so value offsets inside
    it count from the sequence value's first byte; an undefined-length one is parsed in place.
    """
    base = frame.base
    if base is not None and not elem.is_undefined_length:
        base = None if elem.file_tell is None else base + elem.file_tell
    items = []
    for index, item in enumerate(elem.value):
        item_little_endian = item.original_encoding[1]
        if item_little_endian is None:
            item_little_endian = little_endian
        item_frame = _Frame(f"{path}/{index}/", item_little_endian, base)
        items.append(_dataset(item, item_frame, context))
    return items


def _bulk(
    context: _Context, path: str, vr: str, offset: int, length: int | None, *, little_endian: bool
) -> dict[str, Any]:
    """Record a bulk data location and return its attribute object (PS3.18 F.2.6)."""
    if context.deflated:
        raise UnconvertibleElementError(path, "deflated data set: no offset in the file")
    context.found.append(BulkDataLocation(path, vr, offset, length, little_endian))
    return {"vr": vr, "BulkDataURI": f"{context.uri_prefix}/{path}"}


def _is_deferred(stored: RawDataElement) -> bool:
    """True for a raw element whose value pydicom skipped (defer_size) and would read on access."""
    return stored.value is None and stored.length != 0


def _raw_vr(raw: RawDataElement, ds: Dataset) -> str:
    """The VR of a raw element, found as pydicom would without touching its value.

    Why: implicit VR data carry no VR (dictionary, private dictionary, else UN: PS3.5 6.2.2);
    an ambiguous one is resolved by `_resolve_ambiguous_vr`.
    """
    data: dict[str, Any] = {}
    hooks.raw_element_vr(raw, data, ds=ds)
    vr = str(data["VR"])
    return (
        _resolve_ambiguous_vr(vr, ds, undefined_length=raw.length == _UNDEFINED_LENGTH)
        if " or " in vr
        else vr
    )


def _resolve_ambiguous_vr(vr: str, ds: Dataset, *, undefined_length: bool) -> str:
    """Pick one VR for an ambiguous one ("OB or OW", "US or SS", "US or OW", ...).

    Why: used for deferred values and where pydicom gave up. Only implicit VR data are ambiguous,
    and there PS3.5 A.1 makes pixel, overlay and waveform data OW (encapsulated: OB, PS3.5 A.4);
    a LUT long enough to defer has more than one entry, so OW too (PS3.3 C.11.1.1.1); US or SS
    follows Pixel Representation (PS3.3 C.7.6.3.1.4). pydicom decides these the same way.
    """
    if undefined_length and "OB" in vr:
        return "OB"
    if "OW" in vr:
        return "OW"
    if "US" in vr:
        return "SS" if ds.get("PixelRepresentation") == 1 else "US"
    return vr.split(" or ")[0]


def _inline_binary(value: bytes, vr: str, *, little_endian: bool) -> str:
    """Base64 of a binary value in little-endian byte order (PS3.18 F.2.7: the JSON model is LE).

    Why: a big-endian file stores OW/OF/OL/OD/OV words most significant byte first; swap each word.
    """
    value = little_endian_value(value, vr, big_endian=not little_endian)
    return base64.b64encode(value).decode("ascii")


def _values(value: Any) -> Sequence[Any]:
    """The values of a decoded element as a sequence (VM is implicit in the JSON array, F.2.4)."""
    return value if isinstance(value, list | tuple | MultiValue) else (value,)


def _json_value(value: Any, vr: str) -> Any:
    """One value as a JSON value; an empty value inside a multi-valued attribute is null (F.2.5)."""
    if vr == "PN":
        return _person_name(value)
    if vr == "AT":
        return f"{int(value):08X}"
    if vr in ("IS", "DS"):
        return _number_string(value, vr)
    if vr in _INT_VRS:
        return int(value)
    if vr in _FLOAT_VRS:
        return _finite_or_text(float(value))
    return str(value) or None


def _person_name(value: Any) -> dict[str, str] | None:
    """A PN value as its non-empty component groups (PS3.18 F.2.2); no group at all is null."""
    groups = ("Alphabetic", "Ideographic", "Phonetic")
    name = {key: str(text) for key, text in zip(groups, value.components, strict=False) if text}
    return name or None


def _number_string(value: Any, vr: str) -> int | float | str | None:
    """An IS or DS value as a JSON number, or its text where the text is not a valid number.

    Why: PS3.18 F.2.3 lets IS/DS be strings; a string that is not a number (invalid in the file)
    is kept as written rather than lost or turned into null, so nothing the sender wrote disappears.
    """
    text = getattr(value, "original_string", value)
    if not isinstance(text, str):  # a number set in memory, not parsed from text
        return int(text) if vr == "IS" else _finite_or_text(float(text))
    text = text.strip()
    if not text:
        return None
    if _IS_TEXT.fullmatch(text):
        return int(text)
    if vr == "DS" and _DS_TEXT.fullmatch(text) and math.isfinite(number := float(text)):
        return number
    return text


def _finite_or_text(number: float) -> float | str:
    """A float, or its text ("NaN", "Infinity", "-Infinity") when not finite.

    Why: JSON has no NaN or infinity (RFC 8259 section 6), and orjson would silently write null.
    """
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
