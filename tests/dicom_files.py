"""Test data: real files from pydicom's corpus, generated instances and multipart bodies."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypedDict

import numpy as np
import pydicom
import pydicom.data
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import unpack_bits
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

import app.imaging.syntaxes  # noqa: F401 - registers the syntaxes pydicom 3.0.2 lacks
from app.imaging.syntaxes import find_transfer_syntax


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    transfer_syntax_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    has_pixels: bool

    def __str__(self) -> str:
        return self.path.name


@cache
def corpus_files() -> tuple[CorpusFile, ...]:
    """pydicom's local test files that are Part 10 files Fovea can store (no network look-ups)."""
    found = []
    for name in sorted(pydicom.data.get_testdata_files()):
        path = Path(name)
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, defer_size=64)
        except (InvalidDicomError, ValueError, EOFError, OSError):
            continue
        meta = getattr(ds, "file_meta", None)
        syntax = str(meta.get("TransferSyntaxUID", "")) if meta else ""
        uids = [
            str(ds.get(k, ""))
            for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")
        ]
        if not find_transfer_syntax(syntax) or not all(uids):
            continue
        has_pixels = any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009))
        found.append(CorpusFile(path, syntax, uids[0], uids[1], has_pixels))
    return tuple(found)


def corpus_file(name: str) -> CorpusFile:
    return next(f for f in corpus_files() if f.path.name == name)


class InstanceUIDs(TypedDict):
    """Where `make_instance(**uids)` files an instance: one set, reused, replaces that instance."""

    study_uid: str
    series_uid: str
    sop_uid: str


def new_instance_uids() -> InstanceUIDs:
    return {"study_uid": generate_uid(), "series_uid": generate_uid(), "sop_uid": generate_uid()}


def unpacked_bits(packed: bytes) -> bytes:
    """1-bit pixel data, one byte a pixel (pydicom's unpack_bits)."""
    unpacked = unpack_bits(packed, as_array=False)
    assert isinstance(unpacked, bytes)
    return unpacked


def make_instance(
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    rows: int = 64,
    columns: int = 64,
    frames: int = 1,
    patient_id: str = "FOVEA-1",
    patient_name: str = "Doe^Jane",
    seed: int = 0,
) -> bytes:
    """A CT Image Storage Part 10 file, 16-bit signed, Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid or generate_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.StudyDate = "20260101"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    if frames > 1:
        ds.NumberOfFrames = frames
    pixels = np.random.default_rng(seed).integers(-1024, 3000, (frames, rows, columns), dtype=np.int16)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def multipart_body(
    parts: Sequence[bytes],
    boundary: str = "fovea-test-boundary",
    *,
    content_type: str | None = "application/dicom",
    leading_crlf: bool = False,
    final_crlf: bool = True,
) -> bytes:
    """A multipart/related body around `parts`, with the variations real clients produce."""
    chunks = [b"\r\n"] if leading_crlf else []
    for part in parts:
        chunks.append(f"--{boundary}\r\n".encode())
        if content_type:
            chunks.append(f"Content-Type: {content_type}\r\n".encode())
        chunks.append(b"\r\n")
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--".encode())
    if final_crlf:
        chunks.append(b"\r\n")
    return b"".join(chunks)


def stow_content_type(boundary: str = "fovea-test-boundary", *, quoted: bool = True) -> str:
    b = f'"{boundary}"' if quoted else boundary
    return f'multipart/related; type="application/dicom"; boundary={b}'
