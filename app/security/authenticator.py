"""From the credentials a request presents to its principal.

    no credentials       → anonymous, holding what the anonymous policy grants (see `_anonymous`)
    fvk_…                → an API key (index database; decision kept ≤ 1 s, so a revocation is
                           effective within a second on every process)
    JWT, typ share       → a study share token (Fovea's own secret)
    other JWT            → an OIDC access token (the provider's published keys)

Valid decisions are cached per token until they expire (`DecisionCache`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app.security.api_keys import any_api_key_exists, check_api_key, looks_like_api_key
from app.security.decision_cache import DecisionCache, token_digest
from app.security.errors import IndexUnavailable, InvalidToken
from app.security.oidc import OidcConfig, OidcVerifier, parse_scope_map
from app.security.principal import ALL_SCOPES, Principal, PrincipalKind, Scope, anonymous
from app.security.proxies import is_loopback
from app.security.share_tokens import ShareTokenVerifier, is_share_token_header
from app.settings import AnonymousAccess, Settings

MAX_TOKEN_CHARS = 8192  # far above real access tokens (1-3 KB); a 64 KB "token" is refused unread
API_KEY_DECISION_SECONDS = 1.0  # how long a checked API key is believed: the revocation delay
NOBODY = anonymous(frozenset())


def oidc_config(settings: Settings) -> OidcConfig | None:
    if not settings.oidc_issuer or not settings.oidc_audience:
        return None
    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        scope_claim=settings.oidc_scope_claim,
        scope_map=parse_scope_map(settings.oidc_scope_map),
        leeway_seconds=settings.oidc_leeway_seconds,
        refresh_seconds=settings.oidc_jwks_refresh_seconds,
        timeout_seconds=settings.oidc_timeout_seconds,
    )


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        config = oidc_config(settings)
        self.oidc = OidcVerifier(config) if config else None
        self.shares = ShareTokenVerifier(settings.share_secret_list)
        self.anonymous_access = settings.allow_anonymous
        self.decisions = DecisionCache()
        self._keys_exist = False
        self._keys_checked_at = float("-inf")

    async def authenticate(self, token: str | None, engine: Engine, local_host: str) -> Principal:
        if token is None:
            return await self._anonymous(engine, local_host)
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"token longer than {MAX_TOKEN_CHARS} characters")
        digest = token_digest(token)
        principal = self.decisions.get(digest)
        if principal is None:
            principal, valid_until = await self._verify(token, engine)
            self.decisions.put(digest, principal, valid_until)
        return principal

    async def _verify(self, token: str, engine: Engine) -> tuple[Principal, float]:
        if looks_like_api_key(token):
            return await self._verify_api_key(token, engine)
        import jwt  # on the first JWT: cryptography costs about 10 MB resident

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token: neither an API key nor a JWT") from exc
        if is_share_token_header(header):
            return self.shares.verify(token, header)
        if self.oidc is None:
            raise InvalidToken("JWT bearer tokens are not accepted here: no OIDC issuer is configured")
        return await self.oidc.verify(token, header)

    async def _verify_api_key(self, key: str, engine: Engine) -> tuple[Principal, float]:
        try:
            record = await run_in_threadpool(check_api_key, engine, key)
        except SQLAlchemyError as exc:
            raise IndexUnavailable("the index database cannot be reached to check the API key") from exc
        if record is None:
            raise InvalidToken("unknown API key")
        if record.revoked_at is not None:
            raise InvalidToken("API key revoked")
        if not record.usable_at(datetime.now(UTC)):
            raise InvalidToken("API key expired")
        valid_until = time.time() + API_KEY_DECISION_SECONDS
        if record.expires_at is not None:
            valid_until = min(valid_until, record.expires_at.timestamp())
        return Principal(PrincipalKind.API_KEY, record.name, record.scopes), valid_until

    async def _anonymous(self, engine: Engine, local_host: str) -> Principal:
        """Anonymous access: as FOVEA_ALLOW_ANONYMOUS says, else only while nothing is configured and
        the request arrived on a loopback address (`make run`)."""
        if self.anonymous_access is AnonymousAccess.ALL:
            return anonymous(ALL_SCOPES)
        if self.anonymous_access is AnonymousAccess.READ:
            return anonymous(frozenset({Scope.READ.value}))
        if await self.authentication_configured(engine) or not is_loopback(local_host):
            return NOBODY
        return anonymous(ALL_SCOPES)

    async def authentication_configured(self, engine: Engine) -> bool:
        """An OIDC issuer, or any API key ever created (once true, it stays true: revoking every key
        must not reopen the server)."""
        if self.oidc is not None or self._keys_exist:
            return True
        now = time.monotonic()
        if now - self._keys_checked_at >= API_KEY_DECISION_SECONDS:
            self._keys_checked_at = now
            try:
                self._keys_exist = await run_in_threadpool(any_api_key_exists, engine)
            except SQLAlchemyError as exc:
                raise IndexUnavailable("the index database cannot be reached to check API keys") from exc
        return self._keys_exist
