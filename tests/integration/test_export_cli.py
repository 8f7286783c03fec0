"""`fovea export`, run as a real process on an embedded installation (SQLite + folder)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.uid import generate_uid
from pypdf import PdfReader

from app.lifecycle.pseudonyms import Pseudonyms
from tests.dicom_files import corpus_file, make_instance
from tests.integration.test_cli import run_fovea

SECRET = "export-test-secret-0123456789abcdefghij"
DEID_ENV = {"FOVEA_DEID_SECRET": SECRET}
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
AXIAL_MIRRORED = [-1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # rows run to the patient's right


def oriented_instance(
    study: str, series: str, number: int, orientation: list[float], **extra: object
) -> bytes:
    ds = pydicom.dcmread(
        io.BytesIO(make_instance(study_uid=study, series_uid=series, rows=8, columns=12, seed=7))
    )
    ds.ImageOrientationPatient = orientation
    ds.InstanceNumber = number
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.InstitutionName = "St Elsewhere Hospital"
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# The data directory, the files imported by name, the CT study's UID and the MR study's UID.
Archive = tuple[Path, dict[str, bytes], str, str]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """An installation holding a CT study of three instances and pydicom's JPEG-LS MR study."""
    root = tmp_path_factory.mktemp("export")
    data_dir, incoming = root / "data", root / "incoming"
    incoming.mkdir()
    study, series = generate_uid(), generate_uid()
    files = {
        "axial.dcm": oriented_instance(study, series, 1, AXIAL),
        "mirrored.dcm": oriented_instance(study, series, 2, AXIAL_MIRRORED),
        "burned.dcm": oriented_instance(study, series, 3, AXIAL, BurnedInAnnotation="YES"),
        "jpegls.dcm": corpus_file("MR_small_jpeg_ls_lossless.dcm").path.read_bytes(),
    }
    for name, data in files.items():
        (incoming / name).write_bytes(data)
    result = run_fovea("import", str(incoming), "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir, files, study, corpus_file("MR_small_jpeg_ls_lossless.dcm").study_instance_uid


def exported(out: Path, suffix: str) -> list[Path]:
    return sorted(p for p in out.rglob(f"*{suffix}") if p.is_file())


def audit_events(data_dir: Path, study: str) -> list[dict[str, Any]]:
    result = run_fovea("audit", "--study", study, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return [event for event in map(json.loads, result.stdout.splitlines()) if event["action"] == "export"]


def test_part10_export_is_the_stored_files_and_every_hash_is_audited(
    archive: Archive, tmp_path: Path
) -> None:
    data_dir, files, study, mr_study = archive
    out = tmp_path / "out"
    result = run_fovea("export", study, mr_study, "--out", str(out), "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert "4 files" in result.stdout
    written = exported(out, ".dcm")
    assert sorted(p.read_bytes() for p in written) == sorted(files.values())  # byte for byte
    for path in written:
        ds = pydicom.dcmread(path)
        assert (
            path.relative_to(out).as_posix()
            == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        )
    sums: dict[str, str] = {}
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        sums[name] = digest
    assert sums == {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in written
    }
    [event] = audit_events(data_dir, study)
    assert event["studies"] == [study] and len(event["instances"]) == 3
    assert {(f["path"], f["sha256"], f["size"]) for f in event["files"]} == {
        (p.relative_to(out).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size)
        for p in written
        if p.relative_to(out).parts[0] == study
    }
    assert event["principal_kind"] == "operator" and event["status"] == 200


def test_deidentified_export_leaves_no_identifier_and_keeps_frames_bit_exact(
    archive: Archive, tmp_path: Path
) -> None:
    data_dir, files, study, mr_study = archive
    out = tmp_path / "out"
    result = run_fovea(
        "export",
        study,
        mr_study,
        "--out",
        str(out),
        "--deidentify",
        "basic",
        "--data-dir",
        str(data_dir),
        env=DEID_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "1 withheld" in result.stdout  # Burned In Annotation YES
    written = exported(out, ".dcm")
    assert len(written) == 3
    originals = [pydicom.dcmread(io.BytesIO(data)) for data in files.values()]
    pseudonyms = Pseudonyms(SECRET)
    identifiers = [
        text.encode()
        for ds in originals
        for text in (
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
            str(ds.PatientName),
            ds.PatientID,
        )
        if text
    ]
    by_new_uid = {pseudonyms.uid(ds.SOPInstanceUID): ds for ds in originals}
    for path in written:
        content = path.read_bytes()
        assert not [identifier for identifier in identifiers if identifier in content]
        assert all(identifier.decode() not in path.as_posix() for identifier in identifiers)
        copy = pydicom.dcmread(path)
        original = by_new_uid[copy.SOPInstanceUID]
        assert copy.StudyInstanceUID == pseudonyms.uid(original.StudyInstanceUID)
        assert copy.PatientIdentityRemoved == "YES"
        assert "InstitutionName" not in copy
        assert copy.PixelData == original.PixelData
        assert np.array_equal(copy.pixel_array, original.pixel_array)
    ct = [pydicom.dcmread(p) for p in written if pydicom.dcmread(p).Modality == "CT"]
    assert len({ds.SeriesInstanceUID for ds in ct}) == 1  # one series still
    [event] = [e for e in audit_events(data_dir, study) if "--deidentify" in str(e["route"])]
    assert event["studies"] == [study]  # the trail names what left, by its original UID


def test_png_export_is_16_bit_windowed_and_oriented(archive: Archive, tmp_path: Path) -> None:
    data_dir, files, study, _mr = archive
    out, narrow = tmp_path / "stored", tmp_path / "narrow"
    assert (
        run_fovea(
            "export", study, "--out", str(out), "--format", "png", "--data-dir", str(data_dir)
        ).returncode
        == 0
    )
    result = run_fovea(
        "export",
        study,
        "--out",
        str(narrow),
        "--format",
        "png",
        "--window",
        "0,100",
        "--data-dir",
        str(data_dir),
    )
    assert result.returncode == 0, result.stderr
    by_number = {}
    for path in exported(out, ".png"):
        image = Image.open(path)
        assert image.mode == "I;16"  # Bits Stored 16: 16-bit grey
        sop = path.stem
        number = next(
            pydicom.dcmread(io.BytesIO(d)).InstanceNumber
            for d in files.values()
            if pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID == sop
        )
        by_number[number] = np.asarray(image)
    assert by_number[1].shape == (8, 12)
    assert np.array_equal(by_number[2], by_number[1][:, ::-1])  # mirrored rows come out unmirrored
    stored = pydicom.dcmread(io.BytesIO(files["axial.dcm"])).pixel_array.astype(np.float64)
    expected = np.rint(np.clip((stored - 39.5) / 399 + 0.5, 0, 1) * 65535)  # PS3.3 C.11.2.1.2, c 40 w 400
    assert np.array_equal(by_number[1], expected)
    assert not np.array_equal(
        np.asarray(Image.open(exported(narrow, ".png")[0])), np.asarray(Image.open(exported(out, ".png")[0]))
    )


def test_tiff_export_holds_the_stored_values_losslessly(archive: Archive, tmp_path: Path) -> None:
    data_dir, files, study, mr_study = archive
    out = tmp_path / "out"
    result = run_fovea(
        "export", study, mr_study, "--out", str(out), "--format", "tiff", "--data-dir", str(data_dir)
    )
    assert result.returncode == 0, result.stderr
    for path in exported(out, ".tiff"):
        original = next(
            ds
            for ds in (pydicom.dcmread(io.BytesIO(d)) for d in files.values())
            if ds.SOPInstanceUID == path.stem
        )
        values = tifffile.imread(path)
        expected = original.pixel_array
        if [float(v) for v in original.get("ImageOrientationPatient", AXIAL)] == AXIAL_MIRRORED:
            expected = expected[:, ::-1]
        assert values.dtype == expected.dtype and values.dtype.itemsize == 2
        assert np.array_equal(values, expected)


def test_nothing_is_written_for_a_study_not_stored_or_without_a_secret(
    archive: Archive, tmp_path: Path
) -> None:
    data_dir, _files, study, _mr = archive
    out = tmp_path / "out"
    missing = run_fovea("export", study, "1.2.3.999", "--out", str(out), "--data-dir", str(data_dir))
    assert missing.returncode == 2
    assert "not stored: 1.2.3.999" in missing.stderr
    assert not out.exists()
    no_secret = run_fovea(
        "export", study, "--out", str(out), "--deidentify", "basic", "--data-dir", str(data_dir)
    )
    assert no_secret.returncode == 2
    assert "FOVEA_DEID_SECRET" in no_secret.stderr
    assert not out.exists()
    shutil.rmtree(out, ignore_errors=True)


def test_pdf_report_has_one_page_per_key_slice_and_nothing_of_the_patient(
    archive: Archive, tmp_path: Path
) -> None:
    data_dir, _files, study, mr_study = archive
    out = tmp_path / "out"
    result = run_fovea(
        "export", study, mr_study, "--out", str(out), "--format", "pdf", "--slices", "0%,100%",
        "--deidentify", "basic", "--data-dir", str(data_dir), env=DEID_ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pseudonyms = Pseudonyms(SECRET)
    reports = sorted(out.rglob("*.pdf"))
    assert [p.relative_to(out).as_posix() for p in reports] == sorted(
        f"{pseudonyms.uid(uid)}/report.pdf" for uid in (study, mr_study)
    )
    ct_report = out / pseudonyms.uid(study) / "report.pdf"
    assert len(PdfReader(ct_report).pages) == 2  # first and last of the two shown; the burned-in one withheld
    assert len(PdfReader(out / pseudonyms.uid(mr_study) / "report.pdf").pages) == 1  # a one-image series
    for report in reports:
        content = report.read_bytes()
        assert b"Doe" not in content and study.encode() not in content and mr_study.encode() not in content
    [event] = [e for e in audit_events(data_dir, study) if "--format pdf" in str(e["route"])]
    assert [f["path"] for f in event["files"]] == [f"{pseudonyms.uid(study)}/report.pdf"]
