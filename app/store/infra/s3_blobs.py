"""The S3 blob store: blobs as objects in an S3-compatible bucket (AWS, MinIO, Ceph...).

A module of its own so that boto3 and botocore (about 7 MB resident) are imported only by a process
that stores in S3: `open_blob_store` imports it for an `s3://` storage URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.store.infra.blob_timing import measured_blob_calls
from app.store.infra.blobs import (
    READ_CHUNK,
    SAFE_KEY,
    BlobNotFound,
    BlobStoreError,
    NotInMemory,
    S3Timeouts,
    StoredBlob,
    check_key,
)
from app.store.infra.spool import SpoolSession


@measured_blob_calls("s3")
class S3BlobStore:
    """Blobs as objects `prefix + key` in an S3 bucket (AWS, MinIO or any S3-compatible store)."""

    def __init__(self, client: Any, bucket: str, prefix: str, spool_directory: Path) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._spool = SpoolSession(spool_directory)
        self._transfer = TransferConfig(
            multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024
        )

    @property
    def spool_directory(self) -> Path:
        return self._spool.directory

    @property
    def spool_root(self) -> Path:
        return self._spool.root

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def start_sync(self, path: Path) -> Future[None]:  # noqa: ARG002 (BlobStore method; nothing to sync)
        done: Future[None] = Future()
        done.set_result(None)  # the upload reads the file; nothing to flush locally
        return done

    # `synced` (BlobStore): the upload reads the file, so it need not wait for a local flush.
    def put_file(self, key: str, path: Path, *, synced: Future[None] | None = None) -> None:  # noqa: ARG002
        try:
            self.client.upload_file(str(path), self.bucket, self._name(key), Config=self._transfer)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise BlobStoreError(f"S3 upload of {key} failed: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return b"".join(self.iter_range(key, offset, length))

    def read_range_in_memory(self, key: str, offset: int, length: int) -> bytes:  # noqa: ARG002
        raise NotInMemory(key)  # every read is a request to the server

    def iter_range(self, key: str, offset: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        try:
            response = self.client.get_object(
                Bucket=self.bucket,
                Key=self._name(key),
                Range=f"bytes={offset}-{offset + length - 1}",
            )
            body = response["Body"]
            with contextlib.closing(body):
                yield from body.iter_chunks(READ_CHUNK)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise BlobNotFound(key) from exc
            raise BlobStoreError(f"S3 read of {key} failed: {exc}") from exc
        except BotoCoreError as exc:  # timeouts (also while streaming the body), refused connections
            raise BlobStoreError(f"S3 read of {key} failed: {exc}") from exc

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise BlobNotFound(key) from exc
            raise BlobStoreError(f"S3 HEAD of {key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 HEAD of {key} failed: {exc}") from exc
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"S3 delete of {key} failed: {exc}") from exc

    def iter_blobs(self) -> Iterator[StoredBlob]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    if SAFE_KEY.fullmatch(key):  # anything else in the bucket is not Fovea's
                        yield StoredBlob(key, int(item["Size"]), item["LastModified"].astimezone(UTC))
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"S3 listing of {self.bucket} failed: {exc}") from exc

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"S3 bucket {self.bucket} is not reachable: {exc}") from exc


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def open_s3_blob_store(
    bucket: str,
    prefix: str,
    spool_directory: Path,
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeouts: S3Timeouts,
) -> S3BlobStore:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=timeouts.boto_config(),
    )
    return S3BlobStore(client, bucket, prefix, spool_directory)
