"""Shared by the security tests: stored studies and API keys on a live Fovea."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydicom.uid import generate_uid

from app.security.api_keys import create_api_key
from app.security.principal import Scope
from tests.conftest import Backend, LiveServer
from tests.dicom_files import make_instance, multipart_body, stow_content_type

ALL = [scope.value for scope in Scope]


@dataclass(frozen=True)
class StoredStudy:
    study: str
    series: str
    sop: str


def store_study(server: LiveServer, headers: dict[str, str], *, seed: int = 0) -> StoredStudy:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    body = multipart_body([make_instance(study_uid=study, series_uid=series, sop_uid=sop, seed=seed)])
    response = httpx.post(
        f"{server.dicomweb}/studies",
        content=body,
        headers={"Content-Type": stow_content_type(), "Accept": "application/dicom+json", **headers},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return StoredStudy(study, series, sop)


def new_key(backend: Backend, name: str, *scopes: str) -> str:
    return create_api_key(backend.engine, name, scopes or ALL)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
