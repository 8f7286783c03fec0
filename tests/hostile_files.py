"""Part 10 files built to hurt a server: lying codestreams in an instance, and deflate bombs."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid

from app.imaging.codecs.decode import FrameFormat

_ZEROS = bytes(1 << 24)


def _base_dataset(transfer_syntax_uid: str, study_uid: str | None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "HOSTILE-1"
    ds.Modality = "CT"
    return ds


def encapsulated_instance(
    frame: bytes, transfer_syntax_uid: str, fmt: FrameFormat, *, study_uid: str | None = None
) -> bytes:
    """A one-frame instance whose Pixel Data holds `frame` as it is, whatever its header says."""
    ds = _base_dataset(transfer_syntax_uid, study_uid)
    ds.Rows, ds.Columns = fmt.rows, fmt.columns
    ds.SamplesPerPixel = fmt.samples_per_pixel
    ds.PhotometricInterpretation = fmt.photometric_interpretation
    ds.BitsAllocated, ds.BitsStored = fmt.bits_allocated, fmt.bits_stored
    ds.HighBit = fmt.bits_stored - 1
    ds.PixelRepresentation = fmt.pixel_representation
    if fmt.samples_per_pixel > 1:
        ds.PlanarConfiguration = fmt.planar_configuration
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@cache
def deflate_bomb(inflated_bytes: int, *, study_uid: str = "1.2.826.0.1.3680043.8.498.1") -> bytes:
    """A Deflated Explicit VR Little Endian file of a few megabytes whose data set inflates to more than
    `inflated_bytes`: a private OB value of that many zeros (deflate shrinks zeros a thousandfold)."""
    ds = _base_dataset(DeflatedExplicitVRLittleEndian, study_uid)
    ds.private_block(0x7FE1, "FOVEA BOMB", create=True)
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, ds.file_meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_implicit_VR, body.is_little_endian = False, True
    del ds.file_meta
    write_dataset(body, ds)
    length = inflated_bytes + inflated_bytes % 2
    header = struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"OB", 0, length)
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunks = [compressor.compress(body.getvalue() + header)]
    left = length
    while left:
        size = min(left, len(_ZEROS))
        chunks.append(compressor.compress(_ZEROS[:size]))
        left -= size
    chunks.append(compressor.flush())
    buffer.write(b"".join(chunks))
    return buffer.getvalue()
