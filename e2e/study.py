"""Test studies for the viewer: pydicom's sample images as a new multi-series study, stored by STOW-RS.

Why new UIDs: each run gets a study no other run or test has stored, with a patient name the study list
can be searched for.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from e2e.servers import FOVEA_COMMAND


@dataclass(frozen=True)
class SeriesSource:
    """One series of the study: copies of one sample file, one slice apart."""

    sample: str  # a file name pydicom.data ships, e.g. "CT_small.dcm"
    description: str
    instances: int


# The viewer's default layout shows the first series (SeriesNumber 1): the CT slice.
SERIES_SOURCES = (
    SeriesSource("CT_small.dcm", "E2E CT", instances=3),
    SeriesSource("MR_small.dcm", "E2E MR", instances=3),
)


def sample_path(name: str) -> str:
    """The path of a file pydicom.data ships (no download: only bundled files are used)."""
    path = get_testdata_file(name)
    if not isinstance(path, str):
        raise FileNotFoundError(f"pydicom ships no test file {name}")
    return path


def first_series_pixels() -> np.ndarray:
    """The stored pixel values of the image the viewer's default layout shows (series 1)."""
    return pydicom.dcmread(sample_path(SERIES_SOURCES[0].sample)).pixel_array


@dataclass(frozen=True)
class StoredStudy:
    study_instance_uid: str
    patient_name: str
    files: tuple[Path, ...]  # Part 10 files, one per instance


def write_study(folder: Path, patient_name: str, description: str) -> StoredStudy:
    """Write a new study (one series per SERIES_SOURCES entry) as Part 10 files under folder."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    patient_id = f"E2E-{uuid.uuid4().hex[:8]}"  # unique: OHIF searches the patient's other studies by it
    files = []
    for series_number, source in enumerate(SERIES_SOURCES, start=1):
        series_uid = generate_uid()
        for instance_number in range(1, source.instances + 1):
            dataset = pydicom.dcmread(sample_path(source.sample))
            dataset.StudyInstanceUID = study_uid
            dataset.SeriesInstanceUID = series_uid
            dataset.SOPInstanceUID = generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            dataset.PatientName = patient_name
            dataset.PatientID = patient_id
            dataset.StudyDescription = description
            dataset.SeriesDescription = source.description
            dataset.SeriesNumber = series_number
            dataset.InstanceNumber = instance_number
            _place_slice(dataset, instance_number)
            path = folder / f"s{series_number}-i{instance_number}.dcm"
            dataset.save_as(path, enforce_file_format=True)
            files.append(path)
    return StoredStudy(study_uid, patient_name, tuple(files))


def _place_slice(dataset: Dataset, instance_number: int) -> None:
    """Move the slice along its normal so the series is a plausible stack, one slice apart."""
    thickness = float(dataset.get("SliceThickness") or 1.0)
    x, y, z = (float(value) for value in dataset.ImagePositionPatient)
    offset = (instance_number - 1) * thickness
    dataset.ImagePositionPatient = [x, y, z + offset]
    if "SliceLocation" in dataset:
        dataset.SliceLocation = float(dataset.SliceLocation) + offset


def transcode_study(study: StoredStudy, folder: Path, syntax_uid: str) -> StoredStudy:
    """The same study converted into another transfer syntax by `fovea transcode`."""
    source = study.files[0].parent
    command = [str(FOVEA_COMMAND), "transcode", str(source), str(folder), "--syntax", syntax_uid]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr}")
    return dataclasses.replace(study, files=tuple(folder / path.name for path in study.files))


def store_instances(
    dicomweb_url: str, files: tuple[Path, ...], credentials: dict[str, str] | None = None
) -> httpx.Response:
    """STOW-RS: one multipart/related request, one application/dicom part per file."""
    boundary = f"e2e-{uuid.uuid4().hex}"
    body = bytearray()
    for path in files:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += path.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
        **(credentials or {}),
    }
    return httpx.post(f"{dicomweb_url}/studies", content=bytes(body), headers=headers, timeout=60)


def stored_transfer_syntaxes(dicomweb_url: str, study: StoredStudy) -> set[str]:
    """Transfer syntaxes the study's instances are stored in: WADO-RS with transfer-syntax=* (as stored)."""
    syntaxes = set()
    for path in study.files:
        local = pydicom.dcmread(path, stop_before_pixels=True)
        url = (
            f"{dicomweb_url}/studies/{local.StudyInstanceUID}/series/{local.SeriesInstanceUID}"
            f"/instances/{local.SOPInstanceUID}"
        )
        response = httpx.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"}, timeout=60)
        response.raise_for_status()
        stored = pydicom.dcmread(io.BytesIO(response.content), stop_before_pixels=True)
        syntaxes.add(str(stored.file_meta.TransferSyntaxUID))
    return syntaxes
