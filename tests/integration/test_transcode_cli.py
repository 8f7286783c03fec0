"""`fovea transcode`, run as a real process on real files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, JPEGLSLossless

from tests.dicom_files import corpus_file, make_instance
from tests.integration.test_cli import run_fovea


def test_a_file_is_converted_by_keyword_and_by_uid(tmp_path: Path) -> None:
    source = tmp_path / "ct.dcm"
    source.write_bytes(make_instance(frames=2, seed=4))
    done = run_fovea("transcode", str(source), str(tmp_path / "ct-jls.dcm"), "--syntax", "JPEGLSLossless")
    assert done.returncode == 0, done.stderr
    assert "1 converted to JPEG-LS Lossless Image Compression" in done.stdout
    converted = pydicom.dcmread(tmp_path / "ct-jls.dcm")
    assert converted.file_meta.TransferSyntaxUID == JPEGLSLossless
    assert np.array_equal(converted.pixel_array, pydicom.dcmread(source).pixel_array)

    back = run_fovea(
        "transcode", str(tmp_path / "ct-jls.dcm"), str(tmp_path / "ct-ele.dcm"), "-s", ExplicitVRLittleEndian
    )
    assert back.returncode == 0, back.stderr
    assert pydicom.dcmread(tmp_path / "ct-ele.dcm").PixelData == pydicom.dcmread(source).PixelData


def test_a_folder_is_converted_into_the_same_tree(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "series").mkdir(parents=True)
    (source / "a.dcm").write_bytes(corpus_file("SC_rgb_rle_2frame.dcm").path.read_bytes())
    (source / "series" / "b.dcm").write_bytes(make_instance(seed=6))
    (source / "notes.txt").write_text("not DICOM")
    done = run_fovea("transcode", str(source), str(tmp_path / "out"), "--syntax", HTJ2KLossless)
    assert done.returncode == 1  # one file failed; the others were converted
    assert "2 converted" in done.stdout and "1 failed" in done.stdout
    assert "notes.txt" in done.stderr
    for name in ("a.dcm", "series/b.dcm"):
        converted = pydicom.dcmread(tmp_path / "out" / name)
        assert converted.file_meta.TransferSyntaxUID == HTJ2KLossless
        assert np.array_equal(converted.pixel_array, pydicom.dcmread(source / name).pixel_array)
    assert not (tmp_path / "out" / "notes.txt").exists()
    assert not list((tmp_path / "out").rglob(".fovea-*"))  # no half-written outputs left behind


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "ct.dcm"
    source.write_bytes(make_instance(seed=8))
    out = tmp_path / "out.dcm"
    out.write_bytes(b"keep me")
    kept = run_fovea("transcode", str(source), str(out), "--syntax", JPEGLSLossless)
    assert kept.returncode == 0 and "1 skipped" in kept.stdout
    assert out.read_bytes() == b"keep me"
    replaced = run_fovea("transcode", str(source), str(out), "--syntax", JPEGLSLossless, "--overwrite")
    assert replaced.returncode == 0
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == JPEGLSLossless


def test_a_lossy_original_is_not_made_lossless_and_unknown_syntaxes_are_refused(tmp_path: Path) -> None:
    lossy = corpus_file("JPEG2000.dcm").path
    refused = run_fovea("transcode", str(lossy), str(tmp_path / "x.dcm"), "--syntax", "JPEG2000Lossless")
    assert refused.returncode == 1
    assert "lossless-only and the pixels already went through a lossy step" in refused.stderr
    assert not (tmp_path / "x.dcm").exists()
    unknown = run_fovea("transcode", str(lossy), str(tmp_path / "x.dcm"), "--syntax", "JPEG3000")
    assert (
        unknown.returncode == 2
        and "unknown transfer syntax: JPEG3000 (use a UID or one of: " in unknown.stderr
    )
    assert "HTJ2KLossless" in unknown.stderr and "MPEG2MPML" not in unknown.stderr  # video is never written


def test_a_refusal_names_its_actual_cause(tmp_path: Path) -> None:
    signed_ct = corpus_file("CT_small.dcm").path
    refused = run_fovea("transcode", str(signed_ct), str(tmp_path / "x.dcm"), "--syntax", "JPEGBaseline8Bit")
    assert refused.returncode == 1
    assert "cannot hold 128x128 MONOCHROME2, 1 sample(s) of 16 signed bits in 16" in refused.stderr
    no_encoder = run_fovea("transcode", str(signed_ct), str(tmp_path / "x.dcm"), "--syntax", "JPEG2000MC")
    assert "no installed encoder writes JPEG 2000 Part 2 multi-component transforms" in no_encoder.stderr


def test_an_implicit_vr_file_can_be_written_as_explicit_vr(tmp_path: Path) -> None:
    source = corpus_file("MR_small_implicit.dcm").path
    done = run_fovea("transcode", str(source), str(tmp_path / "mr.dcm"), "--syntax", "ExplicitVRLittleEndian")
    assert done.returncode == 0, done.stderr
    converted = pydicom.dcmread(tmp_path / "mr.dcm")
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(converted.pixel_array, pydicom.dcmread(io.BytesIO(source.read_bytes())).pixel_array)


def test_deflated_and_encapsulated_uncompressed_outputs(tmp_path: Path) -> None:
    source = tmp_path / "ct.dcm"
    source.write_bytes(make_instance(frames=2, seed=12))
    for keyword, uid in (
        ("DeflatedExplicitVRLittleEndian", "1.2.840.10008.1.2.1.99"),
        ("EncapsulatedUncompressedExplicitVRLittleEndian", "1.2.840.10008.1.2.1.98"),
    ):
        out = tmp_path / f"{keyword}.dcm"
        done = run_fovea("transcode", str(source), str(out), "--syntax", keyword)
        assert done.returncode == 0, done.stderr
        converted = pydicom.dcmread(out)
        assert converted.file_meta.TransferSyntaxUID == uid
        original = pydicom.dcmread(source)
        if uid.endswith(".98"):  # pydicom 3.0.2 has no decoder for it: each fragment is a native frame
            frames = list(generate_frames(converted.PixelData, number_of_frames=2))
            assert b"".join(frames) == original.PixelData
        else:
            assert np.array_equal(converted.pixel_array, original.pixel_array)
