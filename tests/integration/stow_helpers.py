"""Helpers shared by the STOW-RS tests: posting bodies and reading the index and blob store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store.tables import BlobDeletion, FrameFragmentRow, Instance, Series, Study
from tests.conftest import Backend, LiveServer
from tests.dicom_files import multipart_body, stow_content_type


def post_stow(
    server: LiveServer,
    parts: list[bytes],
    *,
    study: str | None = None,
    headers: dict[str, str] | None = None,
    **body_options: Any,
) -> httpx.Response:
    url = f"{server.dicomweb}/studies" + (f"/{study}" if study else "")
    all_headers = {"Content-Type": stow_content_type(), **(headers or {})}
    return httpx.post(url, content=multipart_body(parts, **body_options), headers=all_headers, timeout=60)


def items(response_json: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """The items of a sequence in a Store Instances Response (00081198 failed, 00081199 stored)."""
    value: list[dict[str, Any]] = response_json.get(tag, {}).get("Value", [])
    return value


def value_of(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


@dataclass(frozen=True)
class IndexCounts:
    studies: int
    series: int
    instances: int
    frames: int


def index_counts(backend: Backend) -> IndexCounts:
    with Session(backend.engine) as session:

        def count(model: type) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        return IndexCounts(count(Study), count(Series), count(Instance), count(FrameFragmentRow))


def stored_instance(backend: Backend, sop_instance_uid: str) -> Instance | None:
    with Session(backend.engine) as session:
        return session.scalar(select(Instance).where(Instance.sop_instance_uid == sop_instance_uid))


def stored_bytes(backend: Backend, sop_instance_uid: str) -> bytes:
    instance = stored_instance(backend, sop_instance_uid)
    assert instance is not None, f"{sop_instance_uid} is not indexed"
    return backend.blobs.read_range(instance.blob_key, 0, backend.blobs.size(instance.blob_key))


def pending_deletions(backend: Backend) -> set[str]:
    """The blob keys waiting for their deferred deletion."""
    with backend.engine.connect() as connection:
        return set(connection.execute(select(BlobDeletion.blob_key)).scalars())
