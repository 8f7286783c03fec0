"""`fovea gc`, run as a real process on an embedded installation (SQLite + folder)."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom.uid import generate_uid
from sqlalchemy import create_engine, select

from app.store.infra.blobs import FileBlobStore, new_blob_key
from app.store.tables import BlobDeletion, Instance
from tests.dicom_files import make_instance
from tests.integration.test_cli import migrated_with_a_missing_bucket, run_fovea


def index_state(data_dir: Path) -> tuple[set[str], set[str]]:
    """(blob keys instances refer to, blob keys waiting for deletion)."""
    engine = create_engine(f"sqlite:///{data_dir / 'fovea.db'}")
    with engine.connect() as connection:
        referenced = set(connection.execute(select(Instance.blob_key)).scalars())
        pending = set(connection.execute(select(BlobDeletion.blob_key)).scalars())
    engine.dispose()
    return referenced, pending


def blob_files(data_dir: Path) -> set[str]:
    root = data_dir / "blobs"
    files = (p for p in root.rglob("*") if p.is_file() and ".spool" not in p.parts)
    return {p.relative_to(root).as_posix() for p in files}


def test_gc_reports_then_removes_due_deletions_orphans_and_spool_leftovers(tmp_path: Path) -> None:
    data_dir, incoming = tmp_path / "data", tmp_path / "incoming"
    incoming.mkdir()
    sop = generate_uid()
    first, second = make_instance(sop_uid=sop, seed=1), make_instance(sop_uid=sop, seed=2)
    (incoming / "a.dcm").write_bytes(first)
    assert run_fovea("import", str(incoming), "--data-dir", str(data_dir)).returncode == 0
    (incoming / "a.dcm").write_bytes(second)  # replaces it; the old blob is due at once
    replace = run_fovea(
        "import", str(incoming), "--data-dir", str(data_dir), env={"FOVEA_BLOB_DELETION_GRACE_S": "0"}
    )
    assert replace.returncode == 0, replace.stderr
    [current], [replaced] = index_state(data_dir)

    store = FileBlobStore(data_dir / "blobs")  # a crash between publishing and indexing
    orphan_file = tmp_path / "orphan.dcm"
    orphan_file.write_bytes(b"o" * 300)
    orphan = new_blob_key()
    store.put_file(orphan, orphan_file)
    dead = data_dir / "blobs" / ".spool" / "4242-deadbeef"  # a killed process's spool folder
    dead.mkdir(parents=True)
    (dead / ".lock").touch()
    (dead / "stow-x.part").write_bytes(b"p" * 70)
    assert blob_files(data_dir) == {current, replaced, orphan}

    gc_env = {"FOVEA_ORPHAN_GRACE_S": "0"}  # nothing is being stored: everything unreferenced may go
    dry = run_fovea("gc", "--dry-run", "--json", "--data-dir", str(data_dir), env=gc_env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {
        "deferred": {"count": 1, "bytes": len(first)},
        "orphans": {"count": 1, "bytes": 300},
        "spool": {"count": 1, "bytes": 70},
        "dry_run": True,
    }
    assert blob_files(data_dir) == {current, replaced, orphan}
    assert (dead / "stow-x.part").exists()

    real = run_fovea("gc", "--data-dir", str(data_dir), env=gc_env)
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines() == [
        f"due deferred deletions: 1 removed, {len(first):,} bytes",
        "orphan blobs: 1 removed, 300 bytes",
        "spool files: 1 removed, 70 bytes",
    ]
    assert blob_files(data_dir) == {current}
    assert index_state(data_dir) == ({current}, set())
    assert not dead.exists()
    assert (data_dir / "blobs" / current).read_bytes() == second

    again = run_fovea("gc", "--json", "--data-dir", str(data_dir), env=gc_env)
    assert json.loads(again.stdout)["orphans"] == {"count": 0, "bytes": 0}


def test_gc_fails_with_a_reason_when_the_blob_store_is_unreachable(
    tmp_path: Path, moto_endpoint: str
) -> None:
    env = migrated_with_a_missing_bucket(tmp_path, moto_endpoint)
    result = run_fovea("gc", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "garbage collection failed: S3 listing of no-such-bucket failed" in result.stderr
    assert "Traceback" not in result.stderr
