"""The router's fast lane: the most requested routes found directly, unknown paths refused at once.

Why: FastAPI's router walks every included router and every route in turn, keeping scope bookkeeping
for each, and for a path nothing serves it walks them all a second time looking for a slash redirect;
with about a hundred routes that was half of what a minimal request cost in the application. This layer
sits where the router's own middleware would (inside the exception handlers, after authentication):

- a GET or HEAD whose path one of the hot routes (probes, the frames resource) serves goes straight
  to that route, as the router would have sent it (they are declared before any route that could also
  match their paths);
- a path that no route serves, with or without a trailing slash, gets the router's own 404 without the
  walk (one regular expression made of every route's);
- everything else goes to the router unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from fastapi import routing
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.route_templates import without_group_names

_HOT_METHODS = frozenset({"GET", "HEAD"})


def served_paths_pattern(routes: Iterable[BaseRoute]) -> re.Pattern[str] | None:
    """One pattern matching (`match`, as the routes do) every path some route serves, whatever the method;
    None when a route is not a plain path route (a mount, a host), whose paths cannot be told in advance."""
    alternatives = []
    for route in routing.iter_route_contexts(list(routes)):
        regex = getattr(route, "path_regex", None)
        if not isinstance(regex, re.Pattern) or not isinstance(getattr(route, "path", None), str):
            return None
        alternatives.append(without_group_names(regex))
    return re.compile("|".join(alternatives)) if alternatives else None


class HotRoutes:
    """Wraps the router's app: hot routes and unknown paths first, the router for the rest."""

    def __init__(self, router: routing.APIRouter, hot: Sequence[Route]) -> None:
        self.router = router
        self.app: ASGIApp = router.middleware_stack
        self.hot = tuple(hot)
        self.served = served_paths_pattern(router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] in _HOT_METHODS:
                for route in self.hot:
                    match, child_scope = route.matches(scope)
                    if match is Match.FULL:
                        scope.setdefault("router", self.router)
                        scope.update(child_scope)
                        await route.handle(scope, receive, send)
                        return
            if self.served is not None and not self._served(get_route_path(scope)):
                scope.setdefault("router", self.router)
                await self.router.default(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _served(self, path: str) -> bool:
        """Whether some route serves `path`, or the path the router would redirect to (slash toggled)."""
        assert self.served is not None
        if self.served.match(path):
            return True
        if path == "/":
            return False
        toggled = path.rstrip("/") if path.endswith("/") else path + "/"
        return self.router.redirect_slashes and self.served.match(toggled) is not None


def prefixed(route: Route, prefix: str) -> Route:
    """`route` as the app serves it when its router is included under `prefix`."""
    assert route.methods is not None
    return Route(prefix + route.path, route.endpoint, methods=list(route.methods), name=route.name)


def install_hot_routes(router: routing.APIRouter, hot: Sequence[Route]) -> None:
    """Put the fast lane in front of `router` (call once every route is added)."""
    # Starlette's Router calls `middleware_stack` for every request; it is `router.app` unless the
    # router was given middleware, which this one never is.
    router.middleware_stack = HotRoutes(router, hot)
