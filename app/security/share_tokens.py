"""Study share tokens: a signed, expiring grant to read one study (OHIF share links, `<img src>`).

A token is a JWT signed with HMAC-SHA256 under one of FOVEA_SHARE_SECRETS. Why HS256 here and never for
provider tokens: Fovea both signs and verifies these, with a secret only it holds. The header's `kid` is
a fingerprint of the signing secret, so a verifier picks the right one of several (rotation: list the
new secret first, keep the old one until its tokens have expired).

A token issued de-identified (claim `deid`: "basic") names its study by the replacement UID, since a
JWT's claims are readable by whoever holds it, and grants only the de-identified rendition of it; its
claim `key` is the study's index key, which identifies nobody and spares the rendition a search for
the original (replacements are one-way).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.security.errors import InvalidToken
from app.security.principal import Principal, PrincipalKind, Scope

SHARE_ISSUER = "fovea-share"
SHARE_TYPE = "fovea-share+jwt"
DEIDENTIFIED_PROFILE = "basic"  # the `deid` claim: PS3.15 Annex E Basic Profile, options FOVEA_DEID_*
_ALGORITHM = "HS256"


class ShareSecretMissing(ValueError):
    pass


def _fingerprint(secret: str) -> str:
    return "share-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ShareToken:
    token: str
    token_id: str
    study_uid: str
    expires_at: datetime
    deidentified: bool = False


def issue_share_token(
    secrets_list: list[str],
    study_uid: str,
    lifetime: timedelta,
    *,
    deidentified: bool = False,
    study_key: int | None = None,
) -> ShareToken:
    """A token reading `study_uid`; `deidentified`: `study_uid` is the study's replacement UID (and
    `study_key` its index key, when known), and the token reads the de-identified rendition only."""
    if not secrets_list:
        raise ShareSecretMissing(
            "no share secret configured: set FOVEA_SHARE_SECRETS (e.g. `openssl rand -hex 32`)"
        )
    now = datetime.now(UTC)
    token_id = secrets.token_hex(8)
    expires = now + lifetime
    claims = {
        "iss": SHARE_ISSUER,
        "sub": f"share:{token_id}",
        "jti": token_id,
        "study": study_uid,
        "scope": (Scope.READ_DEIDENTIFIED if deidentified else Scope.READ).value,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    if deidentified:
        claims["deid"] = DEIDENTIFIED_PROFILE
        if study_key is not None:
            claims["key"] = study_key
    secret = secrets_list[0]
    headers = {"kid": _fingerprint(secret), "typ": SHARE_TYPE}
    import jwt  # here, not at the top: a server that never sees a share token does without it

    token = jwt.encode(claims, secret, algorithm=_ALGORITHM, headers=headers)
    return ShareToken(token, token_id, study_uid, expires, deidentified)


def is_share_token_header(header: dict[str, Any]) -> bool:
    return header.get("typ") == SHARE_TYPE


def _study_key(claims: dict[str, Any]) -> int | None:
    key = claims.get("key")
    return key if isinstance(key, int) and not isinstance(key, bool) else None


class ShareTokenVerifier:
    """Checks share tokens against the configured secrets, found by their fingerprint."""

    def __init__(self, secrets_list: list[str]) -> None:
        self._by_kid = {_fingerprint(secret): secret for secret in secrets_list}

    def verify(self, token: str, header: dict[str, Any]) -> tuple[Principal, float]:
        """The principal and the token's expiry (epoch seconds); InvalidToken otherwise."""
        secret = self._by_kid.get(str(header.get("kid", "")))
        if secret is None:
            raise InvalidToken("share token signed with an unknown or retired secret")
        import jwt

        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[_ALGORITHM],
                issuer=SHARE_ISSUER,
                options={"require": ["exp", "iss", "study", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("share token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"share token rejected: {exc}") from exc
        study = claims["study"]
        if not isinstance(study, str) or not study:
            raise InvalidToken("share token names no study")
        deid = claims.get("deid")
        if deid is not None and deid != DEIDENTIFIED_PROFILE:
            raise InvalidToken(f"share token asks for an unknown de-identification {deid!r}")
        scope = Scope.READ if deid is None else Scope.READ_DEIDENTIFIED
        principal = Principal(
            PrincipalKind.SHARE_TOKEN,
            f"share:{claims['jti']}",
            frozenset({scope.value}),
            study_uid=study,
            study_key=_study_key(claims) if deid is not None else None,
        )
        return principal, float(claims["exp"])
