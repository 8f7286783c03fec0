"""Reading a Part 10 file once, at ingest, into everything later requests need.

Why parse once (docs/architecture.md, "Principles"): the index attributes, the DICOM JSON with
BulkDataURIs and the frame table are all derived here from one `dcmread`, which defers large values
(pixel data is never loaded into memory, whatever its size). Problems are raised as `InstanceProblem`
with the kind of failure, so the STOW-RS layer can choose the PS3.18 failure reason.

A Deflated Explicit VR Little Endian file (1.2.840.10008.1.2.1.99) is inflated, as a stream, into a
sidecar file; the metadata, frame table and bulk-data offsets describe that sidecar, which is stored next
to the file as received (nothing is lost, and frames stay ranged reads).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomFileLike

# The public read_file_meta_info() takes a path and hides where the meta ends; the sidecar needs that.
from pydicom.filereader import _read_file_meta_info as read_file_meta_info
from pydicom.filereader import read_dataset, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian

from app.dicomweb.dicomjson import (
    PIXEL_DATA_TAGS,
    BulkDataLocation,
    dataset_to_dicom_json,
    deferred_sequence_tags,
    encode_dicom_json,
)
from app.dicomweb.uids import is_valid_uid
from app.imaging.codecs.frame_header import FrameHeaderMismatch, FrameHeaderUnreadable, check_stored_frame
from app.imaging.frame_table import FrameFragment, FrameTableError, PixelLayout, build_frame_table
from app.imaging.pixel_description import PixelDescription
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax
from app.store.write.attributes import (
    PatientAttributes,
    instance_attributes,
    int_value,
    patient_attributes,
    request_attributes,
    series_attributes,
    study_attributes,
    text_value,
)

# Values above this size stay on disk during the parse (and always become BulkDataURIs).
DEFER_SIZE = 64 * 1024
BULKDATA_THRESHOLD = 1024
UNDEFINED_LENGTH = 0xFFFFFFFF
EXTENDED_OFFSET_TABLE = 0x7FE00001
EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00002
_INFLATE_CHUNK = 1024 * 1024


class Problem(StrEnum):
    """Why an instance could not be stored (mapped to PS3.18 Failure Reasons by the response layer)."""

    NOT_DICOM = "not-dicom"  # not a Part 10 file, truncated or unreadable
    INVALID = "invalid"  # readable, but a required attribute is missing or malformed
    UNSUPPORTED_SYNTAX = "unsupported-transfer-syntax"
    STUDY_MISMATCH = "study-mismatch"  # Study Instance UID differs from the one in the URL
    CONFLICT = "conflict"  # contradicts the index (e.g. its series belongs to another study)
    DUPLICATE = "duplicate"  # SOP Instance UID already stored (policy reject) or repeated in a request
    PATIENT_MISMATCH = "patient-mismatch"  # its Patient ID/issuer or name contradicts the index's patient
    REJECTED = "rejected"  # an IHE IOCM rejection note rejected it, and re-stores are refused
    TOO_LARGE = "too-large"
    STORAGE_FAILURE = "storage-failure"  # the blob store or the index failed
    UNAVAILABLE = "unavailable"  # the blob store or the index did not answer (an outage: retry later)


class InstanceProblem(Exception):
    def __init__(
        self, problem: Problem, message: str, *, sop_class_uid: str = "", sop_instance_uid: str = ""
    ) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid


@dataclass(frozen=True, slots=True)
class ParsedPixelAttributes:
    """The Image Pixel attributes as the data set gives them (absent: None), as the index keeps them."""

    tag: int
    layout: PixelLayout
    bits_stored: int | None
    high_bit: int | None
    pixel_representation: int | None
    planar_configuration: int | None


@dataclass(slots=True)
class ParsedInstance:
    transfer_syntax: TransferSyntax
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient: PatientAttributes
    study: dict[str, str]
    series: dict[str, Any]
    instance: dict[str, Any]
    request_attributes: list[dict[str, str]]  # `request_attribute` columns, one per item
    pixel: ParsedPixelAttributes | None
    metadata_json: bytes
    bulkdata: tuple[BulkDataLocation, ...]
    frames: tuple[FrameFragment, ...]
    lossy_image_compression: str = ""
    inflated_file: Path | None = None  # sidecar holding the inflated data set, when there is one

    def pixel_description(self) -> PixelDescription | None:
        """The pixels described as a retrieval from the index describes them; None: no pixel data."""
        pixel = self.pixel
        if pixel is None:
            return None
        return PixelDescription.of(
            pixel.layout,
            self.transfer_syntax,
            bits_stored=pixel.bits_stored,
            pixel_representation=pixel.pixel_representation,
            planar_configuration=pixel.planar_configuration,
            lossy_image_compression=self.lossy_image_compression,
        )


def parse_instance(
    path: Path, *, work_directory: Path, max_inflated_bytes: int | None = None
) -> ParsedInstance:
    """Parse the Part 10 file at `path` once; raise InstanceProblem if it cannot be stored.

    A deflated data set may inflate to at most `max_inflated_bytes` (None: no limit).
    """
    with open(path, "rb") as handle:
        meta, syntax = _read_file_meta(handle)
        if not syntax.deflated_dataset:
            return _parse_data_set(handle, path, meta, syntax)
    sidecar = _inflate_to_sidecar(path, work_directory, max_inflated_bytes)
    try:
        with open(sidecar, "rb") as handle:
            inflated_meta, _ = _read_file_meta(handle)
            parsed = _parse_data_set(handle, sidecar, inflated_meta, syntax)
    except BaseException:
        sidecar.unlink(missing_ok=True)
        raise
    parsed.inflated_file = sidecar
    return parsed


def _read_file_meta(handle: BinaryIO) -> tuple[FileMetaDataset, TransferSyntax]:
    """The File Meta Information and the registry row of its syntax; `handle` is left at the data set."""
    try:
        read_preamble(handle, force=False)
        meta = read_file_meta_info(handle)
    except InvalidDicomError:
        # pydicom's own message ends in advice for its API ("Use force=True"), not for our users
        raise InstanceProblem(
            Problem.NOT_DICOM,
            "not a DICOM Part 10 file: no 'DICM' marker after the 128-byte preamble",
        ) from None
    except (EOFError, struct.error, ValueError, OSError) as exc:
        raise InstanceProblem(Problem.NOT_DICOM, f"not a DICOM Part 10 file: {exc}") from exc
    group_length = meta.get("FileMetaInformationGroupLength")
    meta_end = 132 + 12 + int(group_length) if isinstance(group_length, int) else 0
    if meta_end >= os.fstat(handle.fileno()).st_size:
        raise InstanceProblem(
            Problem.NOT_DICOM, "file is truncated: it ends inside or right after its File Meta"
        )
    uid = str(meta.get("TransferSyntaxUID", ""))
    if not uid:
        raise InstanceProblem(Problem.NOT_DICOM, "File Meta Information has no Transfer Syntax UID")
    syntax = find_transfer_syntax(uid)
    if syntax is None:
        raise InstanceProblem(
            Problem.UNSUPPORTED_SYNTAX,
            f"unknown transfer syntax {uid}",
            sop_class_uid=str(meta.get("MediaStorageSOPClassUID", "")),
            sop_instance_uid=str(meta.get("MediaStorageSOPInstanceUID", "")),
        )
    return meta, syntax


def _inflate_to_sidecar(path: Path, work_directory: Path, max_inflated_bytes: int | None) -> Path:
    """Write preamble + File Meta (now saying Explicit VR LE) + the inflated data set to a new file.

    Why chunk by chunk on both sides: deflate can shrink a run of zeros a thousandfold, so one
    megabyte read could inflate to a gigabyte in memory; at most `_INFLATE_CHUNK` bytes are inflated
    at a time, and a data set inflating past the limit (a deflate bomb) is refused as too large."""
    sidecar = work_directory / f"{path.name}.inflated"
    try:
        with open(path, "rb") as source, open(sidecar, "wb") as target:
            read_preamble(source, force=False)
            meta = read_file_meta_info(source)
            inflated_meta = FileMetaDataset(meta)
            inflated_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            target.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(DicomFileLike(target), inflated_meta, enforce_standard=False)
            inflated = _inflate_stream(source, target, max_inflated_bytes)
            if not inflated.eof:
                raise InstanceProblem(Problem.NOT_DICOM, "deflated data set is truncated")
    except zlib.error as exc:
        sidecar.unlink(missing_ok=True)
        raise InstanceProblem(Problem.NOT_DICOM, f"deflated data set is corrupt: {exc}") from exc
    except BaseException:
        sidecar.unlink(missing_ok=True)
        raise
    return sidecar


def _inflate_stream(source: BinaryIO, target: BinaryIO, limit: int | None) -> Any:
    """Inflate `source` (raw deflate) into `target`, at most `_INFLATE_CHUNK` bytes in memory at once;
    the decompressor is returned (its `eof` says whether the stream ended)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    written = 0
    while not inflater.eof:
        pending = inflater.unconsumed_tail or source.read(_INFLATE_CHUNK)
        data = inflater.decompress(pending, _INFLATE_CHUNK)  # b"": what a last match still holds
        if not data and not pending:
            break
        written += len(data)
        if limit is not None and written > limit:
            raise InstanceProblem(
                Problem.TOO_LARGE,
                f"the deflated data set inflates to more than {limit} bytes (FOVEA_MAX_INFLATED_BYTES)",
            )
        target.write(data)
    return inflater


def _parse_data_set(
    handle: BinaryIO, path: Path, meta: FileMetaDataset, syntax: TransferSyntax
) -> ParsedInstance:
    """Read the data set that follows the File Meta in `handle` (large values stay on disk)."""
    file_size = os.fstat(handle.fileno()).st_size
    little_endian = not syntax.big_endian
    try:
        body = read_dataset(handle, syntax.implicit_vr, little_endian, defer_size=DEFER_SIZE)
    except (InvalidDicomError, EOFError, struct.error, ValueError, KeyError) as exc:
        raise InstanceProblem(Problem.NOT_DICOM, f"unreadable DICOM data set: {exc}") from exc
    # A FileDataset knows its file, so pydicom can read a deferred sequence when asked to.
    ds = FileDataset(
        str(path), body, file_meta=meta, is_implicit_VR=syntax.implicit_vr, is_little_endian=little_endian
    )
    if not ds.keys():
        raise InstanceProblem(Problem.NOT_DICOM, "file has no data set after its File Meta")
    sop_class_uid, sop_instance_uid = _naming_uids(ds)
    try:
        _check_complete(ds, file_size)
        _, _, study_uid, series_uid = _read_identity(ds)
        pixel = _describe_pixels(ds)
        frames: tuple[FrameFragment, ...] = ()
        pixel_value_length: int | None = None
        if pixel is not None:
            frames, pixel_value_length = _frame_table(handle, ds, pixel, syntax, file_size)
        for tag in deferred_sequence_tags(ds):  # sequences become metadata, never bulk data
            ds[tag]
        prefix = f"studies/{study_uid}/series/{series_uid}/instances/{sop_instance_uid}/bulkdata"
        converted = dataset_to_dicom_json(
            ds, bulkdata_uri_prefix=prefix, bulkdata_threshold=BULKDATA_THRESHOLD
        )
        bulkdata = _complete_bulkdata(converted.bulkdata, pixel, pixel_value_length, file_size)
        return ParsedInstance(
            transfer_syntax=syntax,
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            patient=patient_attributes(ds),
            study=study_attributes(ds),
            series=series_attributes(ds),
            instance=instance_attributes(ds),
            request_attributes=request_attributes(ds),
            pixel=pixel,
            metadata_json=encode_dicom_json(converted.attributes),
            bulkdata=bulkdata,
            frames=frames,
            lossy_image_compression=text_value(ds, "LossyImageCompression"),
        )
    except InstanceProblem as problem:
        problem.sop_class_uid = problem.sop_class_uid or sop_class_uid
        problem.sop_instance_uid = problem.sop_instance_uid or sop_instance_uid
        raise
    except (FrameTableError, ValueError, TypeError, EOFError, struct.error) as exc:
        raise InstanceProblem(
            Problem.NOT_DICOM,
            f"unreadable DICOM data set: {exc}",
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
        ) from exc
    except NotImplementedError as exc:  # pydicom cannot read a value: an unknown VR (e.g. "ZZ")
        raise InstanceProblem(
            Problem.NOT_DICOM,
            str(exc),  # "Unknown Value Representation 'ZZ' in tag (0009,1001)": fits an Error Comment
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
        ) from exc


_IDENTITY_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def _uid_value(ds: Dataset, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip("\x00 ")
    except (ValueError, TypeError) as exc:
        raise InstanceProblem(Problem.INVALID, f"{keyword} is unreadable: {exc}") from exc
    except NotImplementedError as exc:  # pydicom's word for a VR it does not know (e.g. "ZZ")
        raise InstanceProblem(Problem.NOT_DICOM, str(exc)) from exc


def _naming_uids(ds: Dataset) -> tuple[str, str]:
    """SOP Class and Instance UIDs to name the instance in a failure entry (valid ones only)."""
    names = []
    for keyword in _IDENTITY_KEYWORDS[:2]:
        try:
            value = _uid_value(ds, keyword)
        except InstanceProblem:
            value = ""
        names.append(value if is_valid_uid(value) else "")
    return names[0], names[1]


def _read_identity(ds: Dataset) -> tuple[str, str, str, str]:
    """SOP Class, SOP Instance, Study and Series Instance UIDs: present and well-formed (PS3.5 9.1)."""
    values = [_uid_value(ds, keyword) for keyword in _IDENTITY_KEYWORDS]
    for keyword, value in zip(_IDENTITY_KEYWORDS, values, strict=True):
        if not value:
            raise InstanceProblem(Problem.INVALID, f"{keyword} is missing")
        if not is_valid_uid(value):
            raise InstanceProblem(Problem.INVALID, f"{keyword} is not a valid UID: {value[:64]!r}")
    return values[0], values[1], values[2], values[3]


def _check_complete(ds: Dataset, file_size: int) -> None:
    """Refuse a truncated file (nothing half-stored).

    pydicom stops quietly at a short read, so the signs are checked here: a value running past the end
    of the file, or a few bytes left over after the last element (a cut-off element header).
    """
    end = 0
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset would read deferred values
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement) or raw.length == UNDEFINED_LENGTH:
            end = -1  # a sequence or encapsulated value: its end is checked where it is read
            continue
        end = raw.value_tell + raw.length
        if end > file_size:
            raise InstanceProblem(
                Problem.NOT_DICOM,
                f"file is truncated: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) needs "
                f"{end} bytes, the file has {file_size}",
            )
    if 0 < end < file_size and file_size - end < 8:
        raise InstanceProblem(
            Problem.NOT_DICOM, f"file is truncated: {file_size - end} bytes after the last element"
        )


def _describe_pixels(ds: Dataset) -> ParsedPixelAttributes | None:
    # Pixel Data (7FE0,0010) first: it sorts last, and a data set should hold only one of them
    tag = next((t for t in sorted(PIXEL_DATA_TAGS, reverse=True) if t in ds), None)
    if tag is None:
        return None
    rows, columns, bits_allocated = (
        int_value(ds, "Rows"),
        int_value(ds, "Columns"),
        int_value(ds, "BitsAllocated"),
    )
    if not rows or not columns or not bits_allocated:
        raise InstanceProblem(Problem.INVALID, "pixel data without Rows, Columns or Bits Allocated")
    frames = int_value(ds, "NumberOfFrames")
    if frames is not None and frames < 1:
        raise InstanceProblem(Problem.INVALID, f"Number of Frames is {frames}")
    layout = PixelLayout(
        rows=rows,
        columns=columns,
        samples_per_pixel=int_value(ds, "SamplesPerPixel") or 1,
        bits_allocated=bits_allocated,
        number_of_frames=frames or 1,
        photometric_interpretation=text_value(ds, "PhotometricInterpretation"),
    )
    return ParsedPixelAttributes(
        tag=tag,
        layout=layout,
        bits_stored=int_value(ds, "BitsStored"),
        high_bit=int_value(ds, "HighBit"),
        pixel_representation=int_value(ds, "PixelRepresentation"),
        planar_configuration=int_value(ds, "PlanarConfiguration"),
    )


def _read_value(handle: BinaryIO, raw: Any) -> bytes:
    """The bytes of a raw element, from memory or (when deferred) from the file."""
    if isinstance(raw, RawDataElement):
        if raw.value is not None:
            return bytes(raw.value)
        handle.seek(raw.value_tell)
        return handle.read(raw.length)
    return bytes(raw.value or b"")


def _unpack_64(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(data) // 8}Q", data[: len(data) // 8 * 8])


def _frame_table(
    handle: BinaryIO, ds: Dataset, pixel: ParsedPixelAttributes, syntax: TransferSyntax, file_size: int
) -> tuple[tuple[FrameFragment, ...], int]:
    raw = ds.get_item(pixel.tag, keep_deferred=True)
    if not isinstance(raw, RawDataElement):  # pydicom only converts it if something asked for it
        raise InstanceProblem(Problem.INVALID, "pixel data element could not be located")
    offsets = lengths = None
    if EXTENDED_OFFSET_TABLE in ds and EXTENDED_OFFSET_TABLE_LENGTHS in ds:
        offsets = _unpack_64(_read_value(handle, ds.get_item(EXTENDED_OFFSET_TABLE, keep_deferred=True)))
        lengths = _unpack_64(
            _read_value(handle, ds.get_item(EXTENDED_OFFSET_TABLE_LENGTHS, keep_deferred=True))
        )
    table = build_frame_table(
        handle,
        value_offset=raw.value_tell,
        value_length=None if raw.length == UNDEFINED_LENGTH else raw.length,
        layout=pixel.layout,
        syntax=syntax,
        extended_offsets=offsets or None,
        extended_lengths=lengths or None,
    )
    if raw.value_tell + table.value_length > file_size:
        raise InstanceProblem(Problem.NOT_DICOM, "file is truncated inside the pixel data")
    if syntax.encapsulated and not syntax.is_video:
        _check_frame_headers(handle, table.fragments, pixel.layout, syntax)
    return table.fragments, table.value_length


def _check_frame_headers(
    handle: BinaryIO, fragments: Sequence[FrameFragment], layout: PixelLayout, syntax: TransferSyntax
) -> None:
    """Refuse a frame whose codestream header contradicts the data set (its size, components or
    precision), before anything decodes it. A header that cannot be read at all is stored as
    received, as it always was: every decode refuses it (`decode_to_native`), so it is served only
    as stored."""
    by_frame: dict[int, list[FrameFragment]] = {}
    for fragment in fragments:
        by_frame.setdefault(fragment.frame_number, []).append(fragment)
    for number, parts in by_frame.items():
        try:
            check_stored_frame(
                syntax.codec,
                lambda size, parts=parts: _read_prefix(handle, parts, size),  # type: ignore[misc]
                sum(part.length for part in parts),
                layout,
                what=f"frame {number}",
            )
        except FrameHeaderMismatch as exc:
            raise InstanceProblem(Problem.NOT_DICOM, str(exc)) from exc
        except FrameHeaderUnreadable:
            continue


def _read_prefix(handle: BinaryIO, parts: Sequence[FrameFragment], size: int) -> bytes:
    """The first `size` bytes of a frame, across its fragments."""
    chunks: list[bytes] = []
    left = size
    for part in sorted(parts, key=lambda part: part.fragment_index):
        if left <= 0:
            break
        handle.seek(part.offset)
        chunk = handle.read(min(left, part.length))
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _complete_bulkdata(
    locations: Sequence[BulkDataLocation],
    pixel: ParsedPixelAttributes | None,
    pixel_value_length: int | None,
    file_size: int,
) -> tuple[BulkDataLocation, ...]:
    """Fill in the length of undefined-length pixel data, and check every range is in the file."""
    completed = []
    for location in locations:
        length = location.length
        if length is None:
            if pixel is None or location.path != f"{pixel.tag:08X}" or pixel_value_length is None:
                raise InstanceProblem(
                    Problem.INVALID, f"undefined-length value at {location.path} is not pixel data"
                )
            location = BulkDataLocation(
                location.path,
                location.vr,
                location.offset,
                pixel_value_length,
                location.little_endian,
            )
            length = pixel_value_length
        if location.offset + length > file_size:
            raise InstanceProblem(Problem.NOT_DICOM, f"file is truncated inside {location.path}")
        completed.append(location)
    return tuple(completed)
