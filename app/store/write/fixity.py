"""The SHA-256 of a stored file, taken at ingest and kept in the index as evidence of its integrity.

Why in a thread, started before the parse: hashlib releases the GIL, and the file was just written,
so it is read back from the page cache while pydicom parses it; the digest costs next to no wall time.
A STOW-RS part is hashed as it is spooled (api/multipart.py), so its file is not read again at all.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


def sha256_of_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class FileDigests:
    """Digests computed in the background, one thread per ingest worker being plenty."""

    def __init__(self) -> None:
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fovea-sha256")

    def start(self, path: Path, *, known: str = "") -> Future[str]:
        """Begin hashing the file at `path`; wait for the result before the file is moved or deleted.

        `known`: the digest already taken of exactly these bytes, which the future then holds."""
        if known:
            taken: Future[str] = Future()
            taken.set_result(known)
            return taken
        return self._threads.submit(sha256_of_file, path)
