"""Which scope each route needs: one table, read top to bottom, first match wins.

Why a table of path patterns rather than decorators on routes: the authentication middleware decides
before routing (so a 401 never depends on which handler would have run), and a reviewer reads the whole
access policy in one place. A path no row matches needs `admin` (deny by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.security.principal import Scope

READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class RouteRule:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    scope: Scope | None  # None: public, no credentials needed


def _rule(methods: frozenset[str], pattern: str, scope: Scope | None) -> RouteRule:
    return RouteRule(methods, re.compile(pattern), scope)


ROUTE_SCOPES: tuple[RouteRule, ...] = (
    # Probes and the published contract: load balancers and code generators call them without credentials.
    _rule(READ_METHODS, r"/(livez|readyz|health)", None),
    _rule(READ_METHODS, r"/dicom-web/openapi\.json", None),
    _rule(frozenset({"POST"}), r"/dicom-web/studies(/[^/]+)?", Scope.WRITE),  # STOW-RS
    _rule(frozenset({"DELETE"}), r"/dicom-web/studies/.+", Scope.DELETE),
    # The de-identified rendition: administrators and de-identified share tokens (confined to their study).
    _rule(READ_METHODS, r"/dicom-web/deidentified(/.*)?", Scope.READ_DEIDENTIFIED),
    _rule(READ_METHODS, r"/dicom-web/.*", Scope.READ),  # WADO-RS, QIDO-RS, rendered, thumbnails
    _rule(frozenset({"GET", "HEAD", "POST", "DELETE"}), r"/admin(/.*)?", Scope.ADMIN),  # keys, audit
)
DEFAULT_SCOPE = Scope.ADMIN


@dataclass(frozen=True, slots=True)
class Requirement:
    public: bool
    scope: Scope


PUBLIC = Requirement(public=True, scope=Scope.READ)


def requirement_for(method: str, path: str) -> Requirement:
    """What a request needs; a CORS preflight (OPTIONS) is public, as browsers send it bare."""
    if method == "OPTIONS":
        return PUBLIC
    for rule in ROUTE_SCOPES:
        if method in rule.methods and rule.pattern.fullmatch(path):
            return PUBLIC if rule.scope is None else Requirement(public=False, scope=rule.scope)
    return Requirement(public=False, scope=DEFAULT_SCOPE)
