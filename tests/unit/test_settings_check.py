"""Settings read as an operator needs them: one line per bad variable, unknown names, masked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings_check import (
    MASK,
    SettingsError,
    effective_settings,
    load_settings,
    unknown_variables,
)


def test_a_bad_value_is_one_line_naming_the_variable_and_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_PORT", "abc")
    monkeypatch.setenv("FOVEA_DUPLICATE_POLICY", "sometimes")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    lines = sorted(raised.value.lines)
    assert len(lines) == 2
    assert lines[0].startswith("FOVEA_DUPLICATE_POLICY='sometimes' is not allowed: ")
    assert "'replace', 'reject' or 'keep'" in lines[0]
    assert lines[1].startswith("FOVEA_PORT='abc' is not allowed: ")
    assert "integer" in lines[1]
    assert all("\n" not in line for line in lines)


def test_a_validator_message_is_kept_without_pydantic_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_STORAGE_TRANSFER_SYNTAX", "JPEGBaseline8Bit")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    (line,) = raised.value.lines
    expected = "FOVEA_STORAGE_TRANSFER_SYNTAX='JPEGBaseline8Bit' is not allowed: JPEGBaseline8Bit:"
    assert line.startswith(expected)
    assert "Value error" not in line


def test_overrides_from_flags_are_validated_like_variables() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(port="eighty")
    assert raised.value.lines[0].startswith("FOVEA_PORT='eighty' is not allowed")


def test_the_value_of_a_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_S3_SECRET_ACCESS_KEY", "hunter2")
    settings = load_settings()
    shown = dict(effective_settings(settings))
    assert shown["FOVEA_S3_SECRET_ACCESS_KEY"] == MASK
    assert "hunter2" not in " ".join(shown.values())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        ("rediss://fovea:hunter2@cache:6380/1", f"rediss://fovea:{MASK}@cache:6380/1"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_the_password_of_the_shared_cache_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, url: str, shown: str
) -> None:
    monkeypatch.setenv("FOVEA_SHARED_CACHE_URL", url)
    assert dict(effective_settings(load_settings()))["FOVEA_SHARED_CACHE_URL"] == shown


@pytest.mark.parametrize(
    "url",
    ["postgres://fovea:pw@db:5432/pacs", "postgresql://fovea:pw@db:5432/pacs"],
)
def test_postgres_urls_use_the_installed_driver(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("FOVEA_DATABASE_URL", url)
    settings = load_settings()
    assert settings.resolved_database_url == "postgresql+psycopg://fovea:pw@db:5432/pacs"
    shown = dict(effective_settings(settings))
    assert shown["FOVEA_DATABASE_URL"] == "postgresql+psycopg://fovea:***@db:5432/pacs"


def test_an_explicit_driver_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_DATABASE_URL", "postgresql+psycopg://u@db/x")
    assert load_settings().resolved_database_url == "postgresql+psycopg://u@db/x"


def test_misspelt_variables_are_named_with_the_closest_setting() -> None:
    environ = {
        "FOVEA_PROT": "8080",
        "FOVEA_DATABASE_URI": "sqlite://",
        "FOVEA_COMPLETELY_ELSE": "1",
        "FOVEA_PORT": "8080",
        "FOVEA_E2E_OHIF_DIST": "x",
        "FOVEA_ARGS": "--workers 2",
        "PATH": "/bin",
    }
    assert unknown_variables(environ) == [
        "FOVEA_COMPLETELY_ELSE is not a Fovea setting and is ignored",
        "FOVEA_DATABASE_URI is not a Fovea setting and is ignored (did you mean FOVEA_DATABASE_URL?)",
        "FOVEA_PROT is not a Fovea setting and is ignored (did you mean FOVEA_PORT?)",
    ]


def test_effective_settings_resolve_the_derived_defaults(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    shown = dict(effective_settings(settings))
    assert shown["FOVEA_DATABASE_URL"] == f"sqlite:///{tmp_path}/fovea.db"
    assert shown["FOVEA_STORAGE_URL"] == f"{tmp_path}/blobs"
    assert shown["FOVEA_DUPLICATE_POLICY"] == "replace"
    assert shown["FOVEA_PUBLIC_BASE_URL"] == ""
