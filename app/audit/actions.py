"""Which requests the audit trail records, and as what action: one table keyed by route.

Why a table: the routes that touch patient data are read in one place, and a test checks it against the
app's routes, so a new DICOMweb route cannot go unaudited silently. Routes not listed here (health, metrics,
unknown paths, CORS preflights) touch no patient data and are not recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.routing import compile_path

from app.dicomweb.scope import INSTANCE_ROUTE, SERIES_ROUTE, STUDY_ROUTE


class Action(StrEnum):
    STORE = "store"  # STOW-RS
    SEARCH = "search"  # QIDO-RS
    READ_INSTANCES = "read-instances"  # WADO-RS study, series or instance (Part 10 or bulk)
    READ_METADATA = "read-metadata"
    READ_FRAMES = "read-frames"
    READ_BULKDATA = "read-bulkdata"  # pixel data and bulk data values
    RENDER = "render"  # rendered images and thumbnails
    DELETE = "delete"  # DELETE of a study, series or instance (the UIDs of every instance removed)
    REJECT = "reject"  # instances an IHE IOCM rejection note, stored through STOW-RS, rejected
    READ_AUDIT = "read-audit"  # reading the audit trail is itself recorded
    EXPORT = "export"  # `fovea export`: studies written to files (no route: recorded by the command)
    CONFIGURE = "configure"  # declaring or removing an extended query tag


@dataclass(frozen=True, slots=True)
class AuditedRoute:
    method: str
    path: str  # the route template as the app registers it
    action: Action
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _convertors: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern, _format, convertors = compile_path(self.path)  # as the router itself reads it
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_convertors", convertors)

    def path_params(self, path: str) -> dict[str, Any] | None:
        """The path parameters when `path` is a request to this route; None otherwise."""
        match = self._pattern.match(path)
        if match is None:
            return None
        return {name: self._convertors[name].convert(value) for name, value in match.groupdict().items()}


@dataclass(frozen=True, slots=True)
class AuditedRequest:
    route: AuditedRoute
    path_params: dict[str, Any]


_DICOMWEB = "/dicom-web"
_STUDY = _DICOMWEB + STUDY_ROUTE
_SERIES = _DICOMWEB + SERIES_ROUTE
_INSTANCE = _DICOMWEB + INSTANCE_ROUTE
_FRAMES = _INSTANCE + "/frames/{frame_list}"
_LEVELS = (_STUDY, _SERIES, _INSTANCE)
# The de-identified rendition: its own templates (so an auditor sees it was de-identified), the original
# UIDs noted by its handlers (the path holds only replacements, which are not recorded).
_DEID_STUDY = _DICOMWEB + "/deidentified/studies/{study}"
_DEID_SERIES = _DEID_STUDY + "/series/{series}"
_DEID_INSTANCE = _DEID_SERIES + "/instances/{instance}"
_DEID_FRAMES = _DEID_INSTANCE + "/frames/{frame_list}"
_DEID_LEVELS = (_DEID_STUDY, _DEID_SERIES, _DEID_INSTANCE)
_SEARCHES = (
    _DICOMWEB + "/studies",
    _DICOMWEB + "/series",
    _DICOMWEB + "/instances",
    _STUDY + "/series",
    _STUDY + "/instances",
    _SERIES + "/instances",
)


def _at_levels(suffix: str, action: Action, levels: tuple[str, ...] = _LEVELS) -> list[AuditedRoute]:
    return [AuditedRoute("GET", level + suffix, action) for level in levels]


AUDITED_ROUTES: tuple[AuditedRoute, ...] = (
    AuditedRoute("POST", _DICOMWEB + "/studies", Action.STORE),
    AuditedRoute("POST", _STUDY, Action.STORE),
    *(AuditedRoute("GET", path, Action.SEARCH) for path in _SEARCHES),
    *_at_levels("", Action.READ_INSTANCES),
    *_at_levels("/metadata", Action.READ_METADATA),
    AuditedRoute("GET", _FRAMES, Action.READ_FRAMES),
    *_at_levels("/pixeldata", Action.READ_BULKDATA),
    *_at_levels("/bulkdata", Action.READ_BULKDATA),
    AuditedRoute("GET", _INSTANCE + "/bulkdata/{bulkdata_path:path}", Action.READ_BULKDATA),
    *_at_levels("/rendered", Action.RENDER, (*_LEVELS, _FRAMES)),
    *_at_levels("/thumbnail", Action.RENDER, (*_LEVELS, _FRAMES)),
    *(AuditedRoute("DELETE", level, Action.DELETE) for level in _LEVELS),
    *(
        AuditedRoute("GET", path, Action.SEARCH)
        for path in (
            _DICOMWEB + "/deidentified/studies",
            _DEID_STUDY + "/series",
            *(level + "/instances" for level in (_DEID_STUDY, _DEID_SERIES)),
        )
    ),
    *_at_levels("", Action.READ_INSTANCES, _DEID_LEVELS),
    *_at_levels("/metadata", Action.READ_METADATA, _DEID_LEVELS),
    AuditedRoute("GET", _DEID_FRAMES, Action.READ_FRAMES),
    AuditedRoute("GET", _DEID_INSTANCE + "/bulkdata/{bulkdata_path:path}", Action.READ_BULKDATA),
    *_at_levels("/rendered", Action.RENDER, (*_DEID_LEVELS, _DEID_FRAMES)),
    *_at_levels("/thumbnail", Action.RENDER, (*_DEID_LEVELS, _DEID_FRAMES)),
    AuditedRoute("GET", "/admin/audit", Action.READ_AUDIT),
    AuditedRoute("POST", "/admin/query-tags", Action.CONFIGURE),
    AuditedRoute("DELETE", "/admin/query-tags/{tag}", Action.CONFIGURE),
)


def _depth(path: str) -> int | None:
    """How many '/' a request for the route has; None when a parameter may hold slashes."""
    return None if ":path}" in path else path.count("/")


# Candidates by method and depth, so a request tries a handful of patterns rather than all of them.
_CANDIDATES: dict[tuple[str, int | None], tuple[AuditedRoute, ...]] = {}
for _route in AUDITED_ROUTES:
    _key = (_route.method, _depth(_route.path))
    _CANDIDATES[_key] = (*_CANDIDATES.get(_key, ()), _route)


def audited_request(method: str, path: str) -> AuditedRequest | None:
    """The audited route a request for `path` (without the root path) goes to; None: not audited.

    Why the audit matches paths itself rather than asking the router: requests refused before
    routing (no credentials) are recorded too, and the router's internals differ between releases.
    """
    method = "GET" if method == "HEAD" else method
    for key in ((method, path.count("/")), (method, None)):
        for route in _CANDIDATES.get(key, ()):
            params = route.path_params(path)
            if params is not None:
                return AuditedRequest(route, params)
    return None
