"""Blob stores: where instance files live (a local folder, or S3-compatible object storage).

Why one protocol: ingest and retrieval only need "publish this finished file under a key, atomically",
"read this byte range" and "delete", and garbage collection "list every blob with its age"; the storage
URL picks the implementation.

Atomicity: a blob is visible under its key only once complete. The folder store writes into a spool
folder on the same file system, fsyncs, and renames into place; S3 only shows an object after its (multi-
part) upload completed. Keys are generated here, never taken from client-supplied values.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urlparse

from app.store.infra.blob_timing import measured_blob_calls
from app.store.infra.spool import SpoolSession

if TYPE_CHECKING:
    from botocore.config import Config as BotoConfig

SPOOL_FOLDER = ".spool"  # the folder store's spool, inside its root (a rename publishes a file)
SAFE_KEY = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*")
READ_CHUNK = 1024 * 1024


class BlobNotFound(KeyError):
    """No blob is stored under the key."""


class NotInMemory(Exception):
    """Reading the range would wait for storage: the OS does not hold all of it in memory."""


class BlobStoreError(OSError):
    """The blob store failed (an S3 error is wrapped in this so callers see one kind of failure)."""


@dataclass(frozen=True, slots=True)
class S3Timeouts:
    """How long one S3 call may take: connect, then each wait for bytes, times the attempts.

    Why bounded: an object store that stops answering must make a request fail within seconds (and
    be answered 503), not hold it, and its thread, for botocore's default of a minute per attempt.
    """

    connect_s: float = 3.0
    read_s: float = 5.0
    max_attempts: int = 2  # the first attempt included

    def boto_config(self) -> BotoConfig:
        from botocore.config import Config as BotoConfig  # botocore only where S3 is used

        return BotoConfig(
            max_pool_connections=32,
            connect_timeout=self.connect_s,
            read_timeout=self.read_s,
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
        )


def new_blob_key(suffix: str = ".dcm") -> str:
    """A fresh, unguessable key, spread over 256 folders (ext4 indexes large folders; S3 has none)."""
    name = uuid.uuid4().hex
    return f"instances/{name[:2]}/{name}{suffix}"


def check_key(key: str) -> str:
    """Refuse anything but the keys `new_blob_key` makes (no '..', no absolute paths)."""
    if not SAFE_KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"unsafe blob key: {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """One blob as a listing shows it: its key, size, and when it was published (UTC)."""

    key: str
    size: int
    published: datetime


class BlobStore(Protocol):
    @property
    def spool_directory(self) -> Path:
        """Where this process writes files that `put_file` will publish (cheapest on the same volume).

        A folder of its own inside `spool_root` (app/store/infra/spool.py), so no other process's cleanup
        removes its files while it lives.
        """
        ...

    @property
    def spool_root(self) -> Path:
        """The spool folder every process using this store shares (what `clean_spool` tidies)."""
        ...

    def start_sync(self, path: Path) -> Future[None]:
        """Begin making the finished file at `path` durable, in the background (see `put_file`)."""
        ...

    def put_file(self, key: str, path: Path, *, synced: Future[None] | None = None) -> None:
        """Publish the finished file at `path` under `key` atomically; `path` is consumed.

        `synced` is the future `start_sync(path)` returned, when the caller started it early so the
        flush to disk overlapped other work; it is waited for before the file is published.
        """
        ...

    def read_range(self, key: str, offset: int, length: int) -> bytes: ...

    def read_range_in_memory(self, key: str, offset: int, length: int) -> bytes:
        """The range when the OS already holds all of it in memory, so reading it cannot wait for a
        disk or a network; raise NotInMemory otherwise (then `read_range` it, off the event loop)."""
        ...

    def iter_range(self, key: str, offset: int, length: int) -> Iterator[bytes]: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing blob is not an error."""
        ...

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every blob in the store, in no particular order (for garbage collection)."""
        ...

    def check(self) -> None:
        """Raise BlobStoreError when the store cannot be used (for health checks)."""
        ...


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_read_buffers = threading.local()
_KEPT_BUFFER_BYTES = 8 * 1024 * 1024  # a longer read gets a buffer of its own, not kept


def _read_buffer(length: int) -> memoryview:
    """`length` bytes of this thread's read buffer, kept between reads: a fresh buffer of a frame's size
    per read costs more than the read (the allocator maps and unmaps it, and with many threads in the
    process each unmapping interrupts the other cores)."""
    if length > _KEPT_BUFFER_BYTES:
        return memoryview(bytearray(length))
    buffer: bytearray | None = getattr(_read_buffers, "buffer", None)
    if buffer is None or len(buffer) < length:
        buffer = _read_buffers.buffer = bytearray(length)
    return memoryview(buffer)[:length]


class InMemoryReads:
    """The ranged reads of `store` that never wait for storage: each raises NotInMemory instead."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        return self.store.read_range_in_memory(key, offset, length)


@measured_blob_calls("file")
class FileBlobStore:
    """Blobs as files under `root` (keys become relative paths)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._spool = SpoolSession(self.root / SPOOL_FOLDER)
        self._syncer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")

    @property
    def spool_directory(self) -> Path:
        return self._spool.directory

    @property
    def spool_root(self) -> Path:
        return self._spool.root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def start_sync(self, path: Path) -> Future[None]:
        # fsync releases the GIL: run in a thread, it overlaps the parse of the same file.
        return self._syncer.submit(_fsync_file, path)

    def put_file(self, key: str, path: Path, *, synced: Future[None] | None = None) -> None:
        try:
            self._put_file(self._path(key), path, synced)
        except BlobStoreError:
            raise
        except OSError as exc:  # a full, read-only or vanished volume: the store is unusable for now
            raise BlobStoreError(f"writing blob {key} failed: {exc}") from exc

    def _put_file(self, target: Path, path: Path, synced: Future[None] | None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if synced is None:
            _fsync_file(path)
        else:
            synced.result()  # the data is on disk before its name appears
        try:
            os.replace(path, target)
        except OSError:  # another volume: copy next to the target, then rename
            staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                shutil.copyfile(path, staging)
                with open(staging, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(staging, target)
            finally:
                staging.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        _fsync_directory(target.parent)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as handle:
                return os.pread(handle.fileno(), length, offset)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def read_range_in_memory(self, key: str, offset: int, length: int) -> bytes:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        buffer = _read_buffer(length)
        try:
            # RWF_NOWAIT: EAGAIN instead of waiting for the disk (EOPNOTSUPP where a file system lacks it)
            read = os.preadv(fd, [buffer], offset, os.RWF_NOWAIT)
        except OSError as exc:
            raise NotInMemory(key) from exc
        finally:
            os.close(fd)
        if read != length:  # partly in memory, or the file is shorter: `read_range` tells which
            raise NotInMemory(key)
        return bytes(buffer)

    def iter_range(self, key: str, offset: int, length: int) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        with handle:
            end = offset + length
            while offset < end:
                chunk = os.pread(handle.fileno(), min(READ_CHUNK, end - offset), offset)
                if not chunk:
                    return
                offset += len(chunk)
                yield chunk

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[StoredBlob]:
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]  # the spool
            for name in files:
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if not SAFE_KEY.fullmatch(key):  # a copy being staged (`.NAME.part`), not a blob
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                # The rename that published the file changed its ctime; its mtime is when it was written.
                published = datetime.fromtimestamp(max(stat.st_mtime, stat.st_ctime), UTC)
                yield StoredBlob(key, stat.st_size, published)

    def check(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise BlobStoreError(f"blob folder {self.root} is not a writable directory")


def open_blob_store(
    url: str,
    *,
    spool_directory: Path,
    s3_endpoint_url: str | None = None,
    s3_region: str = "us-east-1",
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
    s3_timeouts: S3Timeouts | None = None,
) -> BlobStore:
    """The blob store for `url`: `s3://bucket/prefix`, `file:///path` or a plain folder path."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket")
        # boto3 and botocore (about 7 MB) are imported only by a server that uses S3
        from app.store.infra.s3_blobs import open_s3_blob_store

        return open_s3_blob_store(
            parsed.netloc,
            parsed.path,
            spool_directory,
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            access_key_id=s3_access_key_id,
            secret_access_key=s3_secret_access_key,
            timeouts=s3_timeouts or S3Timeouts(),
        )
    if parsed.scheme == "file":
        return FileBlobStore(Path(parsed.path))
    if parsed.scheme == "":
        return FileBlobStore(Path(url))
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r} (use a path or s3://)")


class _RangeReader(io.RawIOBase):
    """A seekable, read-only file over a blob, reading through `BlobStore.read_range`."""

    def __init__(self, store: BlobStore, key: str, size: int) -> None:
        self._store, self._key, self._size, self._position = store, key, size, 0

    @property
    def name(self) -> str:  # pydicom records a file object's name
        return self._key

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self._size - self._position)
        if length <= 0:
            return 0
        data = self._store.read_range(self._key, self._position, length)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def open_blob(store: BlobStore, key: str, size: int, buffer_size: int = 256 * 1024) -> BinaryIO:
    """A buffered, seekable file object over the blob `key` of `size` bytes.

    Why: pydicom reads a data set through a file object; this serves it from any store (one ranged
    read per buffer refill, so S3 sees a few large GETs rather than one per element).
    """
    return io.BufferedReader(_RangeReader(store, key, size), buffer_size=buffer_size)
