"""Fixtures for the imaging tests: Part 10 files written by pydicom, located the way ingest does."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, SecondaryCaptureImageStorage, generate_uid

from app.imaging.frame_table import FrameTable, PixelLayout, build_frame_table, read_frame
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax

PIXEL_DATA_TAG = 0x7FE00010


@dataclass(frozen=True)
class StoredPixelData:
    """A file's Pixel Data as ingest sees it: where the value is, and what it should hold."""

    path: Path
    value_offset: int
    value_length: int
    layout: PixelLayout
    syntax: TransferSyntax

    def build(self, **offset_tables: Any) -> FrameTable:
        with self.path.open("rb") as fp:
            return build_frame_table(
                fp,
                value_offset=self.value_offset,
                value_length=self.value_length,
                layout=self.layout,
                syntax=self.syntax,
                **offset_tables,
            )

    def read_range(self, offset: int, length: int) -> bytes:
        with self.path.open("rb") as fp:
            fp.seek(offset)
            return fp.read(length)

    def read_frames(self, table: FrameTable) -> dict[int, bytes]:
        """Every frame of `table`, keyed by frame number, read back from the file."""
        by_frame = itertools.groupby(table.fragments, key=lambda f: f.frame_number)
        return {
            number: read_frame(
                self.read_range,
                list(fragments),
                self.layout,
                encapsulated=self.syntax.encapsulated,
            )
            for number, fragments in by_frame
        }


def layout_of(ds: Dataset) -> PixelLayout:
    return PixelLayout(
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        samples_per_pixel=int(ds.SamplesPerPixel),
        bits_allocated=int(ds.BitsAllocated),
        number_of_frames=int(ds.get("NumberOfFrames") or 1),
        photometric_interpretation=str(ds.PhotometricInterpretation),
    )


def locate_pixel_data(path: Path, ds: Dataset) -> StoredPixelData:
    """Where Pixel Data sits in `path`, from a data set read with a small `defer_size`."""
    element = ds.get_item(PIXEL_DATA_TAG, keep_deferred=True)
    if not isinstance(element, RawDataElement):
        raise LookupError(f"{path.name}: Pixel Data was read, so its position is unknown")
    syntax = find_transfer_syntax(str(ds.file_meta.TransferSyntaxUID))
    if syntax is None:
        raise LookupError(f"{path.name}: transfer syntax not in the registry")
    return StoredPixelData(path, element.value_tell, element.length, layout_of(ds), syntax)


def write_part10_file(
    path: Path,
    syntax_uid: str,
    pixel_data: bytes,
    layout: PixelLayout,
    *,
    vr: str = "OB",
    extra: Mapping[int, tuple[str, Any]] | None = None,
) -> StoredPixelData:
    """Write a minimal Part 10 file with pydicom and locate its Pixel Data as ingest would."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = UID(syntax_uid)
    meta.MediaStorageSOPClassUID = UID(SecondaryCaptureImageStorage)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows = layout.rows
    ds.Columns = layout.columns
    ds.SamplesPerPixel = layout.samples_per_pixel
    ds.BitsAllocated = layout.bits_allocated
    ds.NumberOfFrames = layout.number_of_frames
    ds.PhotometricInterpretation = layout.photometric_interpretation
    for tag, (tag_vr, value) in (extra or {}).items():
        ds.add_new(tag, tag_vr, value)
    ds.add_new(PIXEL_DATA_TAG, vr, pixel_data)
    ds.save_as(path, enforce_file_format=True)
    return locate_pixel_data(path, dcmread(path, defer_size=256))


@pytest.fixture
def locate() -> Callable[[Path, Dataset], StoredPixelData]:
    """`locate(path, ds)`: where Pixel Data sits in `path`, `ds` read with a small defer_size."""
    return locate_pixel_data


@pytest.fixture
def write_part10(tmp_path: Path) -> Callable[..., StoredPixelData]:
    """`write_part10(syntax_uid, pixel_data, layout, vr=..., extra=...)`, one new file per call."""
    names = (tmp_path / f"synthetic_{n}.dcm" for n in itertools.count())

    def write(syntax_uid: str, pixel_data: bytes, layout: PixelLayout, **kwargs: Any) -> StoredPixelData:
        return write_part10_file(next(names), syntax_uid, pixel_data, layout, **kwargs)

    return write
