"""Which route template a request path belongs to, for labels (metrics, logs) and per-route tables.

Why our own matcher: FastAPI records the matched route on the request scope only for its own
`APIRoute`s; the frames route is a plain Starlette route (the hot path skips FastAPI's machinery), and
routers included with a prefix report their paths without it. A list of compiled templates built
from the same routers `create_app` includes answers the same question for every route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.routing import Route, compile_path


@dataclass(frozen=True, slots=True)
class RouteTemplates:
    entries: tuple[tuple[re.Pattern[str], str], ...]

    @classmethod
    def of(cls, routers: Iterable[tuple[APIRouter, str]]) -> RouteTemplates:
        """From (router, prefix) pairs, routes in the order they are matched."""
        entries = []
        for router, prefix in routers:
            for route in router.routes:
                if isinstance(route, Route):
                    template = prefix + route.path
                    entries.append((compile_path(template)[0], template))
        return cls(tuple(entries))

    def match(self, path: str) -> str | None:
        """The template of the first route whose path matches, or None for an unknown path."""
        for pattern, template in self.entries:
            if pattern.match(path):
                return template
        return None
