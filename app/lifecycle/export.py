"""`fovea export`: stored studies written to a folder as Part 10 files, PNG, TIFF or PDF, maybe de-identified.

Layout: OUT/<study>/<series>/<instance>.dcm (or .png/.tiff, `-<frame>` added for each frame of a
multi-frame image; a PDF report is OUT/<study>/report.pdf), named by the UIDs the files carry: the
replacement UIDs when de-identified, so no original UID leaves in a file name either. OUT/SHA256SUMS
lists every file written (`sha256sum -c SHA256SUMS` checks them).

Evidence: one audit event per study (action `export`, the operator's login as principal), holding
the original UIDs exported and the path, SHA-256 and size of every file written.

Part 10 without de-identification is the stored file, byte for byte. De-identified, the data set is
read, cleaned (deidentify.py) and written again; its pixel data (compressed or not) is left as it was.
Instances whose Burned In Annotation is YES are withheld from a de-identified export unless asked
for: their pixels may show the patient's name.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy import Engine

from app.audit.actions import Action
from app.audit.events import AuditEvent, WrittenFile
from app.audit.trail import AuditTrail
from app.dicomweb.scope import Scope
from app.dicomweb.uids import is_valid_uid
from app.imaging.codecs.decode import FrameDecodeError
from app.imaging.display import RenderError, Window
from app.lifecycle.deidentify import Deidentifier
from app.lifecycle.export_images import ImageExportError, decoded_frames, png_bytes, tiff_bytes
from app.lifecycle.export_pdf import ReportPage, pick_key_slices, report_page, report_pdf
from app.store.infra.blobs import BlobStore, open_blob
from app.store.read.retrieval import StoredInstance, stored_instances

OPERATOR_KIND = "operator"  # the audit principal kind of a command run by a person at the server
MANIFEST = "SHA256SUMS"


class ExportFormat(StrEnum):
    DICOM = "dicom"
    PNG = "png"
    TIFF = "tiff"
    PDF = "pdf"


class ExportError(ValueError):
    """An export that cannot start (studies not stored); nothing has been written."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    output: Path
    image_format: ExportFormat = ExportFormat.DICOM
    deidentifier: Deidentifier | None = None
    window: Window | None = None  # None: each image's stored window (or the automatic one)
    include_burned_in: bool = False  # de-identified: also instances with Burned In Annotation YES
    slices: tuple[float, ...] = (0.25, 0.5, 0.75)  # PDF: the key slices of each series, as fractions


@dataclass(slots=True)
class StudyExport:
    """What one study's export wrote, and what it could not."""

    study_instance_uid: str
    instances: int = 0
    written: list[WrittenFile] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # SOP Instance UIDs (burned-in annotation)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (SOP Instance UID, reason)


@dataclass(slots=True)
class ExportSummary:
    studies: list[StudyExport] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(len(study.written) for study in self.studies)

    @property
    def bytes_written(self) -> int:
        return sum(written.size for study in self.studies for written in study.written)

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [failure for study in self.studies for failure in study.failed]

    @property
    def withheld(self) -> int:
        return sum(len(study.withheld) for study in self.studies)


def find_studies(engine: Engine, study_uids: Sequence[str]) -> dict[str, list[StoredInstance]]:
    """The stored instances of each study; ExportError naming the studies that are not stored."""
    found: dict[str, list[StoredInstance]] = {}
    with engine.connect() as connection:
        for uid in dict.fromkeys(study_uids):
            found[uid] = stored_instances(connection, Scope(uid))
    missing = [uid for uid, instances in found.items() if not instances]
    if missing:
        raise ExportError(f"not stored: {', '.join(missing)}")
    return found


Advance = Callable[[int], None]  # called with the bytes read for each instance done


def export_studies(
    studies: dict[str, list[StoredInstance]],
    blobs: BlobStore,
    options: ExportOptions,
    trail: AuditTrail,
    *,
    advance: Advance = lambda _bytes: None,
) -> ExportSummary:
    """Write every instance of `studies` under `options.output`; audit each study; write the manifest."""
    options.output.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    for study_uid, instances in studies.items():
        started = datetime.now(UTC)
        result = StudyExport(study_uid, instances=len(instances))
        if options.image_format is ExportFormat.PDF:
            _export_report(blobs, instances, options, result, advance)
        else:
            for instance in instances:
                _export_instance(blobs, instance, options, result)
                advance(instance.blob_size)
        summary.studies.append(result)
        trail.record(_audit_event(started, result, instances, options))
    _write_manifest(options.output, summary)
    return summary


def _instance_files(
    blobs: BlobStore, instance: StoredInstance, options: ExportOptions, result: StudyExport
) -> Iterator[tuple[str, bytes]]:
    """(path under the output folder, content) of each file the instance becomes, when it is read and
    written again (de-identified, or as images)."""
    with open_blob(blobs, instance.blob_key, instance.blob_size) as stream:
        ds = pydicom.dcmread(stream)
    if options.deidentifier is not None:
        if _burned_in(ds) and not options.include_burned_in:
            result.withheld.append(instance.sop_instance_uid)
            return
        options.deidentifier.deidentify(ds)
    base = _path(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), "")
    if options.image_format is ExportFormat.DICOM:
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        yield base + ".dcm", buffer.getvalue()
        return
    yield from _image_files(ds, base, options)


def _export_instance(
    blobs: BlobStore, instance: StoredInstance, options: ExportOptions, result: StudyExport
) -> None:
    """Write the files of one instance; a failure is noted in `result`, and the export goes on."""
    try:
        if options.image_format is ExportFormat.DICOM and options.deidentifier is None:
            result.written.append(_copy_stored_file(blobs, instance, options.output))
        else:
            for name, data in _instance_files(blobs, instance, options, result):
                result.written.append(_write(options.output, name, data))
    except (OSError, InvalidDicomError, ValueError, KeyError, AttributeError) as exc:
        result.failed.append((instance.sop_instance_uid, f"{type(exc).__name__}: {exc}"))


def _export_report(
    blobs: BlobStore,
    instances: list[StoredInstance],
    options: ExportOptions,
    result: StudyExport,
    advance: Advance,
) -> None:
    """The study's PDF report (export_pdf.py): key slices chosen by the series' headers, read whole."""
    members: dict[str, list[tuple[StoredInstance, Dataset]]] = {}
    for instance in instances:
        try:
            if instance.pixels is not None:
                with open_blob(blobs, instance.blob_key, instance.blob_size) as stream:
                    header = pydicom.dcmread(stream, stop_before_pixels=True)
                if options.deidentifier is not None and _burned_in(header) and not options.include_burned_in:
                    result.withheld.append(instance.sop_instance_uid)
                else:
                    members.setdefault(instance.series_instance_uid, []).append((instance, header))
        except (OSError, InvalidDicomError, ValueError) as exc:
            result.failed.append((instance.sop_instance_uid, f"{type(exc).__name__}: {exc}"))
        advance(instance.blob_size)
    pages: list[ReportPage] = []
    study_uid = result.study_instance_uid
    for series in members.values():
        for index, number in pick_key_slices([header for _instance, header in series], options.slices):
            instance = series[index][0]
            try:
                with open_blob(blobs, instance.blob_key, instance.blob_size) as stream:
                    ds = pydicom.dcmread(stream)
                if options.deidentifier is not None:
                    options.deidentifier.deidentify(ds)
                pages.append(report_page(ds, number, len(series)))
                study_uid = str(ds.StudyInstanceUID)
            except (OSError, InvalidDicomError, ValueError, KeyError, AttributeError, StopIteration) as exc:
                result.failed.append((instance.sop_instance_uid, f"{type(exc).__name__}: {exc}"))
    if pages:
        title = "Key images" + (" (de-identified)" if options.deidentifier is not None else "")
        if is_valid_uid(study_uid):
            result.written.append(_write(options.output, f"{study_uid}/report.pdf", report_pdf(pages, title)))
        else:
            result.failed.append((result.study_instance_uid, f"not a UID, not a folder name: {study_uid!r}"))


def _burned_in(ds: Dataset) -> bool:
    return str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES"


def _image_files(ds: Dataset, base: str, options: ExportOptions) -> Iterator[tuple[str, bytes]]:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    suffix = "." + options.image_format.value
    try:
        for number, frame in enumerate(decoded_frames(ds), start=1):
            name = base + (f"-{number:04d}" if count > 1 else "") + suffix
            if options.image_format is ExportFormat.PNG:
                yield name, png_bytes(frame, ds, number, options.window)
            else:
                yield name, tiff_bytes(frame, ds, number)
    except (FrameDecodeError, RenderError, ImageExportError) as exc:
        raise ValueError(f"not written as {options.image_format.value.upper()}: {exc}") from exc


def _path(study: str, series: str, instance: str, suffix: str) -> str:
    """study/series/instance+suffix; UIDs only, so no name can climb out of the output folder."""
    bad = [uid for uid in (study, series, instance) if not is_valid_uid(uid)]
    if bad:
        raise ValueError(f"not a UID, not used as a file name: {bad[0]!r}")
    return f"{study}/{series}/{instance}{suffix}"


def _write(output: Path, name: str, data: bytes) -> WrittenFile:
    _write_whole(output / name, iter((data,)))
    return WrittenFile(name, hashlib.sha256(data).hexdigest(), len(data))


def _write_whole(target: Path, chunks: Iterator[bytes]) -> int:
    """Write `chunks` to `target` whole or not at all (a temporary file renamed into place); the size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".export-")
    size = 0
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
                size += len(chunk)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return size


def _copy_stored_file(blobs: BlobStore, instance: StoredInstance, output: Path) -> WrittenFile:
    """The stored file copied as it is, streamed (an instance may be gigabytes), hashed on the way."""
    name = _path(instance.study_instance_uid, instance.series_instance_uid, instance.sop_instance_uid, ".dcm")
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        read = 0
        for chunk in blobs.iter_range(instance.blob_key, 0, instance.blob_size):
            digest.update(chunk)
            read += len(chunk)
            yield chunk
        if read != instance.blob_size:  # raised before the file is renamed into place: nothing written
            raise OSError(f"the stored file has {read} bytes, the index says {instance.blob_size}")

    size = _write_whole(output / name, chunks())
    return WrittenFile(name, digest.hexdigest(), size)


def _write_manifest(output: Path, summary: ExportSummary) -> None:
    lines = [f"{w.sha256}  {w.path}\n" for study in summary.studies for w in study.written]
    (output / MANIFEST).write_text("".join(lines), encoding="utf-8")


def _audit_event(
    started: datetime, result: StudyExport, instances: list[StoredInstance], options: ExportOptions
) -> AuditEvent:
    route = f"fovea export --format {options.image_format.value}"
    if options.deidentifier is not None:
        route += " --deidentify basic"
    return AuditEvent(
        time=started,
        action=Action.EXPORT,
        principal_kind=OPERATOR_KIND,
        principal=_operator(),
        username=None,
        client=None,
        method="CLI",
        route=route,
        status=500 if result.failed else 200,
        bytes_in=sum(instance.blob_size for instance in instances),
        bytes_out=sum(written.size for written in result.written),
        studies=(result.study_instance_uid,),
        series=tuple(dict.fromkeys(instance.series_instance_uid for instance in instances)),
        instances=tuple(instance.sop_instance_uid for instance in instances),
        files=tuple(result.written),
    )


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name for this user id (a container's)
        return f"uid {os.getuid()}"
