"""A Part 10 file built from one instance's DICOM JSON and the bulk data parts it points at (PS3.18 10.5).

Why: STOW-RS with metadata and bulk data (`multipart/related; type="application/dicom+json"`) must end in
the same ingest as a Part 10 upload, so each instance is written as a Part 10 file first. The JSON model
is turned into a data set by pydicom (`Dataset.from_json`); the bulk values are handed to pydicom's writer
as open files (compressed frames through `encapsulate_buffer`), so pixel data is streamed from the spooled
parts into the new file and never held in memory.

The transfer syntax follows from the part that carries Pixel Data (PS3.18 8.7.3.3): an octet-stream part
is native, Explicit VR Little Endian; a compressed media type carries its `transfer-syntax` parameter,
or the type's default syntax; one part per frame, in order, all with the Pixel Data's Content-Location.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path
from typing import Any

import orjson
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate_buffer
from pydicom.filewriter import dcmwrite
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import VR
from pydicom.values import convert_value

from app.dicomweb.dicomjson import BINARY_VRS, PIXEL_DATA_TAGS
from app.dicomweb.mediatypes import (
    DICOM_JSON,
    DICOM_XML,
    OCTET_STREAM,
    is_uncompressed,
    transfer_syntaxes_for,
)
from app.dicomweb.native_xml import NativeXmlError, native_xml_to_dicom_json
from app.imaging.syntaxes import find_transfer_syntax
from app.store.write.parse import InstanceProblem, Problem

PIXEL_DATA = "7FE00010"
_SOP_CLASS, _SOP_INSTANCE, _CHARACTER_SET = "00080016", "00080018", "00080005"
_FILE_META_GROUP = "0002"  # File Meta is written from the data set and the parts, never taken from JSON
_TAG_KEY = re.compile(r"[0-9A-Fa-f]{8}")
_KNOWN_VRS = frozenset(vr.value for vr in VR)
_MAX_TEXT_BULK_BYTES = 64 * 1024 * 1024  # a non-binary bulk value is decoded in memory


@dataclass(frozen=True, slots=True)
class BulkPart:
    """One bulk data part of the request, its content spooled to `path`."""

    path: Path
    media_type: str  # canonical, lower case; "" when the part named no Content-Type
    transfer_syntax: str | None  # the `transfer-syntax` parameter, if any
    size: int
    too_large: bool = False  # over the part size limit: its content was discarded


BulkParts = Mapping[str, Sequence[BulkPart]]  # by Content-Location (and `cid:` Content-ID), in body order


def read_metadata_part(content: bytes, media_type: str = DICOM_JSON) -> list[Any]:
    """The data sets of one metadata part: for DICOM JSON an array of them or one object; for
    application/dicom+xml one Native DICOM Model document, converted to the JSON model."""
    if media_type == DICOM_XML:
        try:
            return [native_xml_to_dicom_json(content)]
        except NativeXmlError as exc:
            raise InstanceProblem(Problem.NOT_DICOM, f"metadata part: {exc}") from exc
    try:
        decoded = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise InstanceProblem(Problem.NOT_DICOM, f"metadata part is not valid JSON: {exc}") from exc
    data_sets = decoded if isinstance(decoded, list) else [decoded]
    return data_sets


def write_part10(attributes: Any, bulk: BulkParts, path: Path) -> None:
    """Write the instance `attributes` describe to `path`; InstanceProblem when they cannot make one."""
    if not isinstance(attributes, dict):
        raise InstanceProblem(Problem.NOT_DICOM, "a metadata data set is not a JSON object (PS3.18 F.2)")
    sop_class, sop_instance = _uid(attributes, _SOP_CLASS), _uid(attributes, _SOP_INSTANCE)
    if malformed := _malformed(attributes):
        raise InstanceProblem(
            Problem.NOT_DICOM,
            malformed,
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
        )
    data_set = {tag: value for tag, value in attributes.items() if not str(tag).startswith(_FILE_META_GROUP)}
    with ExitStack() as files:
        try:
            pixel_uri = pixel_data_uri(data_set)
            transfer_syntax, pixel_frames = _pixel_data_parts(pixel_uri, bulk)
            handler = _BulkValues(bulk, files, _character_sets(data_set), pixel_uri, pixel_frames)
            ds = Dataset.from_json(data_set, handler)
            if pixel_frames is not None:
                ds["PixelData"].VR = "OB"  # encapsulated (PS3.5 A.4)
            ds.file_meta = _file_meta(ds, transfer_syntax)
            dcmwrite(path, ds, enforce_file_format=True)
        except InstanceProblem as problem:
            problem.sop_class_uid, problem.sop_instance_uid = sop_class, sop_instance
            path.unlink(missing_ok=True)
            raise
        except Exception as exc:  # pydicom's verdict on a malformed JSON model or value
            path.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno is not None:  # the disk, not the data
                raise
            raise InstanceProblem(
                Problem.NOT_DICOM,
                f"metadata cannot be read as DICOM JSON: {exc}",
                sop_class_uid=sop_class,
                sop_instance_uid=sop_instance,
            ) from exc


def _malformed(data_set: dict[str, Any]) -> str | None:
    """What is wrong with the first key or VR, at any depth, that pydicom would take anyway.

    Why: pydicom reads the key "0008001" as (0000,8001), and keeps a VR it does not know.
    """
    for key, element in data_set.items():
        if not _TAG_KEY.fullmatch(key):
            return f"{key!r} is not a tag of eight hexadecimal digits (PS3.18 F.2.1.1)"
        vr = element.get("vr") if isinstance(element, dict) else None
        if vr not in _KNOWN_VRS:
            return f"{key}: {vr!r} is not a VR (PS3.18 F.2.3)"
        items = element.get("Value") if vr == "SQ" else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and (problem := _malformed(item)):
                return problem
    return None


def _uid(attributes: dict[str, Any], tag: str) -> str:
    """A UID of the JSON for the failure entry, "" where it has none."""
    values = attributes.get(tag, {}).get("Value") if isinstance(attributes.get(tag), dict) else None
    return values[0] if isinstance(values, list) and values and isinstance(values[0], str) else ""


def pixel_data_uri(data_set: dict[str, Any]) -> str:
    """The BulkDataURI of the top-level Pixel Data, "" when it has none."""
    element = data_set.get(PIXEL_DATA)
    uri = element.get("BulkDataURI") if isinstance(element, dict) else None
    return uri if isinstance(uri, str) else ""


def _pixel_data_parts(uri: str, bulk: BulkParts) -> tuple[str, list[BulkPart] | None]:
    """The transfer syntax the Pixel Data part(s) make, and the compressed frames (None: native)."""
    if not uri:  # no pixels, or inline pixels: native
        return ExplicitVRLittleEndian, None
    parts = _parts_for(bulk, uri, "Pixel Data")
    media_types = {part.media_type for part in parts}
    if media_types <= {"", OCTET_STREAM}:
        if len(parts) > 1:
            raise InstanceProblem(
                Problem.NOT_DICOM, f"Pixel Data: {len(parts)} octet-stream parts at {uri!r}"
            )
        return ExplicitVRLittleEndian, None
    if len(media_types) > 1 or len({part.transfer_syntax for part in parts}) > 1:
        raise InstanceProblem(
            Problem.NOT_DICOM, f"Pixel Data frames differ in media type or syntax at {uri!r}"
        )
    return _compressed_syntax(parts[0]), list(parts)


def _compressed_syntax(part: BulkPart) -> str:
    allowed = transfer_syntaxes_for(part.media_type)
    if not allowed:
        raise InstanceProblem(
            Problem.UNSUPPORTED_SYNTAX,
            f"Pixel Data type {part.media_type!r} is no bulk data media type",
        )
    syntax = part.transfer_syntax or allowed[0]
    if syntax not in allowed or is_uncompressed(syntax):
        raise InstanceProblem(
            Problem.UNSUPPORTED_SYNTAX,
            f"{part.media_type} cannot carry transfer-syntax={syntax} (PS3.18 Table 8.7.3-5)",
        )
    return syntax


def _parts_for(bulk: BulkParts, uri: str, what: str) -> Sequence[BulkPart]:
    parts = bulk.get(uri)
    if not parts:
        raise InstanceProblem(Problem.NOT_DICOM, f"{what}: no part has the BulkDataURI {uri!r}")
    if any(part.too_large for part in parts):
        raise InstanceProblem(Problem.TOO_LARGE, f"{what}: the part at {uri!r} is over the size limit")
    return parts


def _character_sets(data_set: dict[str, Any]) -> list[str]:
    element = data_set.get(_CHARACTER_SET)
    values = element.get("Value") if isinstance(element, dict) else None
    return [str(v or "") for v in values] if isinstance(values, list) else []


class _BulkValues:
    """pydicom's bulk data handler: the value behind each BulkDataURI, read from its part."""

    def __init__(
        self,
        bulk: BulkParts,
        files: ExitStack,
        encodings: list[str],
        pixel_uri: str,
        pixel_frames: list[BulkPart] | None,
    ) -> None:
        self._bulk = bulk
        self._files = files
        self._encodings = encodings
        self._pixel_frames = pixel_frames
        self._pixel_uri = pixel_uri

    def __call__(self, tag: str, vr: str, uri: str) -> Any:
        if self._pixel_frames is not None and tag == PIXEL_DATA and uri == self._pixel_uri:
            frames: list[BufferedIOBase] = [self._open(part) for part in self._pixel_frames]
            return encapsulate_buffer(frames, has_bot=True)
        what = f"({tag[:4]},{tag[4:]})"
        parts = _parts_for(self._bulk, uri, what)
        if len(parts) > 1 or parts[0].media_type not in ("", OCTET_STREAM):
            raise InstanceProblem(
                Problem.NOT_DICOM,
                f"{what}: the BulkDataURI must name one {OCTET_STREAM} part: {uri!r}",
            )
        part = parts[0]
        if vr in BINARY_VRS or int(tag, 16) in PIXEL_DATA_TAGS:
            return self._open(part)
        if part.size > _MAX_TEXT_BULK_BYTES:
            raise InstanceProblem(Problem.TOO_LARGE, f"{what}: {vr} value too large to decode")
        raw = RawDataElement(
            Tag(tag), vr, part.size, part.path.read_bytes(), 0, is_implicit_VR=False, is_little_endian=True
        )
        value = convert_value(vr, raw, self._encodings or None)
        return list(value) if isinstance(value, list | tuple) else value

    def _open(self, part: BulkPart) -> BufferedIOBase:
        if part.path.stat().st_size % 2:  # pydicom writes an odd buffer's length, then pads it
            with part.path.open("ab") as padded:
                padded.write(b"\0")
        return self._files.enter_context(part.path.open("rb"))


def _file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    sop_class = ds.get("SOPClassUID")
    sop_instance = ds.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        raise InstanceProblem(Problem.INVALID, "metadata lacks SOP Class UID or SOP Instance UID")
    syntax = find_transfer_syntax(transfer_syntax)
    assert syntax is not None
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = UID(syntax.uid)
    return meta
