"""Patient identity is never rewritten silently (FOVEA_PATIENT_MISMATCH), on SQLite and PostgreSQL.

An instance whose Patient ID (with issuer) or name contradicts the patient its study is filed under is
refused with 0xC410 by default; `accept-new` stores it under the study's patient with warning 0xB110;
`update` files the study under the instance's patient with warning 0xB111. Checked through STOW-RS,
QIDO-RS (what every viewer shows), the index's patient table and `fovea import`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict, Unpack

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imaging.codec_pool import CodecPool
from app.store.tables import Patient
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import items, post_stow, stored_instance, value_of
from tests.integration.test_cli import count_instances, run_fovea

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)

FAILED, REFERENCED = "00081198", "00081199"
SOP_INSTANCE, FAILURE_REASON, WARNING_REASON, ERROR_COMMENT = "00081155", "00081197", "00081196", "00000902"


class Identity(TypedDict, total=False):
    patient_id: str
    patient_name: str


class IdentityWithIssuer(Identity, total=False):
    issuer: str


JANE: Identity = {"patient_id": "P1", "patient_name": "Doe^Jane"}
RICHARD: Identity = {"patient_id": "P2", "patient_name": "Roe^Richard"}


def instance(
    study: str, sop: str | None = None, *, issuer: str = "", seed: int = 0, **patient: Unpack[Identity]
) -> bytes:
    data = make_instance(study_uid=study, sop_uid=sop, seed=seed, **patient)
    if not issuer:
        return data
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.IssuerOfPatientID = issuer
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def study_patient(server: LiveServer, study: str) -> tuple[str, str]:
    """(PatientID, PatientName) of the study as QIDO-RS returns it."""
    response = httpx.get(f"{server.dicomweb}/studies", params={"StudyInstanceUID": study}, timeout=30)
    assert response.status_code == 200
    [result] = response.json()
    name = result["00100010"].get("Value", [{}])[0].get("Alphabetic", "")
    return result["00100020"]["Value"][0], name


def patient_rows(backend: Backend) -> list[tuple[str, str, str]]:
    with Session(backend.engine) as session:
        rows = session.execute(
            select(Patient.patient_id, Patient.issuer_of_patient_id, Patient.patient_name).order_by(
                Patient.patient_id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def only_failure(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert REFERENCED not in body
    [failure] = items(body, FAILED)
    return failure


def only_stored(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert FAILED not in body
    [stored] = items(body, REFERENCED)
    return stored


@pytest.fixture
def server_with(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[Any]:
    """Start a live server with the given patient-mismatch policy (one per test)."""
    servers = []

    def start(policy: str) -> LiveServer:
        context = start_live_server(backend, worker_pool, codec_pool, patient_mismatch=policy)
        servers.append(context)
        return context.__enter__()

    yield start
    for context in servers:
        context.__exit__(None, None, None)


# -- reject (the default) ------------------------------------------------------------------------------


def test_other_patient_in_a_stored_study_is_refused_with_0xc410(
    live_server: LiveServer, backend: Backend
) -> None:
    study, sop = generate_uid(), generate_uid()
    assert post_stow(live_server, [instance(study, **JANE)]).status_code == 200
    keys = backend.blob_keys()

    response = post_stow(live_server, [instance(study, sop, seed=1, **RICHARD)])

    assert response.status_code == 409
    failure = only_failure(response)
    assert value_of(failure, SOP_INSTANCE) == sop
    assert value_of(failure, FAILURE_REASON) == 0xC410
    assert value_of(failure, ERROR_COMMENT) == "patient differs from the study's: PatientID, PatientName"
    assert study_patient(live_server, study) == ("P1", "Doe^Jane")
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]
    assert stored_instance(backend, sop) is None
    assert backend.blob_keys() == keys  # no blob left behind by the refusal
    assert backend.spool_files() == []


@pytest.mark.parametrize(
    ("second", "differs"),
    [
        ({"patient_id": "P1", "patient_name": "Roe^Richard"}, "PatientName"),
        ({"patient_id": "P2", "patient_name": "Doe^Jane"}, "PatientID"),
        ({"patient_id": "P1", "patient_name": "Doe^Jane", "issuer": "HOSPITAL-B"}, "IssuerOfPatientID"),
    ],
)
def test_each_identifying_attribute_alone_is_a_conflict(
    live_server: LiveServer, backend: Backend, second: IdentityWithIssuer, differs: str
) -> None:
    study = generate_uid()
    assert post_stow(live_server, [instance(study, **JANE)]).status_code == 200

    response = post_stow(live_server, [instance(study, seed=1, **second)])

    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == 0xC410
    assert value_of(failure, ERROR_COMMENT) == f"patient differs from the study's: {differs}"
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]


def test_same_patient_spelt_otherwise_is_stored_and_keeps_the_first_spelling(live_server: LiveServer) -> None:
    study = generate_uid()
    assert post_stow(live_server, [instance(study, **JANE)]).status_code == 200

    response = post_stow(live_server, [instance(study, seed=1, patient_id="P1", patient_name="DOE^JANE^^")])

    assert response.status_code == 200
    assert study_patient(live_server, study) == ("P1", "Doe^Jane")


def test_new_study_of_a_stored_patient_id_with_another_name_is_refused(
    live_server: LiveServer, backend: Backend
) -> None:
    assert post_stow(live_server, [instance(generate_uid(), **JANE)]).status_code == 200

    response = post_stow(
        live_server, [instance(generate_uid(), seed=1, patient_id="P1", patient_name="Roe^Ann")]
    )

    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == 0xC410
    assert value_of(failure, ERROR_COMMENT) == "patient differs from the stored one with this ID: PatientName"
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]


def test_replacing_the_only_instance_corrects_the_patient(live_server: LiveServer, backend: Backend) -> None:
    """Duplicate policy replace: a corrected re-send of a study's only instance re-files the study."""
    study, sop = generate_uid(), generate_uid()
    assert post_stow(live_server, [instance(study, sop, **RICHARD)]).status_code == 200

    response = post_stow(live_server, [instance(study, sop, seed=1, **JANE)])

    assert response.status_code == 202
    assert value_of(only_stored(response), WARNING_REASON) == 0xB100  # replaced
    assert study_patient(live_server, study) == ("P1", "Doe^Jane")
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]  # the wrong patient is gone


def test_replacing_the_only_instance_corrects_the_name_of_its_patient(
    live_server: LiveServer, backend: Backend
) -> None:
    """Same Patient ID, corrected name: the patient row has no other study to vouch for the old name."""
    study, sop = generate_uid(), generate_uid()
    assert (
        post_stow(live_server, [instance(study, sop, patient_id="P1", patient_name="Doe^Jnae")]).status_code
        == 200
    )

    response = post_stow(live_server, [instance(study, sop, seed=1, **JANE)])

    assert value_of(only_stored(response), WARNING_REASON) == 0xB100
    assert study_patient(live_server, study) == ("P1", "Doe^Jane")
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]


def test_replacing_the_only_instance_cannot_rename_a_patient_with_other_studies(
    live_server: LiveServer, backend: Backend
) -> None:
    study, sop = generate_uid(), generate_uid()
    assert post_stow(live_server, [instance(generate_uid(), seed=2, **JANE)]).status_code == 200
    assert post_stow(live_server, [instance(study, sop, **JANE)]).status_code == 200

    response = post_stow(live_server, [instance(study, sop, seed=1, patient_id="P1", patient_name="Roe^Ann")])

    assert value_of(only_failure(response), FAILURE_REASON) == 0xC410
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]


def test_replacing_one_of_several_instances_cannot_change_the_patient(
    live_server: LiveServer, backend: Backend
) -> None:
    study, sop = generate_uid(), generate_uid()
    original = instance(study, sop, **JANE)
    assert post_stow(live_server, [original, instance(study, seed=2, **JANE)]).status_code == 200

    response = post_stow(live_server, [instance(study, sop, seed=1, **RICHARD)])

    assert value_of(only_failure(response), FAILURE_REASON) == 0xC410
    stored = stored_instance(backend, sop)
    assert stored is not None
    assert backend.blobs.read_range(stored.blob_key, 0, len(original) + 1) == original  # kept as it was
    assert study_patient(live_server, study) == ("P1", "Doe^Jane")


def test_first_instances_of_a_study_naming_different_patients_cannot_both_win(
    live_server: LiveServer,
) -> None:
    """The two parts of each request are stored by two worker processes at once; two requests race too."""
    studies = [generate_uid() for _ in range(6)]

    patients = {"P1": ("P1", "Doe^Jane"), "P2": ("P2", "Roe^Richard"), "P3": ("P3", "Poe^Ed")}
    for study in studies:
        sops = {patient_id: generate_uid() for patient_id in patients}

        parts = {
            pid: instance(study, sops[pid], seed=seed, patient_id=pid, patient_name=patients[pid][1])
            for seed, pid in enumerate(patients)
        }

        with ThreadPoolExecutor(2) as threads:
            both = threads.submit(post_stow, live_server, [parts["P1"], parts["P2"]])
            other = threads.submit(post_stow, live_server, [parts["P3"]])
            responses = [both.result(), other.result()]

        stored = [item for r in responses for item in items(r.json(), REFERENCED)]
        failed = [item for r in responses for item in items(r.json(), FAILED)]
        assert len(stored) == 1, [r.json() for r in responses]
        assert {value_of(item, FAILURE_REASON) for item in failed} == {0xC410} and len(failed) == 2
        [winner] = [pid for pid, sop in sops.items() if sop == value_of(stored[0], SOP_INSTANCE)]
        assert study_patient(live_server, study) == patients[winner]  # the study's patient is the winner's
        instances = httpx.get(f"{live_server.dicomweb}/studies/{study}/instances", timeout=30).json()
        assert [value_of(i, "00080018") for i in instances] == [sops[winner]]


# -- accept-new and update -----------------------------------------------------------------------------


def test_accept_new_stores_under_the_study_patient_with_warning_0xb110(
    server_with: Any, backend: Backend
) -> None:
    server = server_with("accept-new")
    study, sop = generate_uid(), generate_uid()
    assert post_stow(server, [instance(study, **JANE)]).status_code == 200
    sent = instance(study, sop, seed=1, **RICHARD)

    response = post_stow(server, [sent])

    assert response.status_code == 202
    stored = only_stored(response)
    assert value_of(stored, WARNING_REASON) == 0xB110
    assert study_patient(server, study) == ("P1", "Doe^Jane")  # the index's patient is kept
    assert patient_rows(backend) == [("P1", "", "Doe^Jane")]
    metadata = httpx.get(
        f"{server.dicomweb}/studies/{study}/series/{_series_of(sent)}/instances/{sop}/metadata"
    )
    assert metadata.json()[0]["00100010"]["Value"][0]["Alphabetic"] == "Roe^Richard"  # stored as sent


def test_update_files_the_study_under_the_new_patient_with_warning_0xb111(
    server_with: Any, backend: Backend
) -> None:
    server = server_with("update")
    study = generate_uid()
    assert post_stow(server, [instance(study, **JANE)]).status_code == 200

    response = post_stow(server, [instance(study, seed=1, **RICHARD)])

    assert response.status_code == 202
    stored = only_stored(response)
    assert value_of(stored, WARNING_REASON) == 0xB111
    assert study_patient(server, study) == ("P2", "Roe^Richard")
    assert patient_rows(backend) == [("P2", "", "Roe^Richard")]  # Jane had no other study: removed


def test_update_keeps_a_patient_who_has_other_studies(server_with: Any, backend: Backend) -> None:
    server = server_with("update")
    study = generate_uid()
    assert post_stow(server, [instance(study, **JANE)]).status_code == 200
    assert post_stow(server, [instance(generate_uid(), seed=3, **JANE)]).status_code == 200

    post_stow(server, [instance(study, seed=1, **RICHARD)])

    assert study_patient(server, study) == ("P2", "Roe^Richard")
    assert patient_rows(backend) == [("P1", "", "Doe^Jane"), ("P2", "", "Roe^Richard")]


def test_update_renames_the_stored_patient_of_a_new_study(server_with: Any, backend: Backend) -> None:
    server = server_with("update")
    assert post_stow(server, [instance(generate_uid(), **JANE)]).status_code == 200
    study = generate_uid()

    response = post_stow(server, [instance(study, seed=1, patient_id="P1", patient_name="Doe-Roe^Jane")])

    assert value_of(only_stored(response), WARNING_REASON) == 0xB111
    assert study_patient(server, study) == ("P1", "Doe-Roe^Jane")
    assert patient_rows(backend) == [("P1", "", "Doe-Roe^Jane")]


def _series_of(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SeriesInstanceUID)


# -- fovea import --------------------------------------------------------------------------------------


def test_import_reports_the_refusal(tmp_path: Path, backend: Backend) -> None:
    if backend.name != "sqlite-file":
        pytest.skip("fovea import runs on its own SQLite data folder")
    study = generate_uid()
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(instance(study, **JANE))
    (folder / "b.dcm").write_bytes(instance(study, seed=1, **RICHARD))
    data_dir = tmp_path / "imported"

    result = run_fovea(
        "import", str(folder), "--data-dir", str(data_dir), "--jobs", "1", env={"COLUMNS": "400"}
    )

    assert result.returncode == 1
    assert count_instances(data_dir) == 1
    output = " ".join(result.stderr.split())
    assert "b.dcm │ patient differs from the study's: PatientID, PatientName │" in output
