"""The route→scope table: every route of the app needs the scope its transaction names."""

from __future__ import annotations

import pytest

from app.security.principal import Scope
from app.security.route_scopes import PUBLIC, Requirement, requirement_for

STUDY = "/dicom-web/studies/1.2.3"
INSTANCE = f"{STUDY}/series/4.5/instances/6.7"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/dicom-web/studies", Scope.READ),
        ("GET", "/dicom-web/series", Scope.READ),
        ("GET", f"{INSTANCE}/frames/1,2", Scope.READ),
        ("HEAD", f"{INSTANCE}/bulkdata/7FE00010", Scope.READ),
        ("GET", f"{STUDY}/thumbnail", Scope.READ),
        ("GET", f"{INSTANCE}/rendered", Scope.READ),
        ("GET", "/dicom-web/deidentified/studies", Scope.READ_DEIDENTIFIED),
        (
            "GET",
            "/dicom-web/deidentified/studies/1.2.3/series/4/instances/5/frames/1",
            Scope.READ_DEIDENTIFIED,
        ),
        ("DELETE", "/dicom-web/deidentified/studies/1.2.3", Scope.ADMIN),  # no such route: deny by default
        ("POST", "/dicom-web/studies", Scope.WRITE),
        ("POST", STUDY, Scope.WRITE),
        ("DELETE", STUDY, Scope.DELETE),
        ("DELETE", INSTANCE, Scope.DELETE),
        ("GET", "/admin/audit", Scope.ADMIN),
        ("POST", "/admin/query-tags", Scope.ADMIN),
        ("DELETE", "/admin/query-tags/PatientWeight", Scope.ADMIN),
        ("POST", "/dicom-web/studies/1.2.3/series", Scope.ADMIN),  # no such route: deny by default
        ("GET", "/somewhere/else", Scope.ADMIN),
    ],
)
def test_each_route_needs_its_scope(method: str, path: str, scope: Scope) -> None:
    assert requirement_for(method, path) == Requirement(public=False, scope=scope)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("HEAD", "/health"),
        ("GET", "/livez"),
        ("GET", "/readyz"),
        ("GET", "/dicom-web/openapi.json"),
        ("OPTIONS", "/dicom-web/studies"),  # CORS preflight
    ],
)
def test_probes_the_contract_and_preflights_are_public(method: str, path: str) -> None:
    assert requirement_for(method, path) is PUBLIC


def test_a_public_path_with_another_method_is_not_public() -> None:
    assert requirement_for("POST", "/health") == Requirement(public=False, scope=Scope.ADMIN)
