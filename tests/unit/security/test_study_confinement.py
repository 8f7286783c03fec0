"""A share token's requests: its study's resources pass, searches are narrowed, the rest is refused."""

from __future__ import annotations

from typing import Any

import pytest

from app.security.errors import InsufficientScope
from app.security.study_confinement import confine_to_study

STUDY = "1.2.3"


def request(path: str, query: bytes = b"") -> dict[str, Any]:
    return {"path": path, "raw_path": path.encode(), "query_string": query}


def test_study_search_is_narrowed_to_the_study_whatever_was_asked() -> None:
    scope = request("/dicom-web/studies", b"PatientID=X&StudyInstanceUID=9.9&0020000d=8.8")
    confine_to_study(scope, STUDY)
    assert scope["query_string"] == b"PatientID=X&StudyInstanceUID=1.2.3"


@pytest.mark.parametrize("level", ["series", "instances"])
def test_root_searches_become_searches_in_the_study(level: str) -> None:
    scope = request(f"/dicom-web/{level}", b"Modality=CT")
    confine_to_study(scope, STUDY)
    assert (scope["path"], scope["raw_path"]) == (
        f"/dicom-web/studies/{STUDY}/{level}",
        scope["path"].encode(),
    )
    assert scope["query_string"] == b"Modality=CT"


def test_the_study_resources_pass_unchanged() -> None:
    path = f"/dicom-web/studies/{STUDY}/series/4/instances/5/frames/1"
    scope = request(path)
    confine_to_study(scope, STUDY)
    assert scope["path"] == path


@pytest.mark.parametrize(
    "path", ["/dicom-web/studies/1.2.34/metadata", "/dicom-web/studies/1.2", "/admin/audit"]
)
def test_anything_else_is_refused(path: str) -> None:
    with pytest.raises(InsufficientScope, match=r"reads study 1\.2\.3 only"):
        confine_to_study(request(path), STUDY)


def test_a_deidentified_token_reaches_its_replacement_study_under_the_rendition_only() -> None:
    path = f"/dicom-web/deidentified/studies/{STUDY}/series/4/instances/5/frames/1"
    scope = request(path)
    confine_to_study(scope, STUDY, deidentified=True)
    assert scope["path"] == path
    for refused in (f"/dicom-web/studies/{STUDY}/metadata", "/dicom-web/deidentified/studies/9.9/metadata"):
        with pytest.raises(InsufficientScope):
            confine_to_study(request(refused), STUDY, deidentified=True)


def test_a_deidentified_token_searches_its_study_only() -> None:
    scope = request("/dicom-web/deidentified/studies", b"StudyInstanceUID=9.9&limit=2")
    confine_to_study(scope, STUDY, deidentified=True)
    assert scope["query_string"] == b"limit=2&StudyInstanceUID=1.2.3"
    with pytest.raises(InsufficientScope):
        confine_to_study(request("/dicom-web/studies"), STUDY, deidentified=True)


def test_a_plain_token_does_not_reach_the_rendition() -> None:
    with pytest.raises(InsufficientScope):
        confine_to_study(request(f"/dicom-web/deidentified/studies/{STUDY}/metadata"), STUDY)
