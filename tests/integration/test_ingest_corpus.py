"""Every real file in pydicom's corpus, stored through the ingest pipeline on every back end.

After each store, every frame read back from the *stored blob* through its frame table (ranged reads,
no parse) must equal pydicom's own view of that file's frames, and the stored metadata must describe
the same instance. Files written by other toolkits, in every transfer syntax the corpus has.
"""

from __future__ import annotations

import shutil

import orjson
import pydicom
import pytest
from pydicom.encaps import generate_frames
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imaging.frame_table import FrameFragment, PixelLayout, read_frame
from app.imaging.syntaxes import find_transfer_syntax
from app.store.tables import FrameFragmentRow, Instance, InstanceMetadata
from app.store.write.ingest import Outcome
from app.store.write.parse import Problem
from tests.conftest import Backend
from tests.dicom_files import CorpusFile, corpus_files, unpacked_bits

TRUNCATED_IN_CORPUS = {"MR_truncated.dcm", "rtplan_truncated.dcm"}  # pydicom ships them cut short


def expected_frames(corpus: CorpusFile, layout: PixelLayout) -> list[bytes]:
    """pydicom's frames of the file, read in full (inflating a deflated data set as it does)."""
    ds = pydicom.dcmread(corpus.path)
    tag = next(t for t in (0x7FE00010, 0x7FE00008, 0x7FE00009) if t in ds)
    value = ds[tag].value
    syntax = find_transfer_syntax(corpus.transfer_syntax_uid)
    assert syntax is not None
    if syntax.encapsulated:
        return list(generate_frames(value, number_of_frames=layout.number_of_frames))
    if layout.bits_allocated == 1:
        bits = unpacked_bits(value)
        size = layout.rows * layout.columns * layout.samples_per_pixel
        return [bits[i * size : (i + 1) * size] for i in range(layout.number_of_frames)]
    size = layout.frame_bytes
    return [value[i * size : (i + 1) * size] for i in range(layout.number_of_frames)]


def stored_frames(
    backend: Backend, instance: Instance, layout: PixelLayout, *, encapsulated: bool
) -> list[bytes]:
    key = instance.data_blob_key or instance.blob_key
    with Session(backend.engine) as session:
        rows = session.scalars(
            select(FrameFragmentRow)
            .where(FrameFragmentRow.instance_pk == instance.pk)
            .order_by(FrameFragmentRow.frame_number, FrameFragmentRow.fragment_index)
        ).all()
    by_frame: dict[int, list[FrameFragment]] = {}
    for row in rows:
        by_frame.setdefault(row.frame_number, []).append(
            FrameFragment(row.frame_number, row.fragment_index, row.offset, row.length, row.bit_offset)
        )
    frames = []
    for number in sorted(by_frame):
        data = read_frame(
            lambda offset, length: backend.blobs.read_range(key, offset, length),
            by_frame[number],
            layout,
            encapsulated=encapsulated,
        )
        if layout.bits_allocated == 1:
            data = unpacked_bits(data)[: layout.rows * layout.columns * layout.samples_per_pixel]
        frames.append(data)
    return frames


def _strip_pad(frame: bytes) -> bytes:
    return frame[:-1] if frame.endswith(b"\x00") else frame


@pytest.mark.parametrize("corpus", corpus_files(), ids=str)
def test_corpus_file_is_stored_with_exact_frames(backend: Backend, corpus: CorpusFile) -> None:
    spooled = backend.blobs.spool_directory / f"corpus-{corpus.path.name}"
    shutil.copyfile(corpus.path, spooled)

    result = backend.ingestor().ingest(spooled)

    if corpus.path.name in TRUNCATED_IN_CORPUS:
        assert result.outcome is Outcome.FAILED and result.problem is Problem.NOT_DICOM
        assert "truncated" in result.message
        assert backend.blob_keys() == set()
        return
    assert result.outcome is Outcome.STORED, result.message
    assert not spooled.exists()
    with Session(backend.engine) as session:
        instance = session.scalar(
            select(Instance).where(Instance.sop_instance_uid == corpus.sop_instance_uid)
        )
        assert instance is not None
        metadata = orjson.loads(session.get_one(InstanceMetadata, instance.pk).dicom_json)
    assert metadata["00080018"]["Value"] == [corpus.sop_instance_uid]
    assert metadata["0020000D"]["Value"] == [corpus.study_instance_uid]
    assert (
        backend.blobs.read_range(instance.blob_key, 0, backend.blobs.size(instance.blob_key))
        == corpus.path.read_bytes()
    )
    if not corpus.has_pixels:
        assert instance.number_of_frames is None
        return

    pixel_uri = metadata[f"{instance.pixel_data_tag:08X}"].get("BulkDataURI", "")
    assert pixel_uri.endswith(f"/bulkdata/{instance.pixel_data_tag:08X}")
    layout = PixelLayout(
        instance.rows or 0,
        instance.columns or 0,
        instance.samples_per_pixel or 1,
        instance.bits_allocated or 0,
        instance.number_of_frames or 1,
        instance.photometric_interpretation or "",
    )
    expected = expected_frames(corpus, layout)
    syntax = find_transfer_syntax(corpus.transfer_syntax_uid)
    assert syntax is not None
    got = stored_frames(backend, instance, layout, encapsulated=syntax.encapsulated)
    assert len(got) == len(expected) == layout.number_of_frames
    for number, (ours, theirs) in enumerate(zip(got, expected, strict=True), start=1):
        # generate_frames drops nothing; a frame's trailing pad byte is kept by both or neither
        assert _strip_pad(ours) == _strip_pad(theirs), f"frame {number} differs"
