"""The audit route table names exactly the app's routes that touch patient data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, routing

from app.audit.actions import AUDITED_ROUTES, Action, audited_request
from app.main import create_app
from app.settings import Settings

# What the app serves that the trail leaves out: probes, metrics and the published contract.
NOT_PATIENT_DATA = {
    ("GET", "/health"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/dicom-web/openapi.json"),
    ("GET", "/admin/query-tags"),  # the declared tags: configuration, no patient data
    ("GET", "/admin/query-tags/{tag}"),
}


def app_operations(data_dir: Path) -> set[tuple[str, str]]:
    app: FastAPI = create_app(Settings(data_dir=data_dir))
    flatten = getattr(routing, "iter_route_contexts", None)  # FastAPI 0.165 nests included routers
    routes: list[Any] = list(flatten(app.routes)) if flatten is not None else list(app.routes)
    return {
        (method, route.path)
        for route in routes
        if getattr(route, "path", None) and getattr(route, "methods", None)
        for method in set(route.methods) - {"HEAD", "OPTIONS"}
    }


def test_every_route_of_the_app_is_audited_or_known_not_to_touch_patient_data(tmp_path: Path) -> None:
    audited = {(route.method, route.path) for route in AUDITED_ROUTES}
    assert app_operations(tmp_path) - NOT_PATIENT_DATA == audited


def test_no_route_is_listed_twice() -> None:
    assert len({(route.method, route.path) for route in AUDITED_ROUTES}) == len(AUDITED_ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "action", "params"),
    [
        ("POST", "/dicom-web/studies", Action.STORE, {}),
        ("POST", "/dicom-web/studies/1.2.3", Action.STORE, {"study_instance_uid": "1.2.3"}),
        ("GET", "/dicom-web/studies", Action.SEARCH, {}),
        ("GET", "/dicom-web/studies/1.2/series", Action.SEARCH, {"study_instance_uid": "1.2"}),
        (
            "GET",
            "/dicom-web/studies/1/series/2/instances/3/frames/1,2",
            Action.READ_FRAMES,
            {
                "study_instance_uid": "1",
                "series_instance_uid": "2",
                "sop_instance_uid": "3",
                "frame_list": "1,2",
            },
        ),
        ("HEAD", "/dicom-web/studies/1/series/2/instances/3/frames/1", Action.READ_FRAMES, None),
        ("GET", "/dicom-web/studies/1/metadata", Action.READ_METADATA, {"study_instance_uid": "1"}),
        ("GET", "/dicom-web/studies/1/series/2/instances/3/bulkdata/7FE00010", Action.READ_BULKDATA, None),
        ("GET", "/dicom-web/studies/1/series/2/thumbnail", Action.RENDER, None),
        ("GET", "/dicom-web/studies/1/series/2/instances/3/frames/1/rendered", Action.RENDER, None),
        ("GET", "/admin/audit", Action.READ_AUDIT, {}),
        ("DELETE", "/dicom-web/studies/1.2.3", Action.DELETE, {"study_instance_uid": "1.2.3"}),
        ("DELETE", "/dicom-web/studies/1/series/2", Action.DELETE, None),
        (
            "DELETE",
            "/dicom-web/studies/1/series/2/instances/3",
            Action.DELETE,
            {"study_instance_uid": "1", "series_instance_uid": "2", "sop_instance_uid": "3"},
        ),
        ("POST", "/admin/query-tags", Action.CONFIGURE, {}),
        ("DELETE", "/admin/query-tags/00101030", Action.CONFIGURE, {"tag": "00101030"}),
    ],
)
def test_requests_are_named_by_their_route(
    method: str, path: str, action: Action, params: dict[str, str] | None
) -> None:
    audited = audited_request(method, path)
    assert audited is not None
    assert audited.route.action is action
    if params is not None:
        assert audited.path_params == params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/admin/query-tags"),  # configuration, no patient data
        ("GET", "/dicom-web/no-such-thing"),
        ("DELETE", "/dicom-web/studies"),  # deletion exists for a study, series or instance only
        ("DELETE", "/dicom-web/studies/1/metadata"),
        ("OPTIONS", "/dicom-web/studies"),
        ("PUT", "/dicom-web/studies"),
        ("GET", "/dicom-web/studies/1/frames/1"),  # frames exist at instance level only
    ],
)
def test_requests_outside_the_table_are_not_audited(method: str, path: str) -> None:
    assert audited_request(method, path) is None
