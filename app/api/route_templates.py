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

_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def without_group_names(pattern: re.Pattern[str]) -> str:
    """`pattern`'s text with its named groups made plain, so that several can share one alternation."""
    return _NAMED_GROUP.sub("(?:", pattern.pattern)


@dataclass(frozen=True, slots=True)
class RouteTemplates:
    entries: tuple[tuple[re.Pattern[str], str], ...]
    # Every entry's pattern in one alternation, in order, each alternative named after its index: one
    # regular expression run per request instead of one per route (the first alternative that matches
    # is the first entry that matches, as alternatives are tried left to right).
    combined: re.Pattern[str] | None = None

    @classmethod
    def of(cls, routers: Iterable[tuple[APIRouter, str]]) -> RouteTemplates:
        """From (router, prefix) pairs, routes in the order they are matched."""
        entries = []
        for router, prefix in routers:
            for route in router.routes:
                if isinstance(route, Route):
                    template = prefix + route.path
                    entries.append((compile_path(template)[0], template))
        alternatives = (
            f"(?P<t{index}>{without_group_names(pattern)})" for index, (pattern, _) in enumerate(entries)
        )
        return cls(tuple(entries), re.compile("|".join(alternatives)) if entries else None)

    def match(self, path: str) -> str | None:
        """The template of the first route whose path matches, or None for an unknown path."""
        if self.combined is None:
            return None
        found = self.combined.match(path)
        if found is None or found.lastgroup is None:
            return None
        return self.entries[int(found.lastgroup[1:])][1]
