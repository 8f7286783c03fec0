"""Safe defaults, checked by `fovea serve` before it listens.

Anonymous access to everything is the default only on a loopback address (`make run`). On any other
address Fovea starts only with authentication configured (an OIDC issuer, or API keys in the index),
or with FOVEA_ALLOW_ANONYMOUS saying anonymous access is intended.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from app.security.api_keys import any_api_key_exists
from app.security.oidc import parse_scope_map
from app.security.proxies import is_loopback, parse_networks
from app.settings import AnonymousAccess, Settings


def startup_refusal(settings: Settings) -> str | None:
    """One line saying why Fovea must not start with these settings, or None."""
    try:
        parse_networks(settings.trusted_proxies)
        parse_scope_map(settings.oidc_scope_map)
    except ValueError as exc:
        return str(exc)
    if is_loopback(settings.host) or settings.oidc_configured:
        return None
    if settings.allow_anonymous is not AnonymousAccess.NO or _api_keys_exist(settings):
        return None
    return (
        f"refusing to listen on {settings.host} without authentication: configure FOVEA_OIDC_ISSUER "
        "or create an API key (`fovea api-key create`), or set FOVEA_ALLOW_ANONYMOUS=true if an open "
        "server is intended"
    )


def _api_keys_exist(settings: Settings) -> bool:
    from app.store.infra.db import create_index_engine

    engine = create_index_engine(settings.resolved_database_url)
    try:
        return any_api_key_exists(engine)
    except SQLAlchemyError:  # no schema yet: no keys
        return False
    finally:
        engine.dispose()
