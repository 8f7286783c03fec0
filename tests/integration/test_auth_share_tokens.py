"""Study share tokens against a live Fovea with anonymous access off: the shared study is readable (as a
bearer token and as ?token=), every other study is 403, searches see only the shared study, expiry and
secret rotation are honoured."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from datetime import timedelta

import httpx
import pytest

from app.imaging.codec_pool import CodecPool
from app.security.share_tokens import issue_share_token
from tests.conftest import Backend, LiveServer, start_live_server
from tests.integration.auth_helpers import StoredStudy, bearer, new_key, store_study

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)

OLD_SECRET, NEW_SECRET = "o" * 40, "n" * 40
STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID = "0020000D", "0020000E", "00080018"


class Shared:
    def __init__(self, server: LiveServer, shared: StoredStudy, other: StoredStudy) -> None:
        self.server, self.shared, self.other = server, shared, other
        self.token = issue_share_token([NEW_SECRET], shared.study, timedelta(hours=1)).token

    def get(self, path: str, **params: str) -> httpx.Response:
        """GET with the share token as a bearer token, or as given in a `token` query parameter."""
        headers = {} if "token" in params else bearer(self.token)
        return httpx.get(f"{self.server.dicomweb}{path}", headers=headers, params=params, timeout=30)


@pytest.fixture
def shared(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[Shared]:
    writer = new_key(backend, "writer", "dicom.write")
    secrets = f"{NEW_SECRET},{OLD_SECRET}"
    with start_live_server(backend, worker_pool, codec_pool, share_secrets=secrets) as server:
        yield Shared(server, store_study(server, bearer(writer), seed=1), store_study(server, bearer(writer)))


def resource_paths(study: StoredStudy) -> list[str]:
    instance = f"/studies/{study.study}/series/{study.series}/instances/{study.sop}"
    return [
        f"/studies/{study.study}/metadata",
        f"/studies/{study.study}/series/{study.series}/metadata",
        f"{instance}/metadata",
        f"{instance}/frames/1",
        instance,
        f"{instance}/rendered",
        f"{instance}/thumbnail",
        f"/studies/{study.study}/thumbnail",
        f"/studies/{study.study}/series",
    ]


def test_every_resource_of_the_shared_study_is_readable(shared: Shared) -> None:
    for path in resource_paths(shared.shared):
        response = shared.get(path)
        assert response.status_code == 200, (path, response.text)


def test_every_resource_of_another_study_is_403(shared: Shared) -> None:
    for path in resource_paths(shared.other):
        response = shared.get(path)
        assert response.status_code == 403, path
        assert response.json()["error"] == f"this share token reads study {shared.shared.study} only"


def test_the_token_query_parameter_works_where_headers_cannot_be_set(shared: Shared) -> None:
    instance = f"/studies/{shared.shared.study}/series/{shared.shared.series}/instances/{shared.shared.sop}"
    thumbnail = shared.get(f"{instance}/thumbnail", token=shared.token, accept="image/jpeg")
    assert thumbnail.status_code == 200
    assert thumbnail.headers["Content-Type"] == "image/jpeg"
    assert thumbnail.content[:3] == b"\xff\xd8\xff"
    found = shared.get("/studies", token=shared.token)  # the token parameter is no search key
    assert [item[STUDY_INSTANCE_UID]["Value"][0] for item in found.json()] == [shared.shared.study]


def test_searches_see_only_the_shared_study(shared: Shared) -> None:
    studies = shared.get("/studies").json()
    assert [item[STUDY_INSTANCE_UID]["Value"][0] for item in studies] == [shared.shared.study]
    asked_for_other = shared.get("/studies", StudyInstanceUID=shared.other.study)
    assert [item[STUDY_INSTANCE_UID]["Value"][0] for item in asked_for_other.json()] == [shared.shared.study]
    series = shared.get("/series").json()
    assert [item[SERIES_INSTANCE_UID]["Value"][0] for item in series] == [shared.shared.series]
    instances = shared.get("/instances").json()
    assert [item[SOP_INSTANCE_UID]["Value"][0] for item in instances] == [shared.shared.sop]


def test_a_share_token_cannot_store(shared: Shared) -> None:
    response = httpx.post(
        f"{shared.server.dicomweb}/studies/{shared.shared.study}",
        content=b"",
        headers={**bearer(shared.token), "Content-Type": "application/dicom"},
    )
    assert response.status_code == 403
    assert response.json()["error"].startswith("share-token 'share:")
    assert response.json()["error"].endswith("' does not hold dicom.write")


def test_an_expired_share_token_is_401(shared: Shared) -> None:
    expired = issue_share_token([NEW_SECRET], shared.shared.study, timedelta(minutes=-5)).token
    response = shared.get(f"/studies/{shared.shared.study}/metadata", token=expired)
    assert response.status_code == 401
    assert response.json()["error"] == "share token expired"


def test_rotation_old_secret_still_verifies_a_retired_one_does_not(shared: Shared) -> None:
    by_old = issue_share_token([OLD_SECRET], shared.shared.study, timedelta(hours=1)).token
    assert shared.get(f"/studies/{shared.shared.study}/metadata", token=by_old).status_code == 200
    retired = issue_share_token(["r" * 40], shared.shared.study, timedelta(hours=1)).token
    response = shared.get(f"/studies/{shared.shared.study}/metadata", token=retired)
    assert response.status_code == 401
    assert response.json()["error"] == "share token signed with an unknown or retired secret"


def test_a_tampered_share_token_is_401(shared: Shared) -> None:
    header, _claims, signature = shared.token.split(".")
    other = issue_share_token([NEW_SECRET], shared.other.study, timedelta(hours=1)).token.split(".")[1]
    response = shared.get(f"/studies/{shared.other.study}/metadata", token=f"{header}.{other}.{signature}")
    assert response.status_code == 401
    assert response.json()["error"] == "share token rejected: Signature verification failed"
