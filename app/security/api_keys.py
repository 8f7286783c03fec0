"""API keys for machine clients: create, list, revoke, and check a presented key.

A key reads `fvk_<key id>_<secret>`. The key id (12 hex digits) is not secret: it finds the row. Only
HMAC-SHA256(per-key random salt, whole key) is stored. Why a fast keyed hash and not a slow password
hash: the secret is 256 random bits, so guessing it from a leaked hash is hopeless at any hash speed,
and a slow hash would cost milliseconds on every cache miss. The comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from app.security.principal import ALL_SCOPES
from app.store.tables import ApiKey

KEY_PREFIX = "fvk_"
_KEY_ID_HEX = 12
_TABLE = ApiKey.__table__


class ApiKeyError(ValueError):
    """A create or revoke request that cannot be done (unknown scope, duplicate or unknown name)."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What a listing shows, and what a checked key grants."""

    name: str
    key_id: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _key_hash(salt: bytes, key: str) -> bytes:
    return hmac.new(salt, key.encode("ascii", "replace"), hashlib.sha256).digest()


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        name=row.name,
        key_id=row.key_id,
        scopes=frozenset(row.scopes.split()),
        created_at=_aware(row.created_at) or datetime.now(UTC),
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at),
    )


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(item.strip() for item in text.split(",") if item.strip())
    unknown = sorted(scopes - ALL_SCOPES)
    if unknown or not scopes:
        known = ", ".join(sorted(ALL_SCOPES))
        raise ApiKeyError(f"unknown scope {', '.join(unknown) or '(none given)'}; known: {known}")
    return scopes


def create_api_key(
    engine: Engine, name: str, scopes: Iterable[str], lifetime: timedelta | None = None
) -> tuple[ApiKeyRecord, str]:
    """Store a new key's hash; returns its record and the key itself, which is never stored."""
    if not name.strip() or len(name) > 200:
        raise ApiKeyError("a key needs a name of 1 to 200 characters")
    key_id = secrets.token_hex(_KEY_ID_HEX // 2)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    now = datetime.now(UTC)
    row = ApiKey(
        key_id=key_id,
        name=name,
        salt=salt,
        key_hash=_key_hash(salt, key),
        scopes=" ".join(sorted(scopes)),
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
        revoked_at=None,
    )
    with engine.begin() as connection:
        taken = connection.execute(select(ApiKey.pk).where(ApiKey.name == name)).first()
        if taken:
            raise ApiKeyError(f"an API key named {name!r} is taken (also after revocation)")
        connection.execute(
            insert(ApiKey).values(
                key_id=row.key_id,
                name=row.name,
                salt=row.salt,
                key_hash=row.key_hash,
                scopes=row.scopes,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
        )
    return _record(row), key


def list_api_keys(engine: Engine) -> list[ApiKeyRecord]:
    with engine.connect() as connection:
        rows = connection.execute(select(_TABLE).order_by(ApiKey.created_at)).all()
    return [_record(ApiKey(**row._mapping)) for row in rows]


def revoke_api_key(engine: Engine, name: str) -> ApiKeyRecord:
    with engine.begin() as connection:
        result = connection.execute(
            update(ApiKey)
            .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if result.rowcount == 0:
            raise ApiKeyError(f"no active API key named {name!r}")
        row = connection.execute(select(_TABLE).where(ApiKey.name == name)).one()
    return _record(ApiKey(**row._mapping))


def any_api_key_exists(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(select(ApiKey.pk).limit(1)).first() is not None


def check_api_key(engine: Engine, key: str) -> ApiKeyRecord | None:
    """The key's record if the key is genuine (whatever its state), else None."""
    parts = key[len(KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != _KEY_ID_HEX:
        return None
    with engine.connect() as connection:
        row = connection.execute(select(_TABLE).where(ApiKey.key_id == parts[0])).first()
    if row is None:
        return None
    stored = ApiKey(**row._mapping)
    if not hmac.compare_digest(_key_hash(stored.salt, key), stored.key_hash):
        return None
    return _record(stored)
