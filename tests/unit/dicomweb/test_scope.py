from __future__ import annotations

import pytest

from app.dicomweb.scope import INSTANCE_ROUTE, SERIES_ROUTE, STUDY_ROUTE, Scope

BASE = "https://pacs.example.org/dicom-web"


@pytest.mark.parametrize(
    ("scope", "url"),
    [
        (Scope("1.2"), f"{BASE}/studies/1.2"),
        (Scope("1.2", "1.2.3"), f"{BASE}/studies/1.2/series/1.2.3"),
        (Scope("1.2", "1.2.3", "1.2.3.4"), f"{BASE}/studies/1.2/series/1.2.3/instances/1.2.3.4"),
    ],
)
def test_a_scope_is_the_url_of_its_resource(scope: Scope, url: str) -> None:
    assert scope.url(BASE) == url


def test_an_instance_without_its_series_is_no_scope() -> None:
    with pytest.raises(ValueError, match="series"):
        Scope("1.2", None, "1.2.3.4")


def test_the_route_templates_fill_in_to_the_scope_path() -> None:
    uids = {"study_instance_uid": "1.2", "series_instance_uid": "1.2.3", "sop_instance_uid": "1.2.3.4"}
    assert STUDY_ROUTE.format(**uids) == Scope("1.2").path
    assert SERIES_ROUTE.format(**uids) == Scope("1.2", "1.2.3").path
    assert INSTANCE_ROUTE.format(**uids) == Scope("1.2", "1.2.3", "1.2.3.4").path
