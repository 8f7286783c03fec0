"""Why a request was refused, as the middleware answers it (RFC 6750 section 3).

AuthError                       base; status and the WWW-Authenticate error code
├── MissingCredentials          401, no error code (the client did not try)
├── InvalidToken                401 invalid_token (malformed, expired, bad signature, revoked...)
├── InsufficientScope           403 insufficient_scope
└── ProviderUnavailable         503 (the identity provider cannot be reached and no cached key fits)
"""

from __future__ import annotations


class AuthError(Exception):
    status = 401
    code: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingCredentials(AuthError):
    pass


class InvalidToken(AuthError):
    code = "invalid_token"


class InsufficientScope(AuthError):
    status = 403
    code = "insufficient_scope"

    def __init__(self, message: str, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


class ProviderUnavailable(AuthError):
    status = 503


class IndexUnavailable(AuthError):
    status = 503
