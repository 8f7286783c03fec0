"""Settings: FOVEA_* environment variables, defaults derived from the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import DuplicatePolicy, Settings


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
