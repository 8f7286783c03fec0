"""The spool: a locked folder per process, and cleaning that removes only what dead processes left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.store.infra.spool import LOCK_NAME, Reclaimed, SpoolSession, clean_spool

# A process that makes its spool folder, writes one file into it and waits to be killed.
_OWNER = """
import sys, time
from pathlib import Path
from app.store.infra.spool import SpoolSession
folder = SpoolSession(Path(sys.argv[1])).directory
(folder / "stow-part.part").write_bytes(b"x" * 1000)
print(folder, flush=True)
time.sleep(120)
"""


def start_owner(root: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_a_session_is_a_locked_folder_of_its_own(tmp_path: Path) -> None:
    first, second = SpoolSession(tmp_path), SpoolSession(tmp_path)
    assert first.directory != second.directory
    assert first.directory.parent == tmp_path
    assert (first.directory / LOCK_NAME).is_file()
    assert first.directory == first.directory  # made once per process


def test_cleaning_keeps_a_live_process_folder_whatever_its_age(tmp_path: Path) -> None:
    session = SpoolSession(tmp_path)
    part = session.directory / "stow-1.part"
    part.write_bytes(b"in flight")
    old = time.time() - 7200
    os.utime(part, (old, old))
    os.utime(session.directory, (old, old))

    assert clean_spool(tmp_path, older_than_s=60) == Reclaimed()
    assert part.read_bytes() == b"in flight"


def test_cleaning_removes_a_killed_process_folder_at_once(tmp_path: Path) -> None:
    process, folder = start_owner(tmp_path)
    try:
        assert clean_spool(tmp_path, older_than_s=3600) == Reclaimed()  # alive: kept
        assert (folder / "stow-part.part").exists()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    assert clean_spool(tmp_path, older_than_s=3600, dry_run=True) == Reclaimed(1, 1000)
    assert folder.exists()
    assert clean_spool(tmp_path, older_than_s=3600) == Reclaimed(1, 1000)  # young, but its owner is gone
    assert not folder.exists()


def test_a_closed_session_leaves_nothing(tmp_path: Path) -> None:
    session = SpoolSession(tmp_path)
    (session.directory / "left.part").write_bytes(b"abc")
    session.close()
    assert list(tmp_path.iterdir()) == []


def test_loose_files_go_only_past_the_grace_period(tmp_path: Path) -> None:
    young, old = tmp_path / "young.part", tmp_path / "old.part"
    young.write_bytes(b"12")
    old.write_bytes(b"12345")
    long_ago = time.time() - 7200
    os.utime(old, (long_ago, long_ago))
    half_made = tmp_path / ".123-abc.new"  # a session folder never renamed into place
    half_made.mkdir()
    os.utime(half_made, (long_ago, long_ago))

    assert clean_spool(tmp_path, older_than_s=3600) == Reclaimed(1, 5)  # files counted; the folder goes too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["young.part"]


def test_a_forked_child_gets_its_own_folder(tmp_path: Path) -> None:
    session = SpoolSession(tmp_path)
    parent_folder = session.directory
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its folder and leaves at once
        os.write(write, str(session.directory).encode())
        os._exit(0)
    os.close(write)
    child_folder = Path(os.read(read, 4096).decode())
    os.waitpid(pid, 0)
    os.close(read)
    assert child_folder != parent_folder
    assert clean_spool(tmp_path, older_than_s=3600) == Reclaimed()  # the dead child's folder was empty
    assert not child_folder.exists()
    assert parent_folder.exists()


def test_a_worker_process_leaves_no_folder_when_it_exits_normally(tmp_path: Path) -> None:
    from app.store.write.ingest_pool import start_worker_pool  # how ingest workers are made

    pool = start_worker_pool(1)
    try:
        folder = Path(pool.submit(_make_folder, tmp_path).result())
        assert folder.is_dir()
    finally:
        pool.shutdown(wait=True)
    assert wait_until_gone(folder)


def _make_folder(root: Path) -> str:
    return str(SpoolSession(root).directory)


def wait_until_gone(path: Path) -> bool:
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not path.exists()
