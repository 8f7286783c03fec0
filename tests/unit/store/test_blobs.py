"""Blob keys and the folder blob store (S3 is exercised on every integration test's s3 back end)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.store.infra.blobs import (
    BlobNotFound,
    FileBlobStore,
    NotInMemory,
    check_key,
    new_blob_key,
    open_blob_store,
)


def test_new_keys_are_safe_and_unique() -> None:
    keys = {new_blob_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(check_key(k) == k and k.startswith("instances/") for k in keys)


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "instances/../x", "a//b", "A/B", "", "a/.b"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="unsafe blob key"):
        check_key(key)


def test_put_moves_the_file_and_ranges_read_back(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    source = store.spool_directory / "x"
    source.write_bytes(bytes(range(256)) * 10_000)
    key = new_blob_key()
    store.put_file(key, source)
    assert not source.exists()
    assert store.size(key) == 2_560_000
    assert store.read_range(key, 255, 3) == bytes([255, 0, 1])
    assert b"".join(store.iter_range(key, 1000, 2_000_000)) == (bytes(range(256)) * 10_000)[1000:2_001_000]
    store.delete(key)
    store.delete(key)  # deleting twice is fine
    with pytest.raises(BlobNotFound):
        store.read_range(key, 0, 1)


def drop_from_page_cache(path: Path) -> None:
    """Have the kernel forget the file's cached pages (they are clean: put_file flushed them)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_ranges_in_memory_are_read_and_the_others_refused(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    data = bytes(range(256)) * 4096
    source = store.spool_directory / "x"
    source.write_bytes(data)
    key = new_blob_key()
    store.put_file(key, source)
    store.read_range(key, 0, len(data))  # now in the page cache

    assert store.read_range_in_memory(key, 1000, 600_000) == data[1000:601_000]
    assert store.read_range_in_memory(key, 7, 3) == data[7:10]  # the reused buffer holds no stale bytes
    with pytest.raises(NotInMemory):
        store.read_range_in_memory(key, len(data) - 10, 20)  # past the end: read_range says what is there
    drop_from_page_cache(store.root / key)
    with pytest.raises(NotInMemory):
        store.read_range_in_memory(key, 0, len(data))
    assert store.read_range(key, 0, len(data)) == data
    with pytest.raises(BlobNotFound):
        store.read_range_in_memory(new_blob_key(), 0, 1)


def test_a_long_range_in_memory_is_read_whole(tmp_path: Path) -> None:
    # Longer than the buffer each thread keeps: read into one of its own.
    store = FileBlobStore(tmp_path / "blobs")
    data = os.urandom(9 * 1024 * 1024)
    source = store.spool_directory / "x"
    source.write_bytes(data)
    key = new_blob_key()
    store.put_file(key, source)
    store.read_range(key, 0, len(data))
    assert store.read_range_in_memory(key, 5, len(data) - 5) == data[5:]
    assert store.read_range_in_memory(key, 0, 16) == data[:16]


def test_storage_url_picks_the_store(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path), spool_directory=tmp_path / "s"), FileBlobStore)
    assert isinstance(open_blob_store(f"file://{tmp_path}", spool_directory=tmp_path / "s"), FileBlobStore)
    with pytest.raises(ValueError, match="unsupported storage URL scheme"):
        open_blob_store("ftp://x/y", spool_directory=tmp_path / "s")
    with pytest.raises(ValueError, match="names no bucket"):
        open_blob_store("s3:///prefix", spool_directory=tmp_path / "s")
