"""The ingest storage policy on every back end: accepted syntaxes, and lossless conversion at ingest."""

from __future__ import annotations

import io
import uuid
from concurrent.futures import Executor

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, JPEGLSLossless
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imaging.codec_pool import CodecPool
from app.settings import Settings
from app.store.policies import DuplicatePolicy
from app.store.tables import Instance
from app.store.write.ingest import Ingestor, Outcome
from app.store.write.parse import Problem
from app.store.write.storage_policy import StoragePolicy
from tests.conftest import Backend, start_live_server
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import items, post_stow, value_of

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
FAILED_SOP_SEQUENCE, FAILURE_REASON = "00081198", "00081197"


def ingest(backend: Backend, data: bytes, policy: StoragePolicy) -> tuple[Outcome, Problem | None]:
    path = backend.blobs.spool_directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(data)
    result = Ingestor(backend.engine, backend.blobs, DuplicatePolicy.REPLACE, policy).ingest(path)
    assert not path.exists()  # consumed either way
    return result.outcome, result.problem


def stored(backend: Backend, sop_instance_uid: str) -> tuple[str, pydicom.Dataset]:
    with Session(backend.engine) as session:
        row = session.scalars(select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)).one()
        syntax, key, size = row.transfer_syntax_uid, row.blob_key, row.blob_size
    return syntax, pydicom.dcmread(io.BytesIO(backend.blobs.read_range(key, 0, size)))


@pytest.mark.parametrize("target", [HTJ2KLossless, DEFLATED_FRAMES, JPEGLSLossless])
def test_lossless_input_is_stored_in_the_storage_syntax_with_the_same_pixels(
    backend: Backend, target: str
) -> None:
    sent = make_instance(frames=3, seed=21)
    original = pydicom.dcmread(io.BytesIO(sent))
    assert ingest(backend, sent, StoragePolicy(storage_syntax=target)) == (Outcome.STORED, None)
    syntax, ds = stored(backend, original.SOPInstanceUID)
    assert syntax == ds.file_meta.TransferSyntaxUID == target
    if target != DEFLATED_FRAMES:  # pydicom 3.0.2 has no deflated-frame decoder
        assert np.array_equal(ds.pixel_array, original.pixel_array)
    assert ds.PatientName == original.PatientName


def test_compressed_colour_input_is_converted_bit_exact(backend: Backend) -> None:
    corpus = corpus_file("SC_rgb_rle_2frame.dcm")
    original = pydicom.dcmread(corpus.path)
    policy = StoragePolicy(storage_syntax=HTJ2KLossless)
    assert ingest(backend, corpus.path.read_bytes(), policy)[0] in (Outcome.STORED, Outcome.REPLACED)
    syntax, ds = stored(backend, original.SOPInstanceUID)
    assert syntax == HTJ2KLossless
    assert np.array_equal(ds.pixel_array, original.pixel_array)


@pytest.mark.parametrize("target", [HTJ2KLossless, DEFLATED_FRAMES])
def test_lossy_input_and_layouts_the_encoder_cannot_hold_are_stored_as_received(
    backend: Backend, target: str
) -> None:
    # deflate could hold the decoded pixels (retrieval serves them so), but the policy never grows a file
    policy = StoragePolicy(storage_syntax=target)
    for name in ("JPEG2000.dcm", "SC_ybr_full_422_uncompressed.dcm"):  # lossy; 4:2:2 samples, lossy too
        corpus = corpus_file(name)
        original = pydicom.dcmread(corpus.path)
        assert ingest(backend, corpus.path.read_bytes(), policy)[0] in (Outcome.STORED, Outcome.REPLACED)
        syntax, ds = stored(backend, original.SOPInstanceUID)
        assert syntax == original.file_meta.TransferSyntaxUID, name
        assert ds.PixelData == original.PixelData


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_frame_too_large_to_decode_within_the_codec_limit_is_stored_as_received(backend: Backend) -> None:
    """A 2048x2048 16-bit frame needs 3 x 8 MiB + 512 MiB to decode: not within 520 MiB, within 540."""
    big = make_instance(rows=2048, columns=2048, seed=5)
    original = pydicom.dcmread(io.BytesIO(big))
    tight = StoragePolicy(storage_syntax=JPEGLSLossless, decode_limit_bytes=520 * 1024 * 1024)
    assert ingest(backend, big, tight) == (Outcome.STORED, None)
    assert stored(backend, original.SOPInstanceUID)[0] == ExplicitVRLittleEndian  # kept as received
    enough = StoragePolicy(storage_syntax=JPEGLSLossless, decode_limit_bytes=540 * 1024 * 1024)
    assert ingest(backend, big, enough)[0] is Outcome.REPLACED
    assert stored(backend, original.SOPInstanceUID)[0] == JPEGLSLossless


def test_syntaxes_not_accepted_are_refused(backend: Backend) -> None:
    policy = StoragePolicy(accepted_syntaxes=frozenset({ExplicitVRLittleEndian}))
    refused = corpus_file("SC_rgb_rle_2frame.dcm").path.read_bytes()
    assert ingest(backend, refused, policy) == (Outcome.FAILED, Problem.UNSUPPORTED_SYNTAX)
    assert ingest(backend, make_instance(seed=22), policy) == (Outcome.STORED, None)


def test_stow_answers_0xc122_for_a_syntax_not_accepted(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with start_live_server(
        backend, worker_pool, codec_pool, accepted_transfer_syntaxes="ExplicitVRLittleEndian, JPEGLSLossless"
    ) as server:
        rle = corpus_file("SC_rgb_rle_2frame.dcm").path.read_bytes()
        response = post_stow(server, [rle, make_instance(seed=23)])
        assert response.status_code == 202
        [failure] = items(response.json(), FAILED_SOP_SEQUENCE)
        assert value_of(failure, FAILURE_REASON) == 0xC122


def test_stow_stores_in_the_storage_syntax_and_serves_the_original_pixels(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with start_live_server(
        backend, worker_pool, codec_pool, storage_transfer_syntax="DeflatedImageFrameCompression"
    ) as server:
        sent = make_instance(frames=2, seed=24)
        assert post_stow(server, [sent]).status_code == 200
        ds = pydicom.dcmread(io.BytesIO(sent))
        url = (
            f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        as_stored = httpx.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
        assert as_stored.headers["content-type"] == f"application/dicom; transfer-syntax={DEFLATED_FRAMES}"
        frame = httpx.get(f"{url}/frames/2", headers={"Accept": "application/octet-stream"})
        assert frame.content == ds.pixel_array[1].tobytes()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("storage_transfer_syntax", "JPEGBaseline8Bit"),  # lossy
        ("storage_transfer_syntax", "ImplicitVRLittleEndian"),  # not on the web
        ("storage_transfer_syntax", "1.2.3"),
        ("accepted_transfer_syntaxes", "ExplicitVRLittleEndian,NoSuchSyntax"),
    ],
)
def test_bad_policy_settings_are_refused_at_start(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="syntax"):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_policy_settings_take_keywords_and_uids() -> None:
    settings = Settings(
        accepted_transfer_syntaxes=f"explicitvrlittleendian, {JPEGLSLossless}",
        storage_transfer_syntax="HTJ2KLossless",
    )
    assert settings.accepted_syntax_uids == (ExplicitVRLittleEndian, JPEGLSLossless)
    assert settings.storage_transfer_syntax == HTJ2KLossless


def test_a_deflated_data_set_is_converted_from_its_inflated_copy(backend: Backend) -> None:
    corpus = corpus_file("image_dfl.dcm")  # Deflated Explicit VR Little Endian, 8-bit grey
    original = pydicom.dcmread(corpus.path)
    policy = StoragePolicy(storage_syntax=JPEGLSLossless)
    assert ingest(backend, corpus.path.read_bytes(), policy)[0] in (Outcome.STORED, Outcome.REPLACED)
    syntax, ds = stored(backend, original.SOPInstanceUID)
    assert syntax == JPEGLSLossless
    assert np.array_equal(ds.pixel_array, original.pixel_array)
    with Session(backend.engine) as session:
        row = session.scalars(
            select(Instance).where(Instance.sop_instance_uid == original.SOPInstanceUID)
        ).one()
        assert row.data_blob_key in (None, row.blob_key)  # no inflated copy: the new file is not deflated
