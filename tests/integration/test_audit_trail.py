"""The audit trail end to end: requests made with real credentials (API keys, a share token, none at
all) through the authentication layer, read back with `fovea audit` and over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from app.imaging.codec_pool import CodecPool
from app.security.share_tokens import issue_share_token
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.auth_helpers import bearer, new_key
from tests.integration.test_cli import run_fovea

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)

STUDY_ROUTE = "/dicom-web/studies"
FRAMES_ROUTE = (
    "/dicom-web/studies/{study_instance_uid}/series/{series_instance_uid}"
    "/instances/{sop_instance_uid}/frames/{frame_list}"
)
METADATA_ROUTE = "/dicom-web/studies/{study_instance_uid}/metadata"


@dataclass(frozen=True)
class Keys:
    """Authorization headers of real API keys in the index (so anonymous requests are refused)."""

    alice: dict[str, str]  # alice-uploader: stores and reads
    bob: dict[str, str]  # reads only
    auditor: dict[str, str]  # reads the audit trail


@pytest.fixture
def keys(backend: Backend) -> Keys:
    return Keys(
        alice=bearer(new_key(backend, "alice-uploader", "dicom.write", "dicom.read")),
        bob=bearer(new_key(backend, "bob", "dicom.read")),
        auditor=bearer(new_key(backend, "auditor", "admin")),
    )


def store(server: LiveServer, part: bytes, headers: dict[str, str]) -> tuple[httpx.Response, int]:
    body = multipart_body([part])
    response = httpx.post(
        f"{server.dicomweb}/studies",
        content=body,
        headers={"Content-Type": stow_content_type(), "Accept": "application/dicom+json", **headers},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response, len(body)


def fovea_audit(backend: Backend, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    env = {"FOVEA_DATABASE_URL": backend.database_url, "FOVEA_DATA_DIR": str(tmp_path / "cli")}
    result = run_fovea("audit", *args, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_fovea_audit_shows_the_store_search_and_frame_read_of_two_principals(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, keys: Keys, tmp_path: Path
) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    with start_live_server(backend, worker_pool, codec_pool) as server:
        _, stored_bytes = store(
            server, make_instance(study_uid=study, series_uid=series, sop_uid=sop, frames=2), keys.alice
        )
        store(server, make_instance(), keys.alice)  # another study: not in the study's trail
        found = httpx.get(f"{server.dicomweb}/studies", params={"StudyInstanceUID": study}, headers=keys.bob)
        assert [item["0020000D"]["Value"] for item in found.json()] == [[study]]
        nothing = httpx.get(f"{server.dicomweb}/studies", params={"PatientID": "nobody"}, headers=keys.bob)
        assert nothing.json() == []
        frame = httpx.get(
            f"{server.dicomweb}/studies/{study}/series/{series}/instances/{sop}/frames/2",
            headers={"Accept": 'multipart/related; type="application/octet-stream"', **keys.bob},
        )
        assert frame.status_code == 200

    events = fovea_audit(backend, tmp_path, "--study", study)

    summary = [(e["action"], e["principal_kind"], e["principal"], e["username"], e["status"]) for e in events]
    assert summary == [
        ("store", "api-key", "alice-uploader", None, 200),
        ("search", "api-key", "bob", None, 200),
        ("read-frames", "api-key", "bob", None, 200),
    ]
    stored, searched, read = events
    assert (stored["route"], stored["method"], stored["client"]) == (STUDY_ROUTE, "POST", "127.0.0.1")
    assert (stored["studies"], stored["series"], stored["instances"]) == ([study], [series], [sop])
    assert stored["bytes_in"] == stored_bytes
    assert (searched["route"], searched["studies"], searched["bytes_in"]) == (STUDY_ROUTE, [study], 0)
    assert searched["bytes_out"] == found.num_bytes_downloaded
    assert (read["route"], read["studies"], read["series"], read["instances"]) == (
        FRAMES_ROUTE,
        [study],
        [series],
        [sop],
    )
    assert read["bytes_out"] == frame.num_bytes_downloaded

    bobs = fovea_audit(backend, tmp_path, "--principal", "bob")
    assert [(e["action"], e["studies"]) for e in bobs] == [
        ("search", [study]),
        ("search", []),
        ("read-frames", [study]),
    ]
    alices = fovea_audit(backend, tmp_path, "--principal", "alice-uploader")
    assert [e["action"] for e in alices] == ["store", "store"]
    assert alices[0] == stored
    assert fovea_audit(backend, tmp_path, "--study", study, "--since", "1h", "--limit", "1") == [read]
    assert fovea_audit(backend, tmp_path, "--study", study, "--until", "2000-01-01") == []


def test_admin_audit_reads_back_its_own_requests_and_records_being_read(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, keys: Keys
) -> None:
    study = generate_uid()
    with start_live_server(backend, worker_pool, codec_pool) as server:
        store(server, make_instance(study_uid=study), keys.alice)
        missing = httpx.get(f"{server.dicomweb}/studies/{generate_uid()}/metadata", headers=keys.bob)
        assert missing.status_code == 404
        malformed = httpx.get(f"{server.dicomweb}/studies/not-a-uid/metadata", headers=keys.bob)
        assert malformed.status_code == 400
        assert httpx.get(f"{server.base_url}/health").status_code == 200  # not audited
        assert httpx.get(f"{server.dicomweb}/no-such-route", headers=keys.bob).status_code == 404  # nor this
        not_an_admin = httpx.get(f"{server.base_url}/admin/audit", headers=keys.bob)
        assert not_an_admin.status_code == 403

        by_study = httpx.get(f"{server.base_url}/admin/audit", params={"study": study}, headers=keys.auditor)
        everything = httpx.get(f"{server.base_url}/admin/audit", params={"since": "1h"}, headers=keys.auditor)
        bad = httpx.get(f"{server.base_url}/admin/audit", params={"since": "yesterday"}, headers=keys.auditor)

    assert by_study.status_code == 200
    assert [(e["action"], e["principal"], e["studies"]) for e in by_study.json()] == [
        ("store", "alice-uploader", [study]),
    ]
    assert [(e["action"], e["principal_kind"], e["principal"], e["status"]) for e in everything.json()] == [
        ("store", "api-key", "alice-uploader", 200),
        ("read-metadata", "api-key", "bob", 404),
        ("read-metadata", "api-key", "bob", 400),  # the malformed UID is not recorded as one
        ("read-audit", "api-key", "bob", 403),  # refused for want of the admin scope, recorded all the same
        ("read-audit", "api-key", "auditor", 200),  # the previous read of the trail
    ]
    assert everything.json()[2]["studies"] == []
    assert bad.status_code == 400
    assert bad.json() == {
        "status": 400,
        "error": "'yesterday' is not a time: use ISO 8601 (2026-12-01, 2026-12-01T08:00:00Z) "
        "or an age (12h, 7d)",
    }


def test_json_lines_hold_the_same_events_as_the_database(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, keys: Keys, tmp_path: Path
) -> None:
    log_file = tmp_path / "audit" / "events.jsonl"
    secret = "s" * 40
    study = generate_uid()
    share = issue_share_token([secret], study, timedelta(hours=1))
    with start_live_server(
        backend, worker_pool, codec_pool, audit_log=str(log_file), share_secrets=secret
    ) as server:
        store(server, make_instance(study_uid=study), keys.alice)
        assert httpx.get(f"{server.dicomweb}/series", headers=keys.bob).status_code == 200
        shared = httpx.get(f"{server.dicomweb}/studies/{study}/metadata", params={"token": share.token})
        assert shared.status_code == 200
        anonymous = httpx.get(f"{server.dicomweb}/instances")
        assert anonymous.status_code == 401  # API keys exist: no credentials, no access

    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert lines == fovea_audit(backend, tmp_path)
    assert [(e["action"], e["principal_kind"], e["principal"], e["status"]) for e in lines] == [
        ("store", "api-key", "alice-uploader", 200),
        ("search", "api-key", "bob", 200),
        ("read-metadata", "share-token", f"share:{share.token_id}", 200),
        ("search", "anonymous", "anonymous", 401),  # refused before routing, recorded all the same
    ]
    assert (lines[2]["route"], lines[2]["studies"]) == (METADATA_ROUTE, [study])
    assert lines[3]["bytes_out"] == anonymous.num_bytes_downloaded
    assert os.stat(log_file).st_mode & 0o777 == 0o600


def test_audit_db_off_keeps_nothing_in_the_index(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, keys: Keys, tmp_path: Path
) -> None:
    with start_live_server(backend, worker_pool, codec_pool, audit_db=False) as server:
        store(server, make_instance(), keys.alice)
        refused = httpx.get(f"{server.base_url}/admin/audit", headers=keys.auditor)
    assert refused.status_code == 404
    assert "FOVEA_AUDIT_DB=false" in refused.json()["error"]
    assert fovea_audit(backend, tmp_path) == []


def test_stored_blob_sha256_is_in_the_index(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, keys: Keys
) -> None:
    from tests.integration.stow_helpers import stored_instance

    sop = generate_uid()
    part = make_instance(sop_uid=sop)
    with start_live_server(backend, worker_pool, codec_pool) as server:
        store(server, part, keys.alice)
    row = stored_instance(backend, sop)
    assert row is not None
    blob = backend.blobs.read_range(row.blob_key, 0, row.blob_size)
    assert row.sha256 == hashlib.sha256(blob).hexdigest() == hashlib.sha256(part).hexdigest()


def test_fovea_audit_prints_a_table_finds_a_username_and_refuses_bad_times(
    backend: Backend, tmp_path: Path
) -> None:
    from app.audit.actions import Action
    from app.audit.database import insert_events
    from app.audit.events import AuditEvent

    studies = ("1.2.840.99.1", "1.2.840.99.2", "1.2.840.99.3")
    event = AuditEvent(
        datetime(2026, 12, 3, 9, 30, 0, 123456, tzinfo=UTC),
        Action.SEARCH,
        "oidc",
        "b-4711",
        "bob",
        "192.0.2.10",
        "GET",
        STUDY_ROUTE,
        200,
        0,
        5120,
        studies,
    )
    with backend.engine.begin() as connection:
        insert_events(connection, [event])
    env = {"FOVEA_DATABASE_URL": backend.database_url, "FOVEA_DATA_DIR": str(tmp_path / "cli")}

    table = run_fovea("audit", "--format", "table", env=env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "time                     principal          action  status  bytes  client      studies",
        "2026-12-03T09:30:00.123  oidc:b-4711 (bob)  search  200     5120   192.0.2.10  1.2.840.99.1 +2",
    ]
    # An OIDC principal is found by its `sub` and by its preferred_username alike.
    by_username = fovea_audit(backend, tmp_path, "--principal", "bob")
    assert [(e["principal_kind"], e["principal"], e["username"]) for e in by_username] == [
        ("oidc", "b-4711", "bob")
    ]
    assert fovea_audit(backend, tmp_path, "--principal", "b-4711") == by_username
    refused = run_fovea("audit", "--since", "yesterday", env=env)
    assert refused.returncode == 2
    assert "'yesterday' is not a time" in refused.stderr


def test_a_store_is_sent_as_a_dicom_audit_message_by_syslog(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, keys: Keys
) -> None:
    import socket
    from xml.etree import ElementTree

    study = generate_uid()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)
        syslog = f"udp://127.0.0.1:{receiver.getsockname()[1]}"
        with start_live_server(backend, worker_pool, codec_pool, audit_syslog=syslog) as server:
            store(server, make_instance(study_uid=study), keys.alice)
        datagram = receiver.recv(65536)
    message = ElementTree.fromstring(datagram[datagram.index(b"<AuditMessage") :])
    assert message.find("EventIdentification/EventID").attrib["csd-code"] == "110104"  # type: ignore[union-attr]
    assert message.find("EventIdentification").attrib["EventActionCode"] == "C"  # type: ignore[union-attr]
    assert message.find("ActiveParticipant").attrib["UserID"] == "alice-uploader"  # type: ignore[union-attr]
    assert [o.attrib["ParticipantObjectID"] for o in message.findall("ParticipantObjectIdentification")] == [
        study
    ]
