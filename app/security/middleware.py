"""The authentication middleware: every HTTP request gets a principal, or a 401/403/503 before routing.

Order of work per request: drop X-Forwarded-* from untrusted peers; find what the route needs
(route_scopes.py); take the credentials (Authorization: Bearer, X-API-Key, or ?token=, which is removed
from the query so the routes never see it); authenticate; check the scope, and confine a share token
to its study. Why pure ASGI and not a dependency: it runs once per request, before routing, for every
route alike, and costs a dictionary lookup once a token's decision is cached.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy import Engine
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.authenticator import NOBODY, Authenticator
from app.security.errors import AuthError, InsufficientScope, InvalidToken, MissingCredentials
from app.security.principal import Principal, PrincipalKind, set_principal
from app.security.proxies import TrustedProxies, parse_networks
from app.security.route_scopes import requirement_for
from app.security.study_confinement import confine_to_study
from app.settings import Settings

REALM = "fovea"


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.authenticator = Authenticator(settings)
        self.proxies = TrustedProxies(parse_networks(settings.trusted_proxies))
        self.retry_after = str(settings.retry_after_s).encode()  # as every other 503 (FOVEA_RETRY_AFTER_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.proxies.apply(scope)
        connection = HTTPConnection(scope)
        set_principal(connection, NOBODY)  # until a credential proves more (refusals are logged as this)
        requirement = requirement_for(scope["method"], scope["path"])
        if requirement.public:  # credentials, good or bad, are not looked at
            await self.app(scope, receive, send)
            return
        try:
            token = take_token(scope)
            local_host = (scope.get("server") or ("", 0))[0]
            principal = await self.authenticator.authenticate(token, _engine(scope), local_host)
            set_principal(connection, principal)
            authorize(scope, principal, requirement.scope)
        except AuthError as exc:
            await send_refusal(exc, scope, send, retry_after=self.retry_after)
            return
        await self.app(scope, receive, send)


def _engine(scope: Scope) -> Engine:
    engine: Engine = scope["app"].state.services.engine
    return engine


def take_token(scope: Scope) -> str | None:
    """The bearer token or API key the request presents; a `token` query parameter is removed."""
    authorization: str | None = None
    x_api_key: str | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1").strip()
    query_token = _take_query_token(scope)
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise InvalidToken("only Authorization: Bearer credentials are accepted")
        return credentials.strip()
    return x_api_key or query_token or None


def _take_query_token(scope: Scope) -> str | None:
    query: bytes = scope["query_string"]
    if b"token=" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    tokens = [value for key, value in pairs if key == "token"]
    if not tokens:
        return None
    scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != "token"]).encode("latin-1")
    return tokens[-1]


def authorize(scope: Scope, principal: Principal, needed: str) -> None:
    if not principal.holds(needed):
        if principal.kind is PrincipalKind.ANONYMOUS:
            raise MissingCredentials(
                f"authentication required ({needed}): send Authorization: Bearer <token or API key>"
            )
        raise InsufficientScope(f"{principal.kind} {principal.name!r} does not hold {needed}", needed)
    if principal.study_uid is not None:
        confine_to_study(scope, principal.study_uid, deidentified=principal.deidentified_only)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


async def send_refusal(error: AuthError, scope: Scope, send: Send, *, retry_after: bytes = b"5") -> None:
    """401/403 with WWW-Authenticate (RFC 6750 section 3), 503 with Retry-After; our JSON error body."""
    body = orjson.dumps({"status": error.status, "error": error.message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status in (401, 403):
        challenge = f'Bearer realm="{REALM}"'
        if error.code:
            challenge += f', error="{error.code}", error_description="{_quoted(error.message)}"'
        if isinstance(error, InsufficientScope):
            challenge += f', scope="{error.scope}"'
        headers.append((b"www-authenticate", challenge.encode("latin-1", "replace")))
    else:
        headers.append((b"retry-after", retry_after))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
