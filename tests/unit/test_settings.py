"""Settings: FOVEA_* environment variables, defaults derived from the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from app.store.policies import DuplicatePolicy, PatientMismatchPolicy


def test_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/fovea.db"
    assert settings.resolved_storage_url == str((tmp_path / "blobs").resolve())
    assert settings.migrate_at_startup is True
    assert settings.duplicate_policy is DuplicatePolicy.REPLACE


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("FOVEA_DUPLICATE_POLICY", "keep")
    monkeypatch.setenv("FOVEA_PUBLIC_BASE_URL", "https://pacs/dicom-web/")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/x"
    assert settings.migrate_at_startup is False  # PostgreSQL: `fovea migrate` explicitly
    assert settings.duplicate_policy is DuplicatePolicy.KEEP
    assert settings.public_base_url == "https://pacs/dicom-web"


def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_DUPLICATE_POLICY", "sometimes")
    with pytest.raises(ValueError, match="duplicate_policy"):
        Settings()


def test_patient_mismatch_policy_is_reject_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().patient_mismatch is PatientMismatchPolicy.REJECT
    monkeypatch.setenv("FOVEA_PATIENT_MISMATCH", "accept-new")
    assert Settings().patient_mismatch is PatientMismatchPolicy.ACCEPT_NEW
    monkeypatch.setenv("FOVEA_PATIENT_MISMATCH", "overwrite")
    with pytest.raises(ValueError, match="patient_mismatch"):
        Settings()


def test_timeouts_reach_the_ingest_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:

    monkeypatch.setenv("FOVEA_DATABASE_STATEMENT_TIMEOUT_S", "2.5")
    monkeypatch.setenv("FOVEA_S3_READ_TIMEOUT_S", "7")
    monkeypatch.setenv("FOVEA_S3_MAX_ATTEMPTS", "1")
    target = Settings(data_dir=tmp_path).ingest_target()
    assert target.database_timeouts.statement_s == 2.5
    config = target.s3_timeouts.boto_config()
    # botocore's Config sets its options as attributes in __init__; its type stubs do not declare them
    options = vars(config)
    assert (options["read_timeout"], options["connect_timeout"], options["retries"]) == (
        7.0,
        3.0,
        {"max_attempts": 1, "mode": "standard"},
    )
    monkeypatch.setenv("FOVEA_S3_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="s3_max_attempts"):
        Settings()


def test_de_identification_options_default_to_the_basic_profile_with_modified_dates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.lifecycle.confidentiality_profile import DateHandling

    settings = Settings()
    assert settings.deid_secret == ""
    assert settings.deid_dates is DateHandling.MODIFIED
    assert settings.deid_retain_uids is False and settings.deid_retain_safe_private is False
    monkeypatch.setenv("FOVEA_DEID_SECRET", "too-short")
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings()
    monkeypatch.setenv("FOVEA_DEID_SECRET", "x" * 32)
    monkeypatch.setenv("FOVEA_DEID_DATES", "full")
    assert (Settings().deid_secret, Settings().deid_dates) == ("x" * 32, DateHandling.FULL)
