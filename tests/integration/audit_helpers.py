"""Helpers of the audit trail tests: requests made as named principals, and a live server that honours them.

Until the authentication layer is merged, a test-only middleware sets the principal from the
`X-Test-Principal` header ("kind:name" or "kind:name:username"); once real API keys exist these tests
should authenticate with them instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

import tests.conftest
from app.imaging.codec_pool import CodecPool
from app.main import create_app
from app.security.principal import ALL_SCOPES, Principal, PrincipalKind, set_principal
from app.services import Services
from app.settings import Settings
from tests.conftest import Backend, LiveServer, start_live_server

PRINCIPAL_HEADER = "X-Test-Principal"


def as_principal(kind: PrincipalKind, name: str, username: str | None = None) -> dict[str, str]:
    value = f"{kind.value}:{name}" + (f":{username}" if username else "")
    return {PRINCIPAL_HEADER: value}


class HeaderPrincipalMiddleware:
    """Test only: the principal named by the X-Test-Principal header, holding every scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (value := Headers(scope=scope).get(PRINCIPAL_HEADER)):
            kind, name, *username = value.split(":")
            principal = Principal(PrincipalKind(kind), name, ALL_SCOPES, username[0] if username else None)
            set_principal(HTTPConnection(scope), principal)
        await self.app(scope, receive, send)


def _app_with_test_principals(settings: Settings, services: Services | None = None) -> FastAPI:
    app = create_app(settings, services)
    # Innermost, so it runs after the authentication middleware (anonymous on loopback here) and its
    # principal is the one the audit trail, further out, reads.
    app.user_middleware.append(Middleware(HeaderPrincipalMiddleware))
    return app


@contextmanager
def audited_live_server(
    backend: Backend,
    pool: Executor,
    codecs: CodecPool,
    monkeypatch: pytest.MonkeyPatch,
    **overrides: object,
) -> Iterator[LiveServer]:
    """A live server whose requests carry the principal their X-Test-Principal header names.

    Leaving the block stops the server, which writes every queued audit event.
    """
    with monkeypatch.context() as patch:
        patch.setattr(tests.conftest, "create_app", _app_with_test_principals)
        with start_live_server(backend, pool, codecs, **overrides) as server:
            yield server
