"""IHE IOCM rejection notes through STOW-RS, on SQLite and PostgreSQL.

A Key Object Selection Document (built with highdicom) titled with one of the rejection codes hides the
instances it references from QIDO-RS and every WADO-RS resource (404), keeps itself visible, refuses or
accepts a later re-store of a rejected instance (FOVEA_REJECTED_RESTORE), and is audited; a Key Object
Selection Document with another title changes nothing. `includerejected=true` shows what was hidden, to
an administrator only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid
from sqlalchemy import select

from app.imaging.codec_pool import CodecPool
from app.store.tables import Instance, RejectedInstance
from app.store.tables import Series as SeriesRow
from app.store.upkeep.rejected_retention import purge_rejected
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance
from tests.integration.auth_helpers import bearer, new_key
from tests.integration.stow_helpers import items, pending_deletions, post_stow, value_of

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)

REJECTION_CODES = {
    "113001": "Rejected for Quality Reasons",
    "113037": "Rejected for Patient Safety Reasons",
    "113038": "Incorrect Modality Worklist Entry",
    "113039": "Data Retention Policy Expired",
}
OF_INTEREST = Code("113000", "DCM", "Of Interest")
FAILED, REFERENCED = "00081198", "00081199"
SOP_INSTANCE, FAILURE_REASON = "00081155", "00081197"
SERIES_UID, SOP_UID = "0020000E", "00080018"
RELATED_SERIES, RELATED_INSTANCES, MODALITIES = "00201206", "00201208", "00080061"
SERIES_RELATED_INSTANCES = "00201209"
CONCEPT_NAME, CODE_VALUE = "0040A043", "00080100"
REJECTED_INSTANCE = 0xA771
_TYPE_2 = (
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyTime",
    "ReferringPhysicianName",
    "AccessionNumber",
)


@dataclass(frozen=True)
class Study:
    """A study of two CT series: `kept` stays, `rejected` (two of series A, all of series B) go."""

    uid: str
    series_a: str
    series_b: str
    kept: str
    rejected_a: tuple[str, str]
    rejected_b: str
    parts: dict[str, bytes]  # SOP Instance UID -> Part 10 file

    @property
    def rejected(self) -> tuple[str, ...]:
        return (*self.rejected_a, self.rejected_b)

    def datasets(self, *uids: str) -> list[pydicom.Dataset]:
        found: list[pydicom.Dataset] = []
        for uid in uids:
            ds = pydicom.dcmread(io.BytesIO(self.parts[uid]))
            for keyword in _TYPE_2:  # what highdicom copies into the note's patient and study modules
                if keyword not in ds:
                    setattr(ds, keyword, "")
            found.append(ds)
        return found


def make_study() -> Study:
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    kept, a1, a2, b1 = (str(generate_uid()) for _ in range(4))
    parts = {
        uid: make_instance(study_uid=study, series_uid=series, sop_uid=uid, seed=seed)
        for seed, (uid, series) in enumerate(
            ((kept, series_a), (a1, series_a), (a2, series_a), (b1, series_b))
        )
    }
    return Study(study, series_a, series_b, kept, (a1, a2), b1, parts)


def key_object_note(
    study: Study, uids: tuple[str, ...], title: Code, *, note_study_uid: str | None = None
) -> tuple[str, bytes]:
    """A Key Object Selection Document titled `title` referencing `uids` of `study`: (its UID, Part 10)."""
    evidence = study.datasets(*uids)
    content = KeyObjectSelection(document_title=title, referenced_objects=evidence)
    note_uid = generate_uid()
    document = KeyObjectSelectionDocument(
        evidence=evidence,
        content=content,
        series_instance_uid=generate_uid(),
        series_number=99,
        sop_instance_uid=note_uid,
        instance_number=1,
        manufacturer="Fovea tests",
    )
    if note_study_uid is not None:  # a note filed in a study of its own
        document.StudyInstanceUID = note_study_uid
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    return note_uid, buffer.getvalue()


def rejection_note(
    study: Study, uids: tuple[str, ...], code: str = "113001", **kwargs: Any
) -> tuple[str, bytes]:
    return key_object_note(study, uids, Code(code, "DCM", REJECTION_CODES[code]), **kwargs)


@pytest.fixture
def server(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[LiveServer]:
    with start_live_server(backend, worker_pool, codec_pool) as live:
        yield live


def store(server: LiveServer, *parts: bytes) -> httpx.Response:
    response = post_stow(server, list(parts))
    assert response.status_code == 200, response.text
    return response


def get(server: LiveServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.dicomweb}{path}", params=params, timeout=30)


def found(server: LiveServer, path: str, key: str, **params: str) -> list[str]:
    """The values of `key` in the QIDO-RS results of `path`."""
    response = get(server, path, **params)
    assert response.status_code == 200, response.text
    return [result[key]["Value"][0] for result in response.json()]


def instance_path(study: str, series: str, sop: str) -> str:
    return f"/studies/{study}/series/{series}/instances/{sop}"


def wado_statuses(server: LiveServer, study: str, series: str, sop: str) -> dict[str, int]:
    """The status of every WADO-RS resource of one instance, and of its series."""
    instance = instance_path(study, series, sop)
    paths = {
        "instance": instance,
        "instance metadata": instance + "/metadata",
        "frames": instance + "/frames/1",
        "rendered": instance + "/rendered",
        "thumbnail": instance + "/thumbnail",
        "pixeldata": instance + "/pixeldata",
    }
    accepts = {"frames": "multipart/related; type=application/octet-stream", "rendered": "image/png"}
    statuses = {}
    for name, path in paths.items():
        headers = {"Accept": accepts[name]} if name in accepts else {}
        statuses[name] = httpx.get(f"{server.dicomweb}{path}", headers=headers, timeout=30).status_code
    return statuses


def metadata_uids(server: LiveServer, path: str) -> set[str]:
    response = get(server, path + "/metadata")
    assert response.status_code == 200, response.text
    return {item[SOP_UID]["Value"][0] for item in response.json()}


@pytest.mark.parametrize("code", sorted(REJECTION_CODES))
def test_a_rejection_note_hides_what_it_references_and_stays_visible_itself(
    server: LiveServer, backend: Backend, code: str
) -> None:
    study = make_study()
    store(server, *study.parts.values())
    before = wado_statuses(server, study.uid, study.series_a, study.rejected_a[0])
    assert set(before.values()) == {200}

    note_uid, note = rejection_note(study, study.rejected, code)
    response = store(server, note)
    [stored] = items(response.json(), REFERENCED)
    assert value_of(stored, SOP_INSTANCE) == note_uid

    # QIDO-RS: the rejected instances are gone at every level; series B (all rejected) with them.
    assert set(found(server, f"/studies/{study.uid}/instances", SOP_UID)) == {study.kept, note_uid}
    assert set(found(server, "/instances", SOP_UID, StudyInstanceUID=study.uid)) == {study.kept, note_uid}
    assert found(server, f"/studies/{study.uid}/series/{study.series_b}/instances", SOP_UID) == []
    note_series = found(server, f"/studies/{study.uid}/instances", SERIES_UID, SOPInstanceUID=note_uid)
    assert set(found(server, f"/studies/{study.uid}/series", SERIES_UID)) == {study.series_a, *note_series}
    assert found(server, "/series", SERIES_UID, SeriesInstanceUID=study.series_b) == []
    [series_a] = get(server, f"/studies/{study.uid}/series", SeriesInstanceUID=study.series_a).json()
    assert series_a[SERIES_RELATED_INSTANCES]["Value"] == [1]
    [summary] = get(server, "/studies", StudyInstanceUID=study.uid, includefield="all").json()
    assert summary[RELATED_INSTANCES]["Value"] == [2]  # the kept CT and the note
    assert summary[RELATED_SERIES]["Value"] == [2]
    assert summary[MODALITIES]["Value"] == ["CT", "KO"]
    assert found(server, "/studies", "0020000D", ModalitiesInStudy="CT") == [study.uid]

    # WADO-RS: every resource of a rejected instance is 404, series B's too; the kept one is served.
    for uid, series in ((study.rejected_a[0], study.series_a), (study.rejected_b, study.series_b)):
        assert set(wado_statuses(server, study.uid, series, uid).values()) == {404}
    assert get(server, f"/studies/{study.uid}/series/{study.series_b}/metadata").status_code == 404
    assert get(server, f"/studies/{study.uid}/series/{study.series_b}").status_code == 404
    assert set(wado_statuses(server, study.uid, study.series_a, study.kept).values()) == {200}
    assert metadata_uids(server, f"/studies/{study.uid}") == {study.kept, note_uid}
    assert metadata_uids(server, f"/studies/{study.uid}/series/{study.series_a}") == {study.kept}

    # The note itself is stored and served, with its title.
    [note_metadata] = get(
        server, f"/studies/{study.uid}/series/{note_series[0]}/instances/{note_uid}/metadata"
    ).json()
    assert note_metadata[CONCEPT_NAME]["Value"][0][CODE_VALUE]["Value"] == [code]

    # The index keeps the rejected instances (hidden, not deleted) and why they were rejected.
    with backend.engine.connect() as connection:
        flags = dict(connection.execute(select(Instance.sop_instance_uid, Instance.rejected)).all())
        reasons = dict(
            connection.execute(select(RejectedInstance.sop_instance_uid, RejectedInstance.reason_code)).all()
        )
    assert flags == {study.kept: False, note_uid: False, **{uid: True for uid in study.rejected}}
    assert reasons == {uid: code for uid in study.rejected}


def test_a_study_left_with_no_instance_is_hidden(server: LiveServer) -> None:
    study = make_study()
    store(server, *study.parts.values())
    _, note = rejection_note(study, (study.kept, *study.rejected), note_study_uid=generate_uid())
    store(server, note)
    assert found(server, "/studies", "0020000D", StudyInstanceUID=study.uid) == []
    assert found(server, "/series", SERIES_UID, StudyInstanceUID=study.uid) == []
    assert get(server, f"/studies/{study.uid}/metadata").status_code == 404
    assert get(server, f"/studies/{study.uid}").status_code == 404
    assert get(server, f"/studies/{study.uid}/rendered").status_code == 404
    # an administrator still finds it
    assert found(server, "/studies", "0020000D", StudyInstanceUID=study.uid, includerejected="true") == [
        study.uid
    ]


def test_a_key_object_selection_with_another_title_changes_nothing(
    server: LiveServer, backend: Backend
) -> None:
    study = make_study()
    store(server, *study.parts.values())
    note_uid, note = key_object_note(study, study.rejected, OF_INTEREST)
    store(server, note)
    assert set(found(server, f"/studies/{study.uid}/instances", SOP_UID)) == {*study.parts, note_uid}
    assert set(wado_statuses(server, study.uid, study.series_b, study.rejected_b).values()) == {200}
    with backend.engine.connect() as connection:
        assert connection.execute(select(RejectedInstance)).first() is None
        assert not any(connection.execute(select(Instance.rejected)).scalars())


def failure_of(response: httpx.Response) -> tuple[str, int]:
    [failure] = items(response.json(), FAILED)
    return value_of(failure, SOP_INSTANCE), value_of(failure, FAILURE_REASON)


def test_re_storing_a_rejected_instance_is_refused_by_default(server: LiveServer, backend: Backend) -> None:
    study = make_study()
    store(server, *study.parts.values())
    store(server, rejection_note(study, study.rejected_a)[1])
    again = post_stow(server, [study.parts[study.rejected_a[0]]])
    assert again.status_code == 409
    assert failure_of(again) == (study.rejected_a[0], REJECTED_INSTANCE)
    assert study.rejected_a[0] not in found(server, f"/studies/{study.uid}/instances", SOP_UID)
    with backend.engine.connect() as connection:  # still the one stored first, still hidden
        assert connection.execute(
            select(Instance.rejected).where(Instance.sop_instance_uid == study.rejected_a[0])
        ).scalar_one()


def test_a_note_received_before_the_instance_refuses_it(server: LiveServer, backend: Backend) -> None:
    study = make_study()
    store(server, study.parts[study.kept])
    store(server, rejection_note(study, (study.rejected_b,))[1])
    response = post_stow(server, [study.parts[study.rejected_b], study.parts[study.rejected_a[0]]])
    assert response.status_code == 202  # one stored, one refused
    assert failure_of(response) == (study.rejected_b, REJECTED_INSTANCE)
    with backend.engine.connect() as connection:
        stored = set(connection.execute(select(Instance.sop_instance_uid)).scalars())
    assert study.rejected_b not in stored and study.rejected_a[0] in stored


def test_accept_policy_stores_the_instance_again_and_lifts_the_rejection(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    study = make_study()
    with start_live_server(backend, worker_pool, codec_pool, rejected_restore="accept") as server:
        store(server, *study.parts.values())
        store(server, rejection_note(study, study.rejected_a)[1])
        assert study.rejected_a[0] not in found(server, f"/studies/{study.uid}/instances", SOP_UID)
        response = post_stow(server, [study.parts[study.rejected_a[0]]])
        assert response.status_code == 202, response.text  # replaced the stored (hidden) copy
        shown = found(server, f"/studies/{study.uid}/instances", SOP_UID)
        assert study.rejected_a[0] in shown and study.rejected_a[1] not in shown
        assert set(wado_statuses(server, study.uid, study.series_a, study.rejected_a[0]).values()) == {200}
    with backend.engine.connect() as connection:
        assert set(connection.execute(select(RejectedInstance.sop_instance_uid)).scalars()) == {
            study.rejected_a[1]
        }


def test_includerejected_shows_rejected_instances_to_an_administrator_only(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    admin = bearer(new_key(backend, "archivist", "admin", "dicom.read", "dicom.write"))
    reader = bearer(new_key(backend, "viewer", "dicom.read"))
    study = make_study()
    with start_live_server(backend, worker_pool, codec_pool) as server:
        for part in (*study.parts.values(), rejection_note(study, study.rejected)[1]):
            assert post_stow(server, [part], headers=admin).status_code == 200
        url = f"{server.dicomweb}/studies/{study.uid}/instances"
        shown = httpx.get(url, params={"includerejected": "true"}, headers=admin, timeout=30)
        assert shown.status_code == 200
        assert set(study.parts) <= {result[SOP_UID]["Value"][0] for result in shown.json()}
        series = httpx.get(
            f"{server.dicomweb}/studies/{study.uid}/series", params={"includerejected": "true"}, headers=admin
        )
        assert study.series_b in {result[SERIES_UID]["Value"][0] for result in series.json()}
        refused = httpx.get(url, params={"includerejected": "true"}, headers=reader, timeout=30)
        assert refused.status_code == 403
        assert "admin" in refused.json()["error"]
        plain = httpx.get(url, headers=reader, timeout=30)
        assert study.rejected_b not in {result[SOP_UID]["Value"][0] for result in plain.json()}
        assert httpx.get(url, params={"includerejected": "maybe"}, headers=admin).status_code == 400


def test_a_rejection_is_audited_with_the_instances_it_rejected(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, tmp_path: Path
) -> None:
    log_file = tmp_path / "audit.jsonl"
    study = make_study()
    with start_live_server(backend, worker_pool, codec_pool, audit_log=str(log_file)) as server:
        store(server, *study.parts.values())
        note_uid, note = rejection_note(study, study.rejected, "113037")
        store(server, note)
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [event["action"] for event in events] == ["store", "store", "reject"]
    rejection = events[2]
    assert rejection["instances"] == list(study.rejected)
    assert rejection["studies"] == [study.uid]
    assert set(rejection["series"]) == {study.series_a, study.series_b}
    assert (rejection["method"], rejection["route"], rejection["status"]) == (
        "POST",
        "/dicom-web/studies",
        200,
    )
    assert events[1]["instances"] == [note_uid]


def stored_uids(backend: Backend) -> set[str]:
    with backend.engine.connect() as connection:
        return set(connection.execute(select(Instance.sop_instance_uid)).scalars())


def blob_keys_of(backend: Backend, uids: tuple[str, ...]) -> set[str]:
    with backend.engine.connect() as connection:
        return set(
            connection.execute(select(Instance.blob_key).where(Instance.sop_instance_uid.in_(uids))).scalars()
        )


def test_deleting_at_once_removes_the_rejected_rows_and_schedules_their_blobs(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    study = make_study()
    with start_live_server(backend, worker_pool, codec_pool, rejected_delete_after_days=0) as server:
        store(server, *study.parts.values())
        keys = blob_keys_of(backend, study.rejected)
        note_uid, note = rejection_note(study, study.rejected)
        store(server, note)
        assert stored_uids(backend) == {study.kept, note_uid}
        assert keys <= pending_deletions(backend)  # after the grace, for reads already under way
        with backend.engine.connect() as connection:
            series = set(connection.execute(select(SeriesRow.series_instance_uid)).scalars())
            rejected = set(connection.execute(select(RejectedInstance.sop_instance_uid)).scalars())
        assert study.series_b not in series and study.series_a in series  # B had nothing else
        assert rejected == set(study.rejected)  # the rejection outlives the rows
        again = post_stow(server, [study.parts[study.rejected_b]])
        assert failure_of(again) == (study.rejected_b, REJECTED_INSTANCE)


def test_deleting_after_days_takes_only_rejections_that_old(server: LiveServer, backend: Backend) -> None:
    study = make_study()
    store(server, *study.parts.values())
    store(server, rejection_note(study, study.rejected_a)[1])
    now = datetime.now(UTC)
    assert purge_rejected(backend.engine, after_days=2, blob_grace_s=0, now=now + timedelta(days=1)) == 0
    assert set(study.rejected_a) <= stored_uids(backend)
    assert purge_rejected(backend.engine, after_days=2, blob_grace_s=0, now=now + timedelta(days=3)) == 2
    remaining = stored_uids(backend)
    assert not set(study.rejected_a) & remaining
    assert {study.kept, study.rejected_b} <= remaining  # not rejected: kept
