"""De-identification beyond the table: consistency of UIDs, pixel data, and the Annex E options."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.lifecycle.confidentiality_profile import DateHandling, ProfileOptions
from app.lifecycle.deidentify import Deidentifier
from app.lifecycle.pseudonyms import Pseudonyms
from tests.dicom_files import corpus_file, make_instance

SECRET = "unit-test-secret-for-deidentification-0001"


def deidentifier(secret: str = SECRET, **options: object) -> Deidentifier:
    return Deidentifier(Pseudonyms(secret), ProfileOptions(**options))  # type: ignore[arg-type]


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def series_of(count: int, **kwargs: object) -> list[Dataset]:
    study, series = generate_uid(), generate_uid()
    return [read(make_instance(study_uid=study, series_uid=series, seed=i, **kwargs)) for i in range(count)]  # type: ignore[arg-type]


def test_uids_are_consistent_across_a_series_and_pixel_data_is_untouched() -> None:
    originals = series_of(3)
    copies = [deidentifier().deidentify(read(_bytes(ds))) for ds in originals]
    assert len({ds.StudyInstanceUID for ds in copies}) == 1
    assert len({ds.SeriesInstanceUID for ds in copies}) == 1
    assert len({ds.SOPInstanceUID for ds in copies}) == 3
    pseudonyms = Pseudonyms(SECRET)
    for original, copy in zip(originals, copies, strict=True):
        assert copy.StudyInstanceUID == pseudonyms.uid(original.StudyInstanceUID) != original.StudyInstanceUID
        assert copy.SOPInstanceUID == pseudonyms.uid(original.SOPInstanceUID)
        assert copy.file_meta.MediaStorageSOPInstanceUID == copy.SOPInstanceUID
        assert copy.PixelData == original.PixelData
        assert copy.PatientID == pseudonyms.patient_id("FOVEA-1") != "FOVEA-1"
        assert not copy.PatientName
        assert copy.PatientIdentityRemoved == "YES"
        assert pydicom.uid.UID(copy.SOPInstanceUID).is_valid


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_reference_to_another_instance_follows_its_new_uid() -> None:
    target, referring = series_of(2)
    item = Dataset()
    item.ReferencedSOPClassUID = target.SOPClassUID
    item.ReferencedSOPInstanceUID = target.SOPInstanceUID
    referring.ReferencedImageSequence = [item]
    cleaner = deidentifier()
    new_target = cleaner.deidentify(target)
    new_referring = cleaner.deidentify(referring)
    assert new_referring.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_target.SOPInstanceUID


def test_another_secret_gives_other_uids_and_uids_are_valid_uuid_form() -> None:
    uid = "1.2.3.4.5"
    one, other = Pseudonyms(SECRET).uid(uid), Pseudonyms(SECRET + "x").uid(uid)
    assert one != other
    assert one == Pseudonyms(SECRET).uid(uid)
    for new in (one, other):
        assert new.startswith("2.25.") and len(new) <= 64 and pydicom.uid.UID(new).is_valid


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Pseudonyms("short")


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm"])
def test_compressed_frames_stay_bit_exact(name: str) -> None:
    source = corpus_file(name).path
    original = pydicom.dcmread(source)
    copy = deidentifier().deidentify(pydicom.dcmread(source))
    rewritten = read(_bytes(copy))
    assert rewritten.PixelData == original.PixelData  # the encapsulated bytes, unchanged
    assert np.array_equal(rewritten.pixel_array, original.pixel_array)
    assert rewritten.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID


def test_modified_dates_shift_every_study_of_a_patient_by_the_same_days_and_keep_times() -> None:
    first, second = read(make_instance()), read(make_instance())
    first.StudyDate, second.StudyDate = "20260101", "20260111"
    first.StudyTime = "101500"
    first.AcquisitionDateTime = "20260101101600.5+0100"
    first.PatientBirthDate = "19700101"
    cleaner = deidentifier(dates=DateHandling.MODIFIED)
    cleaner.deidentify(first)
    cleaner.deidentify(second)
    shift = Pseudonyms(SECRET).date_shift_days("FOVEA-1")
    assert shift < 0
    expected = date(2026, 1, 1) + timedelta(days=shift)
    assert first.StudyDate == expected.strftime("%Y%m%d")
    assert first.StudyTime == "101500"
    assert first.AcquisitionDateTime == expected.strftime("%Y%m%d") + "101600.5+0100"
    assert not first.PatientBirthDate  # patient-level dates follow the table (Z)
    # Ten days apart before, ten days apart after.
    assert (date.fromisoformat(second.StudyDate) - date.fromisoformat(first.StudyDate)).days == 10
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"


def test_full_dates_keep_dates_and_basic_profile_empties_them() -> None:
    kept, removed = read(make_instance()), read(make_instance())
    deidentifier(dates=DateHandling.FULL).deidentify(kept)
    deidentifier(dates=DateHandling.REMOVE).deidentify(removed)
    assert kept.StudyDate == "20260101"
    assert not removed.StudyDate
    assert "113106" in [item.CodeValue for item in kept.DeidentificationMethodCodeSequence]


def test_retain_uids_keeps_uids() -> None:
    ds = read(make_instance())
    study = ds.StudyInstanceUID
    deidentifier(retain_uids=True).deidentify(ds)
    assert ds.StudyInstanceUID == study
    assert "113110" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


def with_private(ds: Dataset) -> Dataset:
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")  # B_value: safe
    siemens.add_new(0x08, "LO", "Doe^John's protocol")  # not listed: never kept
    other = ds.private_block(0x0029, "ACME NOTES", create=True)
    other.add_new(0x01, "LO", "patient said...")
    nested = Dataset()
    nested.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", "500")
    nested.private_block(0x0033, "ACME NOTES", create=True).add_new(0x02, "LO", "secret")
    ds.ReferencedImageSequence = [nested]
    return ds


def private_tags(ds: Dataset) -> set[int]:
    return {int(element.tag) for element in ds if element.tag.is_private}


def test_private_attributes_are_removed_everywhere_by_default() -> None:
    ds = deidentifier().deidentify(with_private(read(make_instance())))
    assert private_tags(ds) == set()
    assert private_tags(ds.ReferencedImageSequence[0]) == set()


def test_retain_safe_private_keeps_only_listed_attributes_and_their_creator() -> None:
    ds = deidentifier(retain_safe_private=True).deidentify(with_private(read(make_instance())))
    assert private_tags(ds) == {0x00190010, 0x0019100C}
    assert ds[0x0019100C].value == "1000"
    assert private_tags(ds.ReferencedImageSequence[0]) == {0x00190010, 0x0019100C}
    assert "113111" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
