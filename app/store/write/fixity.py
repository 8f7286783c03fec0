"""The SHA-256 of a stored file, taken at ingest and kept in the index as evidence of its integrity.

Why in a thread, started before the parse: hashlib releases the GIL, and the file was just written,
so it is read back from the page cache while pydicom parses it; the digest costs next to no wall time.
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

    def start(self, path: Path) -> Future[str]:
        """Begin hashing the file at `path`; wait for the result before the file is moved or deleted."""
        return self._threads.submit(sha256_of_file, path)
