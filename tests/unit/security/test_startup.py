"""Safe defaults at start-up and the security settings' own checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.security.api_keys import create_api_key
from app.security.startup import startup_refusal
from app.settings import AnonymousAccess, Settings
from app.store.infra.db import create_index_engine, migrate

REFUSAL_START = "refusing to listen on 0.0.0.0 without authentication"


def test_loopback_without_authentication_starts(tmp_path: Path) -> None:
    assert startup_refusal(Settings(data_dir=tmp_path)) is None


def test_public_address_without_authentication_is_refused(tmp_path: Path) -> None:
    refusal = startup_refusal(Settings(data_dir=tmp_path, host="0.0.0.0"))
    assert refusal is not None and refusal.startswith(REFUSAL_START) and "\n" not in refusal


@pytest.mark.parametrize("allow", [AnonymousAccess.ALL, AnonymousAccess.READ])
def test_deliberate_anonymous_access_starts(tmp_path: Path, allow: AnonymousAccess) -> None:
    assert startup_refusal(Settings(data_dir=tmp_path, host="0.0.0.0", allow_anonymous=allow)) is None


def test_an_oidc_issuer_or_an_api_key_is_authentication(tmp_path: Path) -> None:
    oidc = Settings(data_dir=tmp_path, host="0.0.0.0", oidc_issuer="https://idp", oidc_audience="fovea")
    assert startup_refusal(oidc) is None
    settings = Settings(data_dir=tmp_path, host="0.0.0.0")
    engine = create_index_engine(settings.resolved_database_url)
    migrate(engine)
    create_api_key(engine, "gateway", {"dicom.write"})
    engine.dispose()
    assert startup_refusal(settings) is None


def test_an_issuer_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="FOVEA_OIDC_AUDIENCE is required"):
        Settings(oidc_issuer="https://idp")


def test_short_share_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(share_secrets="x" * 40 + ",short")
    assert Settings(share_secrets=" " + "a" * 32 + " , " + "b" * 32).share_secret_list == ["a" * 32, "b" * 32]
