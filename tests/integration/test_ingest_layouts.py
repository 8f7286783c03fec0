"""Pixel layouts and syntaxes pydicom's corpus lacks, stored through ingest on every back end.

Each file is generated here; after ingest, every frame read from the stored blob through the frame table
must be exactly the bytes the test put in.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import imagecodecs
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    MPEG4HP41,
    UID,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imaging.frame_table import FrameFragment, PixelLayout, read_frame
from app.store.tables import FrameFragmentRow, Instance
from app.store.write.ingest import Outcome
from tests.conftest import Backend

DEFLATED_FRAMES, HTJ2K, JPEG_XL = (
    "1.2.840.10008.1.2.8.1",
    HTJ2KLossless,
    "1.2.840.10008.1.2.4.110",
)


def part10(
    syntax: str,
    pixel_data: bytes,
    *,
    frames: int,
    rows: int = 5,
    columns: int = 7,
    bits: int = 8,
    encapsulated: bool,
    **extra: object,
) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "OT", "LAYOUTS"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    if encapsulated:
        ds["PixelData"].is_undefined_length = True
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def store_and_read_frames(backend: Backend, data: bytes, *, encapsulated: bool) -> dict[int, bytes]:
    path = backend.blobs.spool_directory / "layout.dcm"
    path.write_bytes(data)
    result = backend.ingestor().ingest(path)
    assert result.outcome is Outcome.STORED, result.message
    with Session(backend.engine) as session:
        instance = session.scalar(
            select(Instance).where(Instance.sop_instance_uid == result.sop_instance_uid)
        )
        assert instance is not None
        rows = session.scalars(
            select(FrameFragmentRow)
            .where(FrameFragmentRow.instance_pk == instance.pk)
            .order_by(FrameFragmentRow.frame_number, FrameFragmentRow.fragment_index)
        ).all()
    layout = PixelLayout(
        instance.rows or 0,
        instance.columns or 0,
        1,
        instance.bits_allocated or 0,
        instance.number_of_frames or 1,
        "MONOCHROME2",
    )
    by_frame: dict[int, list[FrameFragment]] = {}
    for row in rows:
        by_frame.setdefault(row.frame_number, []).append(
            FrameFragment(row.frame_number, row.fragment_index, row.offset, row.length, row.bit_offset)
        )
    return {
        number: read_frame(
            lambda o, n: backend.blobs.read_range(instance.blob_key, o, n),
            fragments,
            layout,
            encapsulated=encapsulated,
        )
        for number, fragments in by_frame.items()
    }


def test_deflated_image_frames_with_extended_offset_table(backend: Backend) -> None:
    raw_frames = [bytes([i]) * 35 + bytes(range(i)) for i in range(1, 4)]
    streams = []
    for frame in raw_frames:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream = compressor.compress(frame) + compressor.flush()
        streams.append(stream + b"\x00" if len(stream) % 2 else stream)  # PS3.5 A.4.13 pad
    pixel_data, offsets, lengths = encapsulate_extended(streams)
    data = part10(
        DEFLATED_FRAMES,
        pixel_data,
        frames=3,
        encapsulated=True,
        ExtendedOffsetTable=offsets,
        ExtendedOffsetTableLengths=lengths,
    )

    frames = store_and_read_frames(backend, data, encapsulated=True)

    assert sorted(frames) == [1, 2, 3]
    for number, frame in frames.items():
        assert zlib.decompress(frame, wbits=-15) == raw_frames[number - 1]


def test_bits_allocated_1_frames_that_start_mid_byte(backend: Backend) -> None:
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, (3, 5, 7), dtype=np.uint8)  # 35 bits a frame: frames 2 and 3 start mid-byte
    data = part10(ExplicitVRLittleEndian, pack_bits(bits.ravel()), frames=3, bits=1, encapsulated=False)

    frames = store_and_read_frames(backend, data, encapsulated=False)

    for number, frame in frames.items():
        unpacked = np.unpackbits(np.frombuffer(frame, np.uint8), bitorder="little")[:35]
        assert np.array_equal(unpacked, bits[number - 1].ravel()), f"frame {number}"


def _jpeg_xl_frame(n: int) -> bytes:
    """A real JPEG XL codestream of a 5 x 7 grey frame: its size header must match the data set."""
    return bytes(imagecodecs.jpegxl_encode(np.full((5, 7), 10 * n, np.uint8), lossless=True))


@pytest.mark.parametrize(
    ("syntax", "make"),
    [
        (HTJ2K, lambda n: b"\xff\x4f\xff\x51" + bytes([n]) * (20 + n) + b"\xff\xd9"),
        (JPEG_XL, _jpeg_xl_frame),
    ],
    ids=["htj2k", "jpeg-xl"],
)
def test_codestreams_split_over_fragments_without_offset_table(
    backend: Backend, syntax: str, make: Callable[[int], bytes]
) -> None:
    codestreams = [make(n) for n in range(3)]
    pixel_data = encapsulate(codestreams, fragments_per_frame=2, has_bot=False)
    data = part10(syntax, pixel_data, frames=3, encapsulated=True)

    frames = store_and_read_frames(backend, data, encapsulated=True)

    assert [frames[n].rstrip(b"\x00") for n in (1, 2, 3)] == [c.rstrip(b"\x00") for c in codestreams]


def test_video_is_stored_as_one_stream(backend: Backend) -> None:
    stream = b"\x00\x00\x01\xb3" + bytes(range(256)) * 4
    pixel_data = encapsulate([stream], fragments_per_frame=3, has_bot=False)
    data = part10(MPEG4HP41, pixel_data, frames=30, encapsulated=True)

    frames = store_and_read_frames(backend, data, encapsulated=True)

    assert list(frames) == [0]  # frame 0: the whole stream, frames are not separable
    assert frames[0].rstrip(b"\x00") == stream.rstrip(b"\x00")
