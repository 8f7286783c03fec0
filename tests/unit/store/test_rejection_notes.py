"""Recognising an IHE IOCM rejection note from a parsed Key Object Selection Document (highdicom)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from app.store.write.parse import ParsedInstance, parse_instance
from app.store.write.rejection import REJECTION_CODES, RejectedReference, rejection_note_of
from tests.dicom_files import make_instance

_TYPE_2 = (
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyTime",
    "ReferringPhysicianName",
    "AccessionNumber",
)


def _evidence(study: str, series: str, uids: list[str]) -> list[pydicom.Dataset]:
    found: list[pydicom.Dataset] = []
    for seed, uid in enumerate(uids):
        ds = pydicom.dcmread(
            io.BytesIO(make_instance(study_uid=study, series_uid=series, sop_uid=uid, seed=seed))
        )
        for keyword in _TYPE_2:
            setattr(ds, keyword, "")
        found.append(ds)
    return found


def _parsed_note(
    tmp_path: Path, title: Code, evidence: list[pydicom.Dataset], note_uid: str
) -> ParsedInstance:
    document = KeyObjectSelectionDocument(
        evidence=evidence,
        content=KeyObjectSelection(document_title=title, referenced_objects=evidence),
        series_instance_uid=generate_uid(),
        series_number=1,
        sop_instance_uid=note_uid,
        instance_number=1,
    )
    path = tmp_path / "note.dcm"
    document.save_as(path, enforce_file_format=True)
    return parse_instance(path, work_directory=tmp_path)


@pytest.mark.parametrize("code", sorted(REJECTION_CODES))
def test_each_rejection_title_names_every_referenced_instance(tmp_path: Path, code: str) -> None:
    study, series, uids, note_uid = (
        generate_uid(),
        generate_uid(),
        [str(generate_uid()) for _ in range(3)],
        generate_uid(),
    )
    parsed = _parsed_note(
        tmp_path, Code(code, "DCM", REJECTION_CODES[code]), _evidence(study, series, uids), note_uid
    )
    note = rejection_note_of(parsed)
    assert note is not None
    assert (note.sop_instance_uid, note.reason_code, note.reason) == (note_uid, code, REJECTION_CODES[code])
    assert note.references == tuple(RejectedReference(study, series, uid) for uid in uids)


@pytest.mark.parametrize(
    "title",
    [Code("113000", "DCM", "Of Interest"), Code("113001", "99LOCAL", "Rejected for Quality Reasons")],
    ids=["another DCM title", "the code in another scheme"],
)
def test_other_titles_are_not_rejection_notes(tmp_path: Path, title: Code) -> None:
    parsed = _parsed_note(
        tmp_path, title, _evidence(generate_uid(), generate_uid(), [generate_uid()]), generate_uid()
    )
    assert rejection_note_of(parsed) is None


def test_an_image_is_not_a_rejection_note(tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    path.write_bytes(make_instance())
    assert rejection_note_of(parse_instance(path, work_directory=tmp_path)) is None
