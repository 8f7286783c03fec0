"""Who may DELETE, and what the audit trail and browsers see of it: the `dicom.delete` scope with real API
keys, an audit event naming every instance removed, and CORS preflights that allow DELETE."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor

import httpx
import pytest
from pydicom.uid import generate_uid

from app.imaging.codec_pool import CodecPool
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.auth_helpers import bearer, new_key

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)

STUDY_ROUTE = "/dicom-web/studies/{study_instance_uid}"


@pytest.fixture
def server(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[LiveServer]:
    with start_live_server(backend, worker_pool, codec_pool, cors_origins="https://viewer.example") as live:
        yield live


def test_delete_needs_the_delete_scope_and_its_audit_event_names_every_instance(
    backend: Backend, server: LiveServer
) -> None:
    uploader = bearer(new_key(backend, "uploader", "dicom.write", "dicom.read"))
    reader = bearer(new_key(backend, "reader", "dicom.read"))
    deleter = bearer(new_key(backend, "deleter", "dicom.delete"))
    auditor = bearer(new_key(backend, "auditor", "admin"))
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    sops = {generate_uid(): series_a, generate_uid(): series_a, generate_uid(): series_b}
    files = [
        make_instance(study_uid=study, series_uid=series, sop_uid=sop, seed=seed)
        for seed, (sop, series) in enumerate(sops.items())
    ]
    stored = httpx.post(
        f"{server.dicomweb}/studies",
        content=multipart_body(files),
        headers={"Content-Type": stow_content_type(), **uploader},
        timeout=60,
    )
    assert stored.status_code == 200, stored.text
    url = f"{server.dicomweb}/studies/{study}"

    assert httpx.delete(url).status_code == 401
    for refused in (reader, uploader):
        response = httpx.delete(url, headers=refused)
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert "dicom.delete" in response.headers["WWW-Authenticate"]
    assert httpx.get(f"{url}/metadata", headers=reader).status_code == 200

    malformed = httpx.delete(f"{server.dicomweb}/studies/not-a-uid", headers=deleter)
    assert malformed.status_code == 400
    assert malformed.json() == {"status": 400, "error": "'not-a-uid' is not a valid Study Instance UID"}
    unknown = generate_uid()
    missing = httpx.delete(f"{server.dicomweb}/studies/{unknown}", headers=deleter)
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "error": f"no study {unknown}"}
    deleted = httpx.delete(url, headers=deleter, timeout=60)  # waits out the frame-table cache (5 s)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert httpx.get(f"{url}/metadata", headers=reader).status_code == 404

    trail = httpx.get(f"{server.base_url}/admin/audit", params={"study": study}, headers=auditor)
    assert trail.status_code == 200
    deletions = [event for event in trail.json() if event["action"] == "delete"]
    assert [(e["principal"], e["method"], e["route"], e["status"]) for e in deletions] == [
        ("anonymous", "DELETE", STUDY_ROUTE, 401),
        ("reader", "DELETE", STUDY_ROUTE, 403),
        ("uploader", "DELETE", STUDY_ROUTE, 403),
        ("deleter", "DELETE", STUDY_ROUTE, 204),
    ]
    done = deletions[-1]
    assert done["studies"] == [study]
    assert sorted(done["series"]) == sorted({series_a, series_b})
    assert sorted(done["instances"]) == sorted(sops)
    assert all(event["instances"] == [] for event in deletions[:-1])  # refused: nothing named but the path


def test_cors_preflight_allows_delete(backend: Backend, server: LiveServer) -> None:
    new_key(backend, "present")
    preflight = httpx.options(
        f"{server.dicomweb}/studies/{generate_uid()}",
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"].split(", ")
