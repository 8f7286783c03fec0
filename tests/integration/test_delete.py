"""DELETE of an instance, a series and a study, seen through two server processes sharing one index and
blob store (SQLite + folder; PostgreSQL + S3).

After each 204, both processes answer 404 for what went (frames too, although each had the frame table
cached), QIDO-RS no longer finds it, and what was not in scope is untouched; the emptied series, study and
patient rows are gone; the blobs stay for the deletion grace period and go once it has passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import ColumnElement, func, select

from app.store.tables import BlobDeletion, Instance, Patient, Series, Study
from app.store.upkeep.deferred_deletion import delete_due_blobs
from tests.conftest import Backend
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.server_processes import ServerProcess, running_server
from tests.integration.test_wado_instances import ANY_SYNTAX, multipart_parts

OCTET = "application/octet-stream"
GRACE_S = 300.0


@dataclass(frozen=True)
class StoredStudy:
    """One study: series A (instances a1 of two frames, a2) and series B (b1), all of one patient."""

    study: str
    series_a: str
    series_b: str
    a1: str
    a2: str
    b1: str
    files: dict[str, bytes]

    def series_of(self, sop: str) -> str:
        return self.series_b if sop == self.b1 else self.series_a

    def instance_path(self, sop: str) -> str:
        return f"/studies/{self.study}/series/{self.series_of(sop)}/instances/{sop}"


def store_study(server: ServerProcess, patient_id: str, seed: int = 0) -> StoredStudy:
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    a1, a2, b1 = generate_uid(), generate_uid(), generate_uid()
    common = {"study_uid": study, "patient_id": patient_id, "rows": 16, "columns": 16}
    files: dict[str, bytes] = {
        a1: make_instance(series_uid=series_a, sop_uid=a1, frames=2, seed=seed, **common),  # type: ignore[arg-type]
        a2: make_instance(series_uid=series_a, sop_uid=a2, seed=seed + 1, **common),  # type: ignore[arg-type]
        b1: make_instance(series_uid=series_b, sop_uid=b1, seed=seed + 2, **common),  # type: ignore[arg-type]
    }
    response = httpx.post(
        f"{server.dicomweb}/studies",
        content=multipart_body(list(files.values())),
        headers={"Content-Type": stow_content_type()},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return StoredStudy(study, series_a, series_b, a1, a2, b1, files)


def frame_status(server: ServerProcess, stored: StoredStudy, sop: str) -> int:
    url = f"{server.dicomweb}{stored.instance_path(sop)}/frames/1"
    return httpx.get(url, headers={"Accept": OCTET}, timeout=30).status_code


def instance_status(server: ServerProcess, stored: StoredStudy, sop: str) -> int:
    response = httpx.get(
        f"{server.dicomweb}{stored.instance_path(sop)}", headers={"Accept": ANY_SYNTAX}, timeout=30
    )
    if response.status_code == 200:
        [(_, body)] = multipart_parts(response)
        assert body == stored.files[sop]
    return response.status_code


def metadata_status(server: ServerProcess, path: str) -> int:
    return httpx.get(f"{server.dicomweb}{path}/metadata", timeout=30).status_code


def found_instances(server: ServerProcess, study: str) -> set[str]:
    response = httpx.get(f"{server.dicomweb}/studies/{study}/instances", timeout=30)
    assert response.status_code == 200, response.text
    return {item["00080018"]["Value"][0] for item in response.json()}


def found_series(server: ServerProcess, study: str) -> set[str]:
    response = httpx.get(f"{server.dicomweb}/studies/{study}/series", timeout=30)
    assert response.status_code == 200, response.text
    return {item["0020000E"]["Value"][0] for item in response.json()}


def found_studies(server: ServerProcess, **query: str) -> set[str]:
    response = httpx.get(f"{server.dicomweb}/studies", params=query, timeout=30)
    assert response.status_code == 200, response.text
    return {item["0020000D"]["Value"][0] for item in response.json()}


def delete(server: ServerProcess, path: str) -> httpx.Response:
    return httpx.delete(f"{server.dicomweb}{path}", timeout=60)


def blob_keys_of(backend: Backend, sops: list[str]) -> set[str]:
    with backend.engine.connect() as connection:
        rows = connection.execute(
            select(Instance.blob_key, Instance.data_blob_key).where(Instance.sop_instance_uid.in_(sops))
        )
        return {key for row in rows for key in row if key}


def count(backend: Backend, model: type, *where: ColumnElement[bool]) -> int:
    with backend.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_delete_at_each_level_is_seen_by_every_process(backend: Backend, tmp_path: Path) -> None:
    settings = backend.settings(
        ingest_workers=1, codec_workers=1, blob_deletion_grace_s=GRACE_S, gc_interval_s=0
    )
    log = tmp_path / "servers.log"
    patient = f"DEL-{generate_uid()[-8:]}"
    with running_server(settings, log) as first, running_server(settings, log) as second:
        servers = (first, second)
        stored = store_study(first, patient)
        other = store_study(second, patient, seed=10)  # another study of the same patient
        every_sop = [*stored.files, *other.files]
        keys = blob_keys_of(backend, every_sop)
        assert len(keys) == 6 and keys <= backend.blob_keys()
        for server in servers:  # each process now holds every frame table in its cache
            for sop in stored.files:
                assert frame_status(server, stored, sop) == 200

        # An instance
        assert delete(first, stored.instance_path(stored.a1)).status_code == 204
        for server in servers:
            assert frame_status(server, stored, stored.a1) == 404
            assert instance_status(server, stored, stored.a1) == 404
            assert metadata_status(server, stored.instance_path(stored.a1)) == 404
            rendered = f"{server.dicomweb}{stored.instance_path(stored.a1)}/rendered"
            assert httpx.get(rendered, headers={"Accept": "image/png"}, timeout=30).status_code == 404
            assert frame_status(server, stored, stored.a2) == 200
            assert instance_status(server, stored, stored.a2) == 200
            assert found_instances(server, stored.study) == {stored.a2, stored.b1}
        assert delete(second, stored.instance_path(stored.a1)).status_code == 404

        # A series (named under another study: nothing matches)
        series_path = f"/studies/{stored.study}/series/{stored.series_a}"
        assert delete(second, f"/studies/{other.study}/series/{stored.series_a}").status_code == 404
        assert delete(second, series_path).status_code == 204
        for server in servers:
            assert frame_status(server, stored, stored.a2) == 404
            assert metadata_status(server, series_path) == 404
            assert found_series(server, stored.study) == {stored.series_b}
            assert frame_status(server, stored, stored.b1) == 200
        assert count(backend, Series, Series.series_instance_uid == stored.series_a) == 0
        assert delete(first, series_path).status_code == 404

        # A study: its patient stays while another study is filed under it
        assert delete(first, f"/studies/{stored.study}").status_code == 204
        for server in servers:
            assert frame_status(server, stored, stored.b1) == 404
            assert metadata_status(server, f"/studies/{stored.study}") == 404
            assert found_studies(server, PatientID=patient) == {other.study}
            assert instance_status(server, other, other.b1) == 200
        assert count(backend, Study, Study.study_instance_uid == stored.study) == 0
        assert count(backend, Patient, Patient.patient_id == patient) == 1

        # The patient's last study takes the patient with it
        assert delete(second, f"/studies/{other.study}").status_code == 204
        for server in servers:
            assert found_studies(server, PatientID=patient) == set()
            assert frame_status(server, other, other.a1) == 404
        assert count(backend, Patient, Patient.patient_id == patient) == 0
        assert count(backend, Instance) == count(backend, Series) == count(backend, Study) == 0

    # The blobs wait out the grace period (reads may still hold them), then go.
    assert keys <= backend.blob_keys()
    assert count(backend, BlobDeletion) == len(keys)
    early = delete_due_blobs(backend.engine, backend.blobs, now=datetime.now(UTC) + timedelta(seconds=60))
    assert early.count == 0 and keys <= backend.blob_keys()
    later = datetime.now(UTC) + timedelta(seconds=GRACE_S + 1)
    reclaimed = delete_due_blobs(backend.engine, backend.blobs, now=later)
    assert reclaimed.count == len(keys)
    assert backend.blob_keys() == set()
    assert count(backend, BlobDeletion) == 0


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_server_removes_the_blobs_once_the_grace_period_has_passed(
    backend: Backend, tmp_path: Path
) -> None:
    settings = backend.settings(ingest_workers=1, codec_workers=1, blob_deletion_grace_s=1, gc_interval_s=0.1)
    with running_server(settings, tmp_path / "server.log") as server:
        stored = store_study(server, "DEL-GC")
        keys = blob_keys_of(backend, list(stored.files))
        assert delete(server, f"/studies/{stored.study}/series/{stored.series_a}").status_code == 204
        kept = blob_keys_of(backend, [stored.b1])
        deadline = time.monotonic() + 60  # a wait for the collector, not a timed assertion
        while backend.blob_keys() != kept and time.monotonic() < deadline:
            time.sleep(0.1)
        assert backend.blob_keys() == kept
        assert len(keys - kept) == 2
        assert instance_status(server, stored, stored.b1) == 200
