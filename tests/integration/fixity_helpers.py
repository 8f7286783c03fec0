"""Damaging stored files as a failing disk or a careless operator would, on a folder or in S3."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.store.infra.blobs import FileBlobStore
from app.store.infra.s3_blobs import S3BlobStore
from app.store.tables import Instance
from app.store.write.ingest import Ingestor, Outcome
from tests.conftest import Backend


def ingest(ingestor: Ingestor, data: bytes, expected: Outcome = Outcome.STORED) -> None:
    path = ingestor.blobs.spool_directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(data)
    assert ingestor.ingest(path).outcome is expected


def blob_key_of(backend: Backend, sop_instance_uid: str) -> str:
    with backend.engine.connect() as connection:
        query = select(Instance.blob_key).where(Instance.sop_instance_uid == sop_instance_uid)
        return str(connection.execute(query).scalar_one())


def fixity_state(backend: Backend, sop_instance_uid: str) -> tuple[str | None, bool]:
    """(the instance's fixity problem, whether it was ever verified)."""
    with backend.engine.connect() as connection:
        query = select(Instance.fixity_problem, Instance.verified_at).where(
            Instance.sop_instance_uid == sop_instance_uid
        )
        problem, verified_at = connection.execute(query).one()
    return problem, verified_at is not None


def read_blob(backend: Backend, key: str) -> bytes:
    return backend.blobs.read_range(key, 0, backend.blobs.size(key))


def overwrite_blob(backend: Backend, key: str, data: bytes) -> None:
    """Replace the stored bytes in place, behind Fovea's back."""
    blobs = backend.blobs
    if isinstance(blobs, FileBlobStore):
        (blobs.root / key).write_bytes(data)
    else:
        assert isinstance(blobs, S3BlobStore)
        blobs.client.put_object(Bucket=blobs.bucket, Key=blobs.prefix + key, Body=data)


def flip_byte(backend: Backend, key: str, position: int) -> bytes:
    """Flip every bit of one byte of the stored file; returns the original bytes."""
    original = read_blob(backend, key)
    damaged = bytearray(original)
    damaged[position] ^= 0xFF
    overwrite_blob(backend, key, bytes(damaged))
    return original


def truncate(backend: Backend, key: str, length: int) -> bytes:
    original = read_blob(backend, key)
    overwrite_blob(backend, key, original[:length])
    return original


def remove(backend: Backend, key: str) -> None:
    backend.blobs.delete(key)
