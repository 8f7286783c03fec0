"""STOW-RS against a live server, on every index x blob-store combination (PS3.18 10.5)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import Executor
from xml.etree import ElementTree

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import CTImageStorage, generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.tables import FrameFragmentRow, Patient, Study
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.stow_helpers import (
    index_counts,
    items,
    pending_deletions,
    post_stow,
    stored_bytes,
    stored_instance,
    value_of,
)

FAILED, REFERENCED, RETRIEVE_URL = "00081198", "00081199", "00081190"
SOP_INSTANCE, FAILURE_REASON, WARNING_REASON = "00081155", "00081197", "00081196"


def test_store_one_instance_indexes_it_and_keeps_the_bytes(live_server: LiveServer, backend: Backend) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    data = make_instance(study_uid=study, series_uid=series, sop_uid=sop, rows=32, columns=48)

    response = post_stow(live_server, [data])

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    body = response.json()
    assert value_of(body, RETRIEVE_URL) == f"{live_server.dicomweb}/studies/{study}"
    [item] = items(body, REFERENCED)
    assert value_of(item, SOP_INSTANCE) == sop
    assert value_of(item, "00081150") == CTImageStorage
    assert value_of(item, RETRIEVE_URL) == (
        f"{live_server.dicomweb}/studies/{study}/series/{series}/instances/{sop}"
    )
    assert FAILED not in body and WARNING_REASON not in item

    assert stored_bytes(backend, sop) == data  # nothing added, nothing lost
    instance = stored_instance(backend, sop)
    assert instance is not None
    assert (instance.rows, instance.columns, instance.bits_allocated) == (32, 48, 16)
    with Session(backend.engine) as session:
        [frame] = session.scalars(
            select(FrameFragmentRow).where(FrameFragmentRow.instance_pk == instance.pk)
        ).all()
        patient = session.scalar(
            select(Patient)
            .join(Study, Study.patient_pk == Patient.pk)
            .where(Study.study_instance_uid == study)
        )
    pixels = pydicom.dcmread(io.BytesIO(data)).PixelData
    assert frame.length == len(pixels) == 32 * 48 * 2
    assert backend.blobs.read_range(instance.blob_key, frame.offset, frame.length) == pixels
    assert patient is not None and patient.patient_name == "Doe^Jane"


@pytest.mark.parametrize(
    ("quoted", "leading_crlf", "final_crlf"),
    [(True, False, True), (False, False, True), (True, True, True), (False, True, False)],
    ids=["quoted", "unquoted-boundary", "leading-crlf", "unquoted-no-final-crlf"],
)
def test_store_tolerates_what_real_clients_send(
    live_server: LiveServer, backend: Backend, quoted: bool, leading_crlf: bool, final_crlf: bool
) -> None:
    parts = [make_instance(seed=i) for i in range(3)]
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=multipart_body(parts, "b0und4ry", leading_crlf=leading_crlf, final_crlf=final_crlf),
        headers={"Content-Type": stow_content_type("b0und4ry", quoted=quoted)},
    )
    assert response.status_code == 200, response.text
    assert len(items(response.json(), REFERENCED)) == 3
    assert index_counts(backend).instances == 3


def test_store_accepts_chunked_transfer_encoding(live_server: LiveServer, backend: Backend) -> None:
    body = multipart_body([make_instance(rows=256, columns=256, frames=3)])

    def chunks() -> Iterator[bytes]:  # a generator body makes httpx send Transfer-Encoding: chunked
        for start in range(0, len(body), 10_000):
            yield body[start : start + 10_000]

    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=chunks(),
        headers={"Content-Type": stow_content_type()},
    )
    assert response.status_code == 200, response.text
    assert index_counts(backend).frames == 3


def test_store_through_dicomweb_client(live_server: LiveServer, backend: Backend) -> None:
    client = DICOMwebClient(url=live_server.dicomweb)
    datasets = [pydicom.dcmread(io.BytesIO(make_instance(seed=i))) for i in range(2)]

    result = client.store_instances(datasets=datasets)

    stored = [str(item.ReferencedSOPInstanceUID) for item in result.ReferencedSOPSequence]
    assert stored == [str(ds.SOPInstanceUID) for ds in datasets]
    assert index_counts(backend).instances == 2


def test_store_response_as_xml_when_asked(live_server: LiveServer) -> None:
    sop = generate_uid()
    response = post_stow(
        live_server, [make_instance(sop_uid=sop)], headers={"Accept": "application/dicom+xml"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+xml"
    root = ElementTree.fromstring(response.content)
    ns = {"d": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
    values = root.findall(
        "d:DicomAttribute[@tag='00081199']/d:Item/d:DicomAttribute[@tag='00081155']/d:Value", ns
    )
    assert [v.text for v in values] == [sop]


def test_store_refuses_an_unacceptable_response_type(live_server: LiveServer, backend: Backend) -> None:
    response = post_stow(live_server, [make_instance()], headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert "application/dicom+json" in response.json()["error"]
    assert index_counts(backend).instances == 0


def test_store_with_study_in_url_refuses_other_studies(live_server: LiveServer, backend: Backend) -> None:
    study = generate_uid()
    match = make_instance(study_uid=study)
    other_sop = generate_uid()
    other = make_instance(sop_uid=other_sop)

    response = post_stow(live_server, [match, other], study=study)

    assert response.status_code == 202
    body = response.json()
    [failed] = items(body, FAILED)
    assert value_of(failed, SOP_INSTANCE) == other_sop
    assert value_of(failed, FAILURE_REASON) == 0xC409
    assert value_of(body, RETRIEVE_URL) == f"{live_server.dicomweb}/studies/{study}"
    assert stored_instance(backend, other_sop) is None
    assert index_counts(backend).instances == 1


def test_store_with_only_mismatching_study_is_409(live_server: LiveServer, backend: Backend) -> None:
    response = post_stow(live_server, [make_instance()], study=generate_uid())
    assert response.status_code == 409
    assert value_of(items(response.json(), FAILED)[0], FAILURE_REASON) == 0xC409
    assert index_counts(backend).instances == 0
    assert backend.blob_keys() == set()


def test_forwarded_headers_shape_retrieve_urls(live_server: LiveServer) -> None:
    study = generate_uid()
    response = post_stow(
        live_server,
        [make_instance(study_uid=study)],
        headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "pacs.example.org",
            "X-Forwarded-Prefix": "/fovea",
        },
    )
    assert value_of(response.json(), RETRIEVE_URL) == (
        f"https://pacs.example.org/fovea/dicom-web/studies/{study}"
    )


def test_public_base_url_wins_over_forwarded_headers(backend: Backend, worker_pool: Executor) -> None:
    study = generate_uid()
    with start_live_server(backend, worker_pool, public_base_url="https://dicom.example.net/dw/") as server:
        response = post_stow(
            server, [make_instance(study_uid=study)], headers={"X-Forwarded-Host": "evil.example"}
        )
        assert value_of(response.json(), RETRIEVE_URL) == (f"https://dicom.example.net/dw/studies/{study}")


def test_replace_policy_replaces_atomically_and_says_so(live_server: LiveServer, backend: Backend) -> None:
    sop = generate_uid()
    first, second = make_instance(sop_uid=sop, seed=1), make_instance(sop_uid=sop, seed=2)
    assert post_stow(live_server, [first]).status_code == 200
    old_key = stored_instance(backend, sop).blob_key  # type: ignore[union-attr]

    response = post_stow(live_server, [second])

    assert response.status_code == 202
    [item] = items(response.json(), REFERENCED)
    assert value_of(item, WARNING_REASON) == 0xB100
    assert stored_bytes(backend, sop) == second
    # the replaced blob stays for the reads that looked it up, and is scheduled for deletion
    assert old_key in backend.blob_keys()
    assert pending_deletions(backend) == {old_key}
    assert index_counts(backend).instances == 1


@pytest.mark.parametrize(
    ("policy", "status", "code", "sequence"),
    [("reject", 409, 0x0111, FAILED), ("keep", 202, 0xB101, REFERENCED)],
)
def test_reject_and_keep_policies_leave_the_stored_instance(
    backend: Backend, worker_pool: Executor, policy: str, status: int, code: int, sequence: str
) -> None:
    sop = generate_uid()
    first, second = make_instance(sop_uid=sop, seed=1), make_instance(sop_uid=sop, seed=2)
    with start_live_server(backend, worker_pool, duplicate_policy=policy) as server:
        assert post_stow(server, [first]).status_code == 200
        keys = backend.blob_keys()

        response = post_stow(server, [second])

        assert response.status_code == status
        [item] = items(response.json(), sequence)
        assert value_of(item, FAILURE_REASON if sequence == FAILED else WARNING_REASON) == code
        assert stored_bytes(backend, sop) == first
        assert backend.blob_keys() == keys


def test_series_filed_under_another_study_is_a_conflict(live_server: LiveServer, backend: Backend) -> None:
    series = generate_uid()
    assert post_stow(live_server, [make_instance(series_uid=series)]).status_code == 200
    intruder = generate_uid()

    response = post_stow(live_server, [make_instance(series_uid=series, sop_uid=intruder)])

    assert response.status_code == 409
    [failed] = items(response.json(), FAILED)
    assert value_of(failed, SOP_INSTANCE) == intruder
    assert value_of(failed, FAILURE_REASON) == 0xC409
    assert value_of(failed, "00000902") == "its Series Instance UID is filed under another study"
    assert stored_instance(backend, intruder) is None
    assert index_counts(backend).studies == 1


def test_unknown_paths_and_methods_answer_in_the_error_shape(live_server: LiveServer) -> None:
    missing = httpx.get(f"{live_server.dicomweb}/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "error": "Not Found"}
    wrong_method = httpx.delete(f"{live_server.dicomweb}/studies")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405
    assert "POST" in wrong_method.headers["allow"]


def test_health_checks_index_and_blob_store(live_server: LiveServer, backend: Backend) -> None:
    ok = httpx.get(f"{live_server.base_url}/health")
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert httpx.head(f"{live_server.base_url}/health").status_code == 200
    from tests.integration.test_ingest_atomicity import unwritable_blob_store

    if backend.name.endswith("s3"):
        with unwritable_blob_store(backend):
            broken = httpx.get(f"{live_server.base_url}/health")
        assert broken.status_code == 503
        assert "not reachable" in broken.json()["problems"]["blobs"]


def test_outcomes_keep_part_order_across_worker_chunks(live_server: LiveServer, backend: Backend) -> None:
    uids = [generate_uid() for _ in range(7)]
    good = {i: make_instance(sop_uid=uids[i], seed=i) for i in (0, 2, 3, 5, 6)}
    parts = [good.get(i, b"not DICOM, part %d" % i) for i in range(7)]

    response = post_stow(live_server, parts)

    assert response.status_code == 202
    body = response.json()
    assert [value_of(item, SOP_INSTANCE) for item in items(body, REFERENCED)] == [uids[i] for i in good]
    assert len(items(body, FAILED)) == 2
    assert index_counts(backend).instances == 5
