"""Rewriting an instance as Explicit VR Little Endian with native pixels supplied frame by frame."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from app.imaging.codecs.decode import NativeFrame
from app.imaging.instance_transcode import NativePixels, iter_explicit_vr_little_endian


def part10(ds: Dataset, syntax: str, *, little_endian: bool = True, implicit_vr: bool = False) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(
        buffer, ds, implicit_vr=implicit_vr, little_endian=little_endian, enforce_file_format=True
    )
    return buffer.getvalue()


def image(rows: int, columns: int, bits: int, frames: int = 1, samples: int = 1) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    ds.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "YBR_FULL_422"
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.NumberOfFrames = frames
    ds.ExtendedOffsetTable = b"\x00" * 8  # encapsulation-only elements must not survive
    ds.ExtendedOffsetTableLengths = b"\x00" * 8
    return ds


def rewrite(source: bytes, pixels: NativePixels | None, *, big_endian: bool = False) -> pydicom.Dataset:
    out = b"".join(iter_explicit_vr_little_endian(io.BytesIO(source), big_endian=big_endian, pixels=pixels))
    return pydicom.dcmread(io.BytesIO(out))


def test_one_bit_frames_are_packed_back_to_back() -> None:
    """3x3 frames of 9 bits: frame 2 starts at bit 1 of byte 1 in the rewritten value (PS3.5 8.1.1)."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 2, (5, 3, 3), dtype=np.uint8)
    source = part10(image(3, 3, 1, frames=5), ImplicitVRLittleEndian, implicit_vr=True)
    each = [np.packbits(f.ravel(), bitorder="little").tobytes() for f in frames]
    pixels = NativePixels(
        0x7FE00010, 5, 1, 9, lambda n: NativeFrame(each[n - 1], "MONOCHROME2", 0), lossy=False
    )
    ds = rewrite(source, pixels)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert len(ds.PixelData) == 6  # 45 bits -> 6 bytes, already even
    assert np.array_equal(ds.pixel_array, frames)
    assert "ExtendedOffsetTable" not in ds and "ExtendedOffsetTableLengths" not in ds


def test_decoded_colour_frames_set_photometric_interpretation_and_lossy_flag() -> None:
    rgb = np.arange(2 * 3 * 5 * 3, dtype=np.uint8).reshape(2, 3, 5, 3)
    source = part10(image(3, 5, 8, frames=2, samples=3), ImplicitVRLittleEndian, implicit_vr=True)
    pixels = NativePixels(
        0x7FE00010, 2, 8, 3 * 5 * 3 * 8, lambda n: NativeFrame(rgb[n - 1].tobytes(), "RGB", 0), lossy=True
    )
    ds = rewrite(source, pixels)
    assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0
    assert ds.LossyImageCompression == "01"
    assert len(ds.PixelData) == 90 and ds["PixelData"].VR == "OB"
    assert np.array_equal(ds.pixel_array, rgb)
    assert ds.PatientName == "Doe^Jane"


def test_odd_length_value_gets_one_pad_byte() -> None:
    source = part10(image(3, 3, 8), ImplicitVRLittleEndian, implicit_vr=True)
    data = bytes(range(9))
    pixels = NativePixels(0x7FE00010, 1, 8, 72, lambda _n: NativeFrame(data, "MONOCHROME2", 0), lossy=False)
    ds = rewrite(source, pixels)
    assert ds.PixelData == data + b"\x00"


def test_big_endian_binary_values_are_swapped() -> None:
    ds = image(2, 2, 16)
    lut = np.arange(0, 4096, 16, dtype=np.uint16)
    ds.add_new(0x00281201, "OW", lut.astype(">u2").tobytes())
    ds.RealWorldValueMappingSequence = [Dataset()]
    ds.RealWorldValueMappingSequence[0].add_new(0x00409212, "FD", [1.5, 2.5])  # numbers: pydicom converts
    source = part10(ds, ExplicitVRBigEndian, little_endian=False)
    native = np.arange(4, dtype="<u2").tobytes()
    pixels = NativePixels(
        0x7FE00010, 1, 16, 64, lambda _n: NativeFrame(native, "MONOCHROME2", 0), lossy=False
    )
    out = rewrite(source, pixels, big_endian=True)
    assert out[0x00281201].value == lut.astype("<u2").tobytes()
    assert list(out.RealWorldValueMappingSequence[0][0x00409212].value) == [1.5, 2.5]
    assert out["PixelData"].VR == "OW" and out.PixelData == native


def test_instance_without_pixel_data() -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = BasicTextSRStorage, generate_uid()
    ds.ContentDate = "20261121"
    out = rewrite(part10(ds, ImplicitVRLittleEndian, implicit_vr=True), None)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert out.ContentDate == "20261121" and "PixelData" not in out
