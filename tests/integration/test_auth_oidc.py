"""OIDC bearer tokens from a real OpenID provider (npm oidc-provider, client-credentials grant, JWT
access tokens), Fovea configured by issuer URL: scopes, expiry, audience, issuer, unknown keys,
`alg: none`, key rotation, the provider down with and without cached keys, a hanging or garbled one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from app.imaging.codec_pool import CodecPool
from tests.conftest import Backend, LiveServer, free_port, start_live_server
from tests.dicom_files import make_instance
from tests.integration.auth_helpers import bearer
from tests.oidc.provider import OidcProvider, SigningKey, new_key

pytestmark = [
    pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True),
    pytest.mark.timeout(120),
]

AUDIENCE = "urn:fovea"
STUDY_INSTANCE_UID = "0020000D"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    started = OidcProvider(tmp_path_factory.mktemp("oidc"), [new_key("k1", "ES256"), new_key("ed", "EdDSA")])
    started.start()
    try:
        yield started
    finally:
        started.stop()


@contextmanager
def fovea_for(
    issuer: str, backend: Backend, pool: Executor, codecs: CodecPool, **overrides: Any
) -> Iterator[LiveServer]:
    settings: dict[str, Any] = {
        "oidc_issuer": issuer,
        "oidc_audience": AUDIENCE,
        "oidc_scope_map": "pacs-reader=dicom.read",
        "oidc_leeway_seconds": 0,
        "oidc_jwks_refresh_seconds": 1.0,
        "oidc_timeout_seconds": 2.0,
        **overrides,
    }
    with start_live_server(backend, pool, codecs, **settings) as server:
        yield server


@pytest.fixture
def fovea(
    provider: OidcProvider, backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> Iterator[LiveServer]:
    with fovea_for(provider.issuer, backend, worker_pool, codec_pool) as server:
        yield server


def claims(issuer: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "aud": AUDIENCE, "sub": "forger", "iat": now, "exp": now + 300,
            "scope": "dicom.read", "jti": uuid.uuid4().hex, **extra}  # fmt: skip


def search(server: LiveServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.dicomweb}/studies", headers=bearer(token), timeout=30)


def key_by_kid(provider: OidcProvider, kid: str) -> SigningKey:
    return next(key for key in provider.keys if key.kid == kid)


def test_anonymous_is_401_when_an_issuer_is_configured(fovea: LiveServer) -> None:
    response = httpx.get(f"{fovea.dicomweb}/studies")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="fovea"'


@pytest.mark.parametrize(
    ("scope", "reads", "writes"),
    [
        ("dicom.read", 200, 403),
        ("dicom.write", 403, 200),
        ("pacs-reader", 200, 403),  # the provider's name, mapped onto dicom.read
        ("admin", 403, 403),
    ],
)
def test_each_scope_grants_what_it_names(
    provider: OidcProvider, fovea: LiveServer, scope: str, reads: int, writes: int
) -> None:
    token = provider.token(scope)
    assert search(fovea, token).status_code == reads
    stored = httpx.post(
        f"{fovea.dicomweb}/studies",
        content=b"--b\r\nContent-Type: application/dicom\r\n\r\n" + make_instance() + b"\r\n--b--\r\n",
        headers={**bearer(token), "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )
    assert stored.status_code == writes


def test_dicomweb_client_with_a_bearer_token_over_the_whole_api(
    provider: OidcProvider, fovea: LiveServer
) -> None:
    token = provider.token("dicom.read dicom.write")
    headers = {**bearer(token), "X-Forwarded-Host": urlsplit(fovea.base_url).netloc}
    client = DICOMwebClient(url=fovea.dicomweb, headers=headers)
    dataset = pydicom.dcmread(pydicom.filebase.DicomBytesIO(make_instance(seed=3)))

    client.store_instances([dataset])

    study, series, sop = dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID
    assert [r[STUDY_INSTANCE_UID]["Value"][0] for r in client.search_for_studies()] == [study]
    assert len(client.search_for_instances(study, series)) == 1
    assert client.retrieve_instance(study, series, sop).PixelData == dataset.PixelData
    assert client.retrieve_instance_frames(study, series, sop, frame_numbers=[1]) == [dataset.PixelData]
    assert len(client.retrieve_study_metadata(study)) == 1


def test_an_expired_token_is_401(provider: OidcProvider, fovea: LiveServer) -> None:
    token = provider.token("dicom.read", resource="urn:fovea:short")  # lives 2 s; no leeway here
    time.sleep(3)
    response = search(fovea, token)
    assert response.status_code == 401
    assert response.json()["error"] == "token expired"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_for_another_audience_is_401(provider: OidcProvider, fovea: LiveServer) -> None:
    response = search(fovea, provider.token("dicom.read", resource="urn:other-api"))
    assert response.status_code == 401
    assert response.json()["error"] == "token is not for this audience"


def test_a_token_from_another_issuer_is_401(provider: OidcProvider, fovea: LiveServer) -> None:
    forged = key_by_kid(provider, "k1").sign(claims("http://evil.example"))
    response = search(fovea, forged)
    assert response.status_code == 401
    assert response.json()["error"] == "token from another issuer"


def test_eddsa_tokens_signed_with_a_published_key_are_accepted(
    provider: OidcProvider, fovea: LiveServer
) -> None:
    assert search(fovea, key_by_kid(provider, "ed").sign(claims(provider.issuer))).status_code == 200


def test_unknown_keys_are_401_and_a_flood_of_them_fetches_the_key_set_at_most_once_more(
    provider: OidcProvider, backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with fovea_for(provider.issuer, backend, worker_pool, codec_pool, oidc_jwks_refresh_seconds=60) as server:
        assert search(server, provider.token("dicom.read")).status_code == 200
        before = provider.key_set_requests()
        stranger = new_key("k-unknown", "ES256")
        for _ in range(20):
            response = search(server, stranger.sign(claims(provider.issuer)))
            assert response.status_code == 401
            assert response.json()["error"] == "token signed by a key the identity provider does not publish"
        assert provider.key_set_requests() - before <= 1


def test_alg_none_and_hs256_with_the_public_key_are_401(provider: OidcProvider, fovea: LiveServer) -> None:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = f"{segment({'alg': 'none', 'kid': 'k1'})}.{segment(claims(provider.issuer))}."
    response = search(fovea, unsigned)
    assert (response.status_code, response.json()["error"]) == (401, "token algorithm 'none' is not accepted")
    # The classic confusion: an HMAC "signed" with the provider's public key as the shared secret.
    public_key = httpx.get(f"{provider.issuer}/jwks").content
    signing_input = f"{segment({'alg': 'HS256', 'kid': 'k1'})}.{segment(claims(provider.issuer))}"
    mac = hmac.new(public_key, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    response = search(fovea, confused)
    assert (response.status_code, response.json()["error"]) == (
        401,
        "token algorithm 'HS256' is not accepted",
    )


def test_a_token_with_ten_thousand_scopes_is_401(provider: OidcProvider, fovea: LiveServer) -> None:
    scopes = " ".join(f"s{i}" for i in range(10_000))
    response = search(fovea, key_by_kid(provider, "k1").sign(claims(provider.issuer, scope=scopes)))
    assert (response.status_code, response.json()["error"]) == (401, "token longer than 8192 characters")


def test_key_rotation_is_picked_up_with_one_key_set_fetch(
    tmp_path: Path, backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    rotating = OidcProvider(tmp_path, [new_key("old", "ES256")])
    rotating.start()
    try:
        with fovea_for(rotating.issuer, backend, worker_pool, codec_pool) as server:
            assert search(server, rotating.token("dicom.read")).status_code == 200
            rotating.rotate([new_key("new", "RS256")])
            time.sleep(1.1)  # past the refresh rate limit (1 s here)
            before = rotating.key_set_requests()
            for _ in range(3):
                assert search(server, rotating.token("dicom.read")).status_code == 200
            assert rotating.key_set_requests() - before == 1
    finally:
        rotating.stop()


def test_provider_down_cached_keys_still_verify_and_without_them_503(
    tmp_path: Path, backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    provider = OidcProvider(tmp_path, [new_key("only", "ES256")])
    provider.start()
    try:
        first, second = provider.token("dicom.read"), provider.token("dicom.read")
        with fovea_for(provider.issuer, backend, worker_pool, codec_pool) as server:
            assert search(server, first).status_code == 200
            provider.stop()
            assert search(server, second).status_code == 200  # a new token, checked with the cached key
        with fovea_for(provider.issuer, backend, worker_pool, codec_pool) as fresh:
            response = search(fresh, second)
            assert response.status_code == 503
            assert (
                response.json()["error"] == "identity provider unreachable and no cached key fits the token"
            )
            assert response.headers["Retry-After"] == "5"
    finally:
        provider.stop()


@contextmanager
def hanging_provider() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


class GarbageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"\x00not json{" * 10
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def garbage_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), GarbageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("broken", [hanging_provider, garbage_provider], ids=["hangs", "garbage"])
def test_a_hanging_or_garbled_provider_is_503_not_a_hang(
    broken: Any, backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    key = new_key("k", "ES256")
    with broken() as issuer, fovea_for(issuer, backend, worker_pool, codec_pool) as server:
        response = search(server, key.sign(claims(issuer)))
        assert response.status_code == 503
        assert response.json()["error"] == "identity provider unreachable and no cached key fits the token"
