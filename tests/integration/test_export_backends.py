"""`fovea export` on both installations (SQLite + folder, PostgreSQL + S3), run as a real process."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.queries import AuditQuery, find_events
from app.lifecycle.pseudonyms import Pseudonyms
from app.store.tables import Instance
from app.store.write.ingest import Outcome
from tests.conftest import Backend
from tests.dicom_files import make_instance
from tests.integration.test_cli import run_fovea

SECRET = "backend-export-secret-0123456789abcdefgh"


def environment(backend: Backend) -> dict[str, str]:
    settings = backend.settings()
    env = {
        "FOVEA_DATA_DIR": str(backend.data_dir),
        "FOVEA_DATABASE_URL": backend.database_url,
        "FOVEA_STORAGE_URL": backend.storage_url,
        "FOVEA_AUTO_MIGRATE": "false",
        "FOVEA_DEID_SECRET": SECRET,
    }
    if backend.s3_endpoint:
        env |= {
            "FOVEA_S3_ENDPOINT_URL": backend.s3_endpoint,
            "FOVEA_S3_ACCESS_KEY_ID": str(settings.s3_access_key_id),
            "FOVEA_S3_SECRET_ACCESS_KEY": str(settings.s3_secret_access_key),
        }
    return env


def store(backend: Backend, data: bytes) -> None:
    path = backend.blobs.spool_directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(data)
    assert backend.ingestor().ingest(path).outcome is Outcome.STORED


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_export_copies_stored_files_and_writes_every_frame_de_identified(
    backend: Backend, tmp_path: Path
) -> None:
    study, series = generate_uid(), generate_uid()
    sent = [
        make_instance(study_uid=study, series_uid=series, frames=3, seed=1),
        make_instance(study_uid=study, series_uid=series, seed=2),
    ]
    for data in sent:
        store(backend, data)
    env = environment(backend)

    copies = tmp_path / "copies"
    result = run_fovea("export", study, "--out", str(copies), env=env)
    assert result.returncode == 0, result.stderr
    written = sorted(copies.rglob("*.dcm"))
    assert sorted(p.read_bytes() for p in written) == sorted(sent)
    with Session(backend.engine) as session:
        indexed = set(session.scalars(select(Instance.sha256)))
    assert {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in written
    } == indexed  # the fixity evidence agrees

    images = tmp_path / "images"
    result = run_fovea(
        "export", study, "--out", str(images), "--format", "png", "--deidentify", "basic", env=env
    )
    assert result.returncode == 0, result.stderr
    pseudonyms = Pseudonyms(SECRET)
    multi = pydicom.dcmread(pydicom.filebase.DicomBytesIO(sent[0]))
    folder = images / pseudonyms.uid(study) / pseudonyms.uid(series)
    frames = sorted(folder.glob(f"{pseudonyms.uid(multi.SOPInstanceUID)}-*.png"))
    assert [p.name.rsplit("-", 1)[1] for p in frames] == ["0001.png", "0002.png", "0003.png"]
    assert len({np.asarray(Image.open(p)).tobytes() for p in frames}) == 3  # each frame its own image
    assert len(list(images.rglob("*.png"))) == 4

    with backend.engine.connect() as connection:
        events = [e for e in find_events(connection, AuditQuery(study=study)) if e["action"] == "export"]
    assert len(events) == 2
    assert [len(e["files"]) for e in events] == [2, 4]
    assert all(e["studies"] == [study] and e["status"] == 200 for e in events)
