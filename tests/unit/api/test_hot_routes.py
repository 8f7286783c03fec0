"""The router's fast lane answers every request exactly as the router alone does, only sooner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.api.hot_routes import HotRoutes, served_paths_pattern
from app.main import create_app
from app.settings import Settings

FRAMES = "/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5/frames"
REQUESTS = [
    ("GET", "/health"),
    ("HEAD", "/health"),
    ("POST", "/health"),
    ("GET", "/health/"),
    ("GET", "/readyz"),
    ("HEAD", "/readyz"),
    ("GET", "/livez"),
    ("HEAD", "/livez"),
    ("GET", "/nope"),
    ("GET", "/health%0A"),  # the routes' patterns end in `$`, which also matches before a final newline
    ("GET", "/nope%0A"),
    ("GET", "/"),
    ("GET", "/dicom-web/no-such-resource"),
    ("GET", "/dicom-web/no-such-resource/"),
    ("GET", "/dicom-web/studies/"),
    ("DELETE", "/dicom-web/no-such-resource"),
    ("GET", FRAMES + "/1"),
    ("HEAD", FRAMES + "/1"),
    ("POST", FRAMES + "/1"),
    ("GET", FRAMES + "/0"),
    ("GET", FRAMES + "/1/"),
    ("GET", FRAMES + "/1/rendered"),
    ("OPTIONS", FRAMES + "/1"),
]
VARYING = frozenset({"x-request-id", "date"})


async def answers(app: FastAPI) -> list[tuple[int, dict[str, str], bytes]]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8042") as client,
    ):
        found = []
        for method, path in REQUESTS:
            response = await client.request(method, path, headers={"Accept": "*/*"})
            headers = {name: value for name, value in response.headers.items() if name not in VARYING}
            found.append((response.status_code, headers, response.content))
        return found


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_the_fast_lane_is_in_front_of_the_router(settings: Settings) -> None:
    app = create_app(settings)
    assert isinstance(app.router.middleware_stack, HotRoutes)


def test_answers_are_those_of_the_router_alone(settings: Settings) -> None:
    with_lane = create_app(settings)
    without_lane = create_app(settings)
    without_lane.router.middleware_stack = without_lane.router.app
    fast, plain = asyncio.run(answers(with_lane)), asyncio.run(answers(without_lane))
    for request, fast_answer, plain_answer in zip(REQUESTS, fast, plain, strict=True):
        assert fast_answer == plain_answer, request
    statuses = dict(zip(REQUESTS, (status for status, _, _ in fast), strict=True))
    assert statuses[("GET", "/health")] == 200
    assert statuses[("GET", "/nope")] == 404
    assert statuses[("GET", FRAMES + "/1")] == 404  # no such instance stored


def test_served_paths_cover_every_route_and_nothing_else(settings: Settings) -> None:
    app = create_app(settings)
    served = served_paths_pattern(app.router.routes)
    assert served is not None
    for path in ("/health", "/metrics", "/dicom-web", FRAMES + "/1,2", "/dicom-web/studies/1.2.3/metadata"):
        assert served.match(path), path
    for path in ("/", "/nope", "/dicom-web/no-such-resource", FRAMES, "/healthz"):
        assert not served.match(path), path
