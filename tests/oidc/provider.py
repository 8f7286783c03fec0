"""A real OpenID provider for the tests: npm's oidc-provider (tests/oidc/provider.mjs) on Node.js.

Installed on first use into .e2e-cache/oidc-provider (npm registry), as `make oidc-provider` does.
Node.js missing is a test failure with a clear message, never a silent skip. The test holds the
provider's private keys (it writes the key set file), so it can also forge tokens the provider never
issued: another issuer, an unknown key, `alg: none`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".e2e-cache" / "oidc-provider"
PACKAGE = "oidc-provider@9.13.3"
SCRIPT = Path(__file__).with_name("provider.mjs")
CLIENT = ("fovea-tests", "fovea-tests-secret")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def install() -> Path:
    """The provider's node_modules, installed once; a clear failure without Node.js or npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js (node and npm, v20 or later) is required for the OIDC tests: install it")
    if not (CACHE / "node_modules" / "oidc-provider" / "package.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(CACHE), PACKAGE],
            check=True,
            timeout=300,
        )
    return CACHE


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: PrivateKey

    def private_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header})


def new_key(kid: str, alg: str) -> SigningKey:
    private: PrivateKey
    if alg.startswith("ES"):
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid, alg, private)


@dataclass
class OidcProvider:
    workdir: Path
    keys: list[SigningKey]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "provider.log"

    def start(self) -> None:
        cache = install()
        key_file = self.workdir / "jwks.json"
        key_file.write_text(json.dumps({"keys": [key.private_jwk() for key in self.keys]}))
        script = cache / SCRIPT.name
        shutil.copyfile(SCRIPT, script)  # ESM resolves `oidc-provider` next to the script
        env = {
            "PATH": _path(),
            "OIDC_PORT": str(self.port),
            "OIDC_ISSUER": self.issuer,
            "OIDC_JWKS": str(key_file),
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(["node", str(script)], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def rotate(self, keys: list[SigningKey]) -> None:
        """Restart with another key set: what a provider's key rotation looks like to Fovea."""
        self.stop()
        self.keys = keys
        self.start()

    def key_set_requests(self) -> int:
        return self.log_path.read_text().splitlines().count("JWKS")

    def token(self, scope: str, resource: str = "urn:fovea") -> str:
        response = httpx.post(
            f"{self.issuer}/token",
            auth=CLIENT,
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")
