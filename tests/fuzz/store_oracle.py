"""What every STOW-RS answer to hostile input must be, and what the store must look like afterwards.

Why one module: the multipart fuzzer and the DICOM mutation fuzzer post different bodies but judge the
outcome by the same rules. An answer is a 4xx, or 200/202 with a Store Instances Response that matches the
contract; never a 5xx. Afterwards every acknowledged instance is found by QIDO-RS and served by WADO-RS,
and the index and the blob store hold exactly the same instances (no orphan blob, no dangling row, no
spool file left behind).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import jsonschema
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.infra.s3_blobs import S3BlobStore
from app.store.tables import Instance
from app.store.upkeep.deferred_deletion import pending_keys
from tests.conformance.test_openapi import CONTRACT_PATH
from tests.conftest import Backend
from tests.fuzz.conftest import FuzzServer

STORE_STATUSES = frozenset({200, 202, 400, 409, 413})  # with a Store Instances Response (503: outages only)
REQUEST_ERROR_STATUSES = frozenset({400, 406, 413, 415})  # the request as a whole, {"status", "error"}
FAILED, REFERENCED = "00081198", "00081199"
CLASS_UID, SOP_UID, RETRIEVE_URL, FAILURE_REASON = "00081150", "00081155", "00081190", "00081197"
DICOM_JSON = "application/dicom+json"


@cache
def _store_response_validator() -> jsonschema.Draft202012Validator:
    contract = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    schema = {**contract, "$ref": "#/components/schemas/StoreInstancesResponse"}
    return jsonschema.Draft202012Validator(schema)


@dataclass(frozen=True)
class StoreAnswer:
    status: int
    stored: tuple[str, ...]  # SOP Instance UIDs in Referenced SOP Sequence
    failed: tuple[int, ...]  # Failure Reasons in Failed SOP Sequence
    request_error: str | None = None


def judge_store_answer(response: httpx.Response, parts: int | None = None) -> StoreAnswer:
    """Check one STOW-RS answer against the rules above; `parts`: how many parts the body really had."""
    status = response.status_code
    assert status < 500, f"server error {status} for hostile input: {response.text[:500]}"
    media_type = response.headers.get("content-type", "").split(";")[0]
    if media_type == "application/json":
        assert status in REQUEST_ERROR_STATUSES, f"request error with status {status}"
        body = response.json()
        assert body["status"] == status
        assert isinstance(body["error"], str) and body["error"].strip(), "a request error names its problem"
        return StoreAnswer(status, (), (), body["error"])
    assert status in STORE_STATUSES, f"status {status} with a {media_type!r} body"
    assert media_type == DICOM_JSON, f"Store Instances Response as {media_type!r}"
    body = response.json()
    _store_response_validator().validate(body)
    stored = tuple(item[SOP_UID]["Value"][0] for item in body.get(REFERENCED, {}).get("Value", []))
    failed = tuple(item[FAILURE_REASON]["Value"][0] for item in body.get(FAILED, {}).get("Value", []))
    if parts is not None:
        assert len(stored) + len(failed) == parts, (
            f"{parts} parts, {len(stored)} stored, {len(failed)} failed"
        )
    assert (status in (200, 202)) == bool(stored), f"status {status} with {len(stored)} stored"
    assert (status == 200) == (bool(stored) and not failed and not _warned(body)), f"status {status}"
    return StoreAnswer(status, stored, failed)


def _warned(body: dict[str, Any]) -> bool:
    return any("00081196" in item for item in body.get(REFERENCED, {}).get("Value", []))


def assert_retrievable(server: FuzzServer, sop_instance_uid: str) -> None:
    """An acknowledged instance: QIDO-RS finds it, and WADO-RS serves its metadata and its file."""
    base = server.dicomweb
    found = httpx.get(f"{base}/instances", params={"SOPInstanceUID": sop_instance_uid}, timeout=30)
    assert found.status_code == 200, found.text
    [match] = found.json()
    study = match["0020000D"]["Value"][0]
    series = match["0020000E"]["Value"][0]
    url = f"{base}/studies/{study}/series/{series}/instances/{sop_instance_uid}"
    metadata = httpx.get(f"{url}/metadata", timeout=30)
    assert metadata.status_code == 200, metadata.text
    [dataset] = metadata.json()
    assert dataset["00080018"]["Value"] == [sop_instance_uid]
    accept = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    as_stored = httpx.get(url, headers=accept, timeout=30)
    assert as_stored.status_code == 200, as_stored.text


def assert_pixels_served_or_refused(server: FuzzServer, sop_instance_uid: str) -> None:
    """An acknowledged instance's first frame, decoded or as stored, and its rendered image: a 2xx, or a
    4xx that names the problem (404 no pixels, 406 cannot decode), never a 5xx."""
    base = server.dicomweb
    [match] = httpx.get(f"{base}/instances", params={"SOPInstanceUID": sop_instance_uid}, timeout=30).json()
    study, series = match["0020000D"]["Value"][0], match["0020000E"]["Value"][0]
    url = f"{base}/studies/{study}/series/{series}/instances/{sop_instance_uid}"
    for path, accept in PIXEL_REQUESTS:
        response = httpx.get(url + path, headers={"Accept": accept}, timeout=30)
        assert response.status_code < 500, f"{path} ({accept}): {response.status_code} {response.text[:300]}"
        if response.status_code >= 400:
            assert response.json()["error"], "an error names its problem"


PIXEL_REQUESTS = (
    ("/frames/1", 'multipart/related; type="application/octet-stream"; transfer-syntax=*'),
    ("/frames/1", 'multipart/related; type="application/octet-stream"'),
    ("/rendered", "image/png"),
)


def blob_keys(backend: Backend) -> set[str]:
    """Every blob key, however many (a long run stores more than one S3 listing page holds)."""
    if not isinstance(backend.blobs, S3BlobStore):
        return backend.blob_keys()
    pages = backend.blobs.client.get_paginator("list_objects_v2").paginate(Bucket=backend.blobs.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def assert_store_consistent(server: FuzzServer) -> None:
    """Index rows and blobs name each other exactly, and no spooled part is left behind."""
    backend = server.backend
    with Session(backend.engine) as session:
        rows = session.execute(select(Instance.blob_key, Instance.data_blob_key)).all()
    indexed = {key for row in rows for key in row if key}
    stored = blob_keys(backend)
    with backend.engine.connect() as connection:
        # A replaced instance's old blob waits out its grace period (FOVEA_BLOB_DELETION_GRACE_S) for
        # reads that looked it up before; the deferred-deletion table accounts for it.
        scheduled = pending_keys(connection, stored - indexed)
    orphans, missing = stored - indexed - scheduled, indexed - stored
    assert not orphans and not missing, (
        f"blob store and index disagree: blobs no row names {sorted(orphans)}, "
        f"rows whose blob is missing {sorted(missing)}"
    )
    assert backend.spool_files() == [], "a spooled part was left behind"
