"""OpenID Connect bearer tokens: the provider's keys (discovery → jwks_uri), and a token's checks.

Why here and not in the library: PyJWT checks a JWT (signature, exp, nbf, iss, aud) against a key; which
keys to trust is ours. Keys are fetched once, refreshed when a token names an unknown key id (rotation),
but at most once per FOVEA_OIDC_JWKS_REFRESH_SECONDS so a flood of forged tokens cannot hammer the
provider, and within a hard time limit so a hanging provider costs a request seconds, not forever.
Only asymmetric algorithms are accepted: never `none`, never HS* (which would treat a public key as a
shared secret).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.security.errors import InvalidToken, ProviderUnavailable
from app.security.principal import ALL_SCOPES, Principal, PrincipalKind

if TYPE_CHECKING:  # jwt (cryptography) and httpx are imported on the first token: about 14 MB resident
    import httpx
    import jwt

log = logging.getLogger(__name__)

ACCEPTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
KEY_SET_MAX_AGE_SECONDS = 3600.0  # keys are re-read hourly even without rotation (a removed key stops)
_MAX_DOCUMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    scope_claim: str | None = None
    scope_map: Mapping[str, frozenset[str]] = field(default_factory=dict)
    leeway_seconds: int = 30
    refresh_seconds: float = 30.0
    timeout_seconds: float = 3.0


def parse_scope_map(text: str) -> dict[str, frozenset[str]]:
    """`pacs-reader=dicom.read,pacs-admin=admin,pacs-admin=dicom.read` → provider name → Fovea scopes."""
    mapping: dict[str, set[str]] = {}
    for entry in (item.strip() for item in text.split(",")):
        if not entry:
            continue
        provider, sep, fovea = (part.strip() for part in entry.partition("="))
        if not sep or not provider or fovea not in ALL_SCOPES:
            known = ", ".join(sorted(ALL_SCOPES))
            raise ValueError(f"FOVEA_OIDC_SCOPE_MAP: {entry!r} is not NAME=SCOPE with SCOPE one of {known}")
        mapping.setdefault(provider, set()).add(fovea)
    return {name: frozenset(scopes) for name, scopes in mapping.items()}


def _claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """A claim's values: a space-separated string or a list of strings, at a dotted path."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self.key_set_fetches = 0  # how often the provider was asked for keys (tests, logs)
        self._keys: dict[str, dict[str, Any]] = {}
        self._loaded_at: float | None = None
        self._last_attempt = float("-inf")
        self._refresh_failed = False
        self._jwks_uri: str | None = None
        self._jwks: dict[tuple[str, str], jwt.PyJWK] = {}
        self._lock = asyncio.Lock()

    async def verify(self, token: str, header: Mapping[str, Any]) -> tuple[Principal, float]:
        """The token's principal and expiry (epoch seconds); InvalidToken or ProviderUnavailable."""
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise InvalidToken(f"token algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        key = await self._key_for(kid if isinstance(kid, str) else None, str(algorithm))
        import jwt

        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token is not for this audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}") from exc
        return self._principal(claims), float(claims["exp"])

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        if self.config.scope_claim:
            names = _claim_values(claims, self.config.scope_claim)
        else:
            names = _claim_values(claims, "scope") + _claim_values(claims, "scp")
        scopes: set[str] = set()
        for name in names:
            if name in ALL_SCOPES:
                scopes.add(name)
            scopes.update(self.config.scope_map.get(name, ()))
        subject = claims.get("sub") or claims.get("client_id") or claims.get("azp") or "unknown"
        username = claims.get("preferred_username")
        return Principal(
            PrincipalKind.OIDC,
            str(subject),
            frozenset(scopes),
            username=username if isinstance(username, str) else None,
        )

    async def _key_for(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        now = time.monotonic()
        stale = self._loaded_at is None or now - self._loaded_at > KEY_SET_MAX_AGE_SECONDS
        if stale or self._find(kid) is None:
            await self._refresh()
        raw = self._find(kid)
        if raw is None:
            if self._refresh_failed:
                raise ProviderUnavailable("identity provider unreachable and no cached key fits the token")
            raise InvalidToken("token signed by a key the identity provider does not publish")
        cache_key = (str(raw.get("kid", "")), algorithm)
        jwk = self._jwks.get(cache_key)
        if jwk is None:
            import jwt

            try:
                jwk = jwt.PyJWK(raw, algorithm=raw.get("alg") or algorithm)
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"the provider's key {cache_key[0]!r} does not fit {algorithm}") from exc
            self._jwks[cache_key] = jwk
        return jwk

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self._keys.get(kid)
        # No kid: only unambiguous when the provider publishes a single key.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _refresh(self) -> None:
        """Fetch the key set, unless another request just did or the rate limit says wait."""
        async with self._lock:
            now = time.monotonic()
            gap = self.config.refresh_seconds
            if self._loaded_at is None:  # nothing cached yet: retry sooner
                gap = min(1.0, gap)
            if now - self._last_attempt < gap:
                return
            self._last_attempt = now
            import httpx

            try:
                keys = await asyncio.wait_for(self._fetch_keys(), timeout=self.config.timeout_seconds)
            except (TimeoutError, httpx.HTTPError, ValueError) as exc:
                self._refresh_failed = True
                reason = str(exc) or type(exc).__name__
                log.warning("OIDC key set refresh from %s failed: %s", self.config.issuer, reason)
                return
            self._refresh_failed = False
            self._keys = keys
            self._jwks.clear()
            self._loaded_at = time.monotonic()

    async def _fetch_keys(self) -> dict[str, dict[str, Any]]:
        import httpx

        timeout = httpx.Timeout(self.config.timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            if self._jwks_uri is None:
                discovery_url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                document = await _get_json(client, discovery_url)
                if document.get("issuer") != self.config.issuer:
                    named = document.get("issuer")
                    raise ValueError(f"discovery names issuer {named!r}, not {self.config.issuer!r}")
                jwks_uri = document.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                    raise ValueError("discovery document has no jwks_uri")
                self._jwks_uri = jwks_uri
            key_set = await _get_json(client, self._jwks_uri)
        self.key_set_fetches += 1
        entries = key_set.get("keys")
        if not isinstance(entries, list):
            raise ValueError("key set has no keys list")
        keys = {}
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("use", "sig") == "sig" and "kty" in entry:
                keys[str(entry.get("kid", f"#{index}"))] = entry
        return keys


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url}: document larger than {_MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(response.content)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{url}: not JSON") from exc
    if not isinstance(document, dict):
        raise ValueError(f"{url}: not a JSON object")
    return document
