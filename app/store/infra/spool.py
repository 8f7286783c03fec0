"""The spool: where files wait before they become blobs (STOW-RS parts, inflated copies, conversions).

Why a folder per process: several server processes, their ingest workers and `fovea import` share one
spool folder, and a process killed with SIGKILL leaves its files behind. Each process writes into its
own subfolder holding an exclusive `flock` on the lock file inside it for as long as it lives; the kernel
drops the lock when the process dies, however it dies. Cleaning the spool removes the subfolders whose
lock can be taken (their owner is gone) at once, whatever their age, and never touches a live process's
files. Loose files and half-made subfolders (a crash between `mkdir` and `rename`) go once they are older
than the grace period given, since no lock says who owns them.
"""

from __future__ import annotations

import errno
import fcntl
import multiprocessing.util
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".lock"
_NEW_SUFFIX = ".new"  # a session folder being made: `.NAME.new` until renamed into place


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What a collection removed (or, in a dry run, would remove)."""

    count: int = 0
    bytes: int = 0

    def __add__(self, other: Reclaimed) -> Reclaimed:
        return Reclaimed(self.count + other.count, self.bytes + other.bytes)


class SpoolSession:
    """This process's own folder under a shared spool folder, locked while the process lives.

    Made on first use, and again in a forked child (a child must not write into its parent's folder,
    which is removed once the parent is gone).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._directory: Path | None = None
        self._fd: int | None = None

    @property
    def directory(self) -> Path:
        with self._lock:
            if self._directory is None or self._pid != os.getpid():
                self._directory = self._open()
            return self._directory

    def _open(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        staging = self.root / f".{name}{_NEW_SUFFIX}"
        staging.mkdir()
        # The lock is taken before the folder appears under its final name, so a cleaner never sees
        # a session folder whose lock is free while its owner lives.
        fd = os.open(staging / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        directory = self.root / name
        os.rename(staging, directory)
        self._pid, self._fd = os.getpid(), fd
        # Tidy up at a normal exit, worker processes included (they skip `atexit`); a crash leaves
        # the folder to the next cleaning.
        multiprocessing.util.Finalize(None, self.close, exitpriority=1)
        return directory

    def close(self) -> None:
        """Remove this process's folder (what is still in it is abandoned) and release the lock."""
        with self._lock:
            if self._directory is not None and self._pid == os.getpid() and self._fd is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                os.close(self._fd)
            self._directory = self._fd = self._pid = None


def clean_spool(root: Path, *, older_than_s: float, dry_run: bool = False) -> Reclaimed:
    """Remove what dead processes left in the spool folder `root` (see the module docstring)."""
    if not root.is_dir():
        return Reclaimed()
    cutoff = time.time() - older_than_s
    reclaimed = Reclaimed()
    for entry in root.iterdir():
        try:
            if entry.is_dir() and not entry.name.startswith("."):
                reclaimed += _clean_session(entry, cutoff, dry_run=dry_run)
            elif _mtime(entry) < cutoff:  # a loose file, or a folder never renamed into place
                reclaimed += _remove(entry, dry_run=dry_run)
        except FileNotFoundError:  # another process cleaned it first
            continue
    return reclaimed


def _clean_session(directory: Path, cutoff: float, *, dry_run: bool) -> Reclaimed:
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:  # not a session folder: judged by age
        return _remove(directory, dry_run=dry_run) if _mtime(directory) < cutoff else Reclaimed()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return Reclaimed()  # its process is alive
            raise
        return _remove(directory, dry_run=dry_run)
    finally:
        os.close(fd)


def _remove(path: Path, *, dry_run: bool) -> Reclaimed:
    if not path.exists():  # its owner, or another cleaner, removed it meanwhile
        return Reclaimed()
    files = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file()]
    files = [p for p in files if p.name != LOCK_NAME]
    size = sum(p.stat().st_size for p in files if p.exists())
    if not dry_run:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return Reclaimed(len(files), size)


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
