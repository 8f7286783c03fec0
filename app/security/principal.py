"""The principal behind a request: who it is, and the scopes it holds.

Why one small value type: the authentication layer sets it once per request, and everything after it
(route scope checks, share-token filtering of searches, the audit trail, request logs) reads the same
value through `principal_of`, never the credentials themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from starlette.requests import HTTPConnection


class Scope(StrEnum):
    """Fovea's scope names; a route needs one of them (see the route table of the security layer)."""

    READ = "dicom.read"  # WADO-RS, QIDO-RS, rendered, thumbnails
    READ_DEIDENTIFIED = "dicom.read-deidentified"  # the de-identified rendition (/dicom-web/deidentified)
    WRITE = "dicom.write"  # STOW-RS
    DELETE = "dicom.delete"  # deletion
    ADMIN = "admin"  # key management, audit queries


ALL_SCOPES = frozenset(Scope)


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    API_KEY = "api-key"
    OIDC = "oidc"
    SHARE_TOKEN = "share-token"


@dataclass(frozen=True, slots=True)
class Principal:
    """A request's maker.

    `name` identifies it in the audit trail and logs: the API key's name, the OIDC `sub`, the share
    token's id, or "anonymous". `username` is OIDC's `preferred_username` where there is one.
    `study_uid` binds a share token to the one study it may read (for a de-identified token, the
    study's replacement UID: the original never travels in the token); `study_key`, a de-identified
    token's hint where the original is in the index (so the rendition need not search for it).
    """

    kind: PrincipalKind
    name: str
    scopes: frozenset[str]
    username: str | None = None
    study_uid: str | None = None
    study_key: int | None = None

    def holds(self, scope: str) -> bool:
        # An administrator may read any study; de-identified is less than that, so `admin` implies it.
        if scope == Scope.READ_DEIDENTIFIED and Scope.ADMIN in self.scopes:
            return True
        return scope in self.scopes

    @property
    def deidentified_only(self) -> bool:
        """A share token issued de-identified: it reads its study through the de-identified root only."""
        return self.kind is PrincipalKind.SHARE_TOKEN and Scope.READ_DEIDENTIFIED in self.scopes


def anonymous(scopes: frozenset[str] = ALL_SCOPES) -> Principal:
    return Principal(PrincipalKind.ANONYMOUS, "anonymous", scopes)


def principal_of(connection: HTTPConnection) -> Principal | None:
    """The principal the authentication layer found for this request; None before it has run."""
    principal = getattr(connection.state, "principal", None)
    return principal if isinstance(principal, Principal) else None


def set_principal(connection: HTTPConnection, principal: Principal) -> None:
    connection.state.principal = principal
