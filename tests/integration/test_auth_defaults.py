"""Safe defaults: `fovea serve` refuses a non-loopback address without authentication, and
X-Forwarded-* are honoured from trusted proxies only."""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

import httpx
import pytest

from app.imaging.codec_pool import CodecPool
from tests.conftest import Backend, start_live_server
from tests.integration.auth_helpers import store_study
from tests.integration.test_cli import run_fovea

RETRIEVE_URL = "00081190"


def test_serve_refuses_a_public_address_without_authentication(tmp_path: Path) -> None:
    result = run_fovea("serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "refusing to listen on 0.0.0.0 without authentication: configure FOVEA_OIDC_ISSUER or create an "
        "API key (`fovea api-key create`), or set FOVEA_ALLOW_ANONYMOUS=true if an open server is intended"
    ]


def test_serve_refuses_a_bad_trusted_proxy_entry(tmp_path: Path) -> None:
    env = {"FOVEA_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}
    result = run_fovea("serve", "--data-dir", str(tmp_path), env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "FOVEA_TRUSTED_PROXIES: 'proxy.local' is not an address or CIDR"


def test_api_key_cli_prints_the_key_alone_on_its_last_line_once(tmp_path: Path) -> None:
    created = run_fovea(
        "api-key", "create", "--name", "modality-gw", "--scopes", "dicom.write", "--expires", "30d",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fvk_") and len(key) > 50
    listed = run_fovea("api-key", "list", "--data-dir", str(tmp_path))
    assert key not in listed.stdout and key.split("_")[2] not in listed.stdout
    assert listed.stdout.split("\t")[:3] == ["modality-gw", key.split("_")[1], "dicom.write"]
    assert listed.stdout.strip().endswith("active")
    revoked = run_fovea("api-key", "revoke", "modality-gw", "--data-dir", str(tmp_path))
    assert revoked.returncode == 0
    assert run_fovea("api-key", "list", "--data-dir", str(tmp_path)).stdout.strip().endswith("revoked")
    again = run_fovea("api-key", "revoke", "modality-gw", "--data-dir", str(tmp_path))
    assert (again.returncode, again.stderr.strip()) == (1, "no active API key named 'modality-gw'")


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
@pytest.mark.parametrize("trusted", ["", "127.0.0.0/8"], ids=["untrusted", "trusted"])
def test_x_forwarded_host_is_honoured_from_trusted_proxies_only(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool, trusted: str
) -> None:
    with start_live_server(backend, worker_pool, codec_pool, trusted_proxies=trusted) as server:
        stored = store_study(server, {})
        response = httpx.get(
            f"{server.dicomweb}/studies",
            params={"limit": "1"},
            headers={"X-Forwarded-Host": "evil.example.com", "X-Forwarded-Proto": "https"},
        )
        port = server.base_url.rsplit(":", 1)[1]
        scheme, authority = ("https", "evil.example.com") if trusted else ("http", f"127.0.0.1:{port}")
        assert response.json()[0][RETRIEVE_URL]["Value"] == [
            f"{scheme}://{authority}/dicom-web/studies/{stored.study}"
        ]
