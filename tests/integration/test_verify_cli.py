"""`fovea verify`, run as a real process against SQLite + folder and PostgreSQL + S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from app.store.infra.blobs import new_blob_key
from tests.conftest import Backend
from tests.dicom_files import make_instance
from tests.integration.fixity_helpers import blob_key_of, fixity_state, flip_byte, ingest, truncate
from tests.integration.test_cli import migrated_with_a_missing_bucket, run_fovea


def environment(backend: Backend) -> dict[str, str]:
    env = {
        "FOVEA_DATA_DIR": str(backend.data_dir),
        "FOVEA_DATABASE_URL": backend.database_url,
        "FOVEA_STORAGE_URL": backend.storage_url,
        "FOVEA_AUTO_MIGRATE": "false",
    }
    if backend.s3_endpoint:
        env |= {
            "FOVEA_S3_ENDPOINT_URL": backend.s3_endpoint,
            "FOVEA_S3_ACCESS_KEY_ID": "testing",
            "FOVEA_S3_SECRET_ACCESS_KEY": "testing",
        }
    return env


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_verify_reports_problems_as_json_lines_and_exits_1(backend: Backend, tmp_path: Path) -> None:
    damaged_study, kept_study = generate_uid(), generate_uid()
    flipped, truncated, kept = generate_uid(), generate_uid(), generate_uid()
    ingestor = backend.ingestor()
    ingest(ingestor, make_instance(study_uid=damaged_study, sop_uid=flipped, seed=1))
    ingest(ingestor, make_instance(study_uid=damaged_study, sop_uid=truncated, seed=2))
    ingest(ingestor, make_instance(study_uid=kept_study, sop_uid=kept, seed=3))
    flip_byte(backend, blob_key_of(backend, flipped), 2500)
    truncate(backend, blob_key_of(backend, truncated), 10)
    orphan_file = tmp_path / "orphan"
    orphan_file.write_bytes(b"x" * 10)
    backend.blobs.put_file(new_blob_key(), orphan_file)
    env = environment(backend) | {"FOVEA_ORPHAN_GRACE_S": "0"}

    result = run_fovea("verify", env=env)

    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = sorted((line["status"], line.get("instance")) for line in lines)
    assert statuses == sorted(
        [("corrupt", flipped), ("corrupt", truncated), ("orphaned", None), ("summary", None)]
    )
    assert lines[-1] | {"bytes_read": 0} == {
        "status": "summary",
        "checked": 3,
        "bytes_read": 0,
        "intact": 1,
        "corrupt": 2,
        "missing": 0,
        "unreadable": 0,
        "orphaned": 1,
        "digests_recorded": 0,
        "problems": 3,
    }
    assert "3 instances checked" in result.stderr
    assert "verify 3 instances" in result.stderr  # the progress bar's last state (stderr is no terminal)
    assert "Traceback" not in result.stderr
    assert fixity_state(backend, flipped) == ("corrupt", True)

    only_kept = run_fovea("verify", "--study", kept_study, env=env)
    assert only_kept.returncode == 0, only_kept.stderr
    [summary] = [json.loads(line) for line in only_kept.stdout.splitlines()]
    assert (summary["checked"], summary["intact"], summary["problems"]) == (1, 1, 0)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--sample", "0%"), "--sample '0%': a percentage above 0 and at most 100"),
        (("--sample", "lots"), "--sample 'lots': a percentage above 0 and at most 100"),
        (("--since", "yesterday"), "'yesterday' is not a time"),
        (("--study", "not a uid"), "--study 'not a uid' is not a UID"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(
    backend: Backend, arguments: tuple[str, ...], message: str
) -> None:
    result = run_fovea("verify", *arguments, env=environment(backend))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_verify_exits_3_when_the_store_cannot_be_read(tmp_path: Path, moto_endpoint: str) -> None:
    env = migrated_with_a_missing_bucket(tmp_path, moto_endpoint)
    result = run_fovea("verify", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 3
    assert "verification failed: S3 listing of no-such-bucket failed" in result.stderr
    assert "Traceback" not in result.stderr
