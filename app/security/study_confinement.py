"""What a study share token may reach: its study's resources, and searches narrowed to that study.

A de-identified share token reaches its study under the de-identified root only, where the path names
the study by its replacement UID, as the token does.

Why rewrite the search rather than filter its results: the search then runs as `/studies/{uid}/series`
or with `StudyInstanceUID={uid}`, which QIDO-RS already answers exactly, paging and counts included.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from starlette.types import Scope

from app.security.errors import InsufficientScope

_STUDY_RESOURCE = re.compile(r"/dicom-web/studies/([^/]+)(/.*)?")
_DEIDENTIFIED_STUDY_RESOURCE = re.compile(r"/dicom-web/deidentified/studies/([^/]+)(/.*)?")
_ROOT_SEARCHES = ("/dicom-web/series", "/dicom-web/instances")
_STUDY_UID_KEYS = frozenset({"studyinstanceuid", "0020000d"})


def confine_to_study(scope: Scope, study_uid: str, *, deidentified: bool = False) -> None:
    """Let the request through narrowed to `study_uid`, or raise InsufficientScope."""
    path: str = scope["path"]
    if deidentified:
        if path == "/dicom-web/deidentified/studies":
            _search_only(scope, study_uid)
            return
        match = _DEIDENTIFIED_STUDY_RESOURCE.fullmatch(path)
        if match is None or match.group(1) != study_uid:
            raise InsufficientScope(
                f"this share token reads the de-identified study {study_uid} only", "dicom.read-deidentified"
            )
        return
    if path == "/dicom-web/studies":
        _search_only(scope, study_uid)
        return
    if path in _ROOT_SEARCHES:
        _set_path(scope, f"/dicom-web/studies/{study_uid}{path.removeprefix('/dicom-web')}")
        return
    match = _STUDY_RESOURCE.fullmatch(path)
    if match is None or match.group(1) != study_uid:
        raise InsufficientScope(f"this share token reads study {study_uid} only", "dicom.read")


def _search_only(scope: Scope, study_uid: str) -> None:
    """A study search's query with `StudyInstanceUID={study_uid}` as its only UID key."""
    query = [
        (key, value)
        for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if key.lower() not in _STUDY_UID_KEYS
    ]
    query.append(("StudyInstanceUID", study_uid))
    scope["query_string"] = urlencode(query).encode("latin-1")


def _set_path(scope: Scope, path: str) -> None:
    scope["path"] = path
    scope["raw_path"] = path.encode("latin-1")
