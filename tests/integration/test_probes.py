"""/livez and /readyz (and /health, readiness under its older name) on a working server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import text

from app import __version__
from app.imaging.codec_pool import CodecPool
from tests.conftest import Backend, LiveServer, start_live_server

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)


def test_livez_and_readyz_answer_200(live_server: LiveServer) -> None:
    alive = httpx.get(f"{live_server.base_url}/livez")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive", "version": __version__})
    for path in ("/readyz", "/health"):
        ready = httpx.get(f"{live_server.base_url}{path}")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "version": __version__})
        assert httpx.head(f"{live_server.base_url}{path}").status_code == 200


@pytest.fixture
def schema_behind(backend: Backend) -> Iterator[None]:
    with _schema_behind(backend):
        yield


@contextmanager
def _schema_behind(backend: Backend) -> Iterator[None]:
    """The index claims an older migration for the duration (as a forgotten `fovea migrate` would)."""
    with backend.engine.begin() as connection:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        yield
    finally:
        with backend.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})


def test_readyz_is_503_while_the_schema_is_not_at_the_newest_migration(
    live_server: LiveServer,
    schema_behind: None,  # noqa: ARG001 (an argument, not usefixtures: set up after the server starts)
) -> None:
    response = httpx.get(f"{live_server.base_url}/readyz")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "status": "unavailable",
        "problems": {"index": "schema is not at the newest migration: run `fovea migrate`"},
    }
    assert httpx.get(f"{live_server.base_url}/livez").status_code == 200  # liveness does not care


def test_a_successful_readiness_check_is_reused_and_a_failure_is_not(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with start_live_server(backend, worker_pool, codec_pool, readiness_cache_s=600) as server:
        readyz = f"{server.base_url}/readyz"
        with _schema_behind(backend):
            assert httpx.get(readyz).status_code == 503
        assert httpx.get(readyz).status_code == 200  # the failure was not remembered
        with _schema_behind(backend):
            assert httpx.get(readyz).status_code == 200  # the success is
            assert httpx.get(f"{server.base_url}/health").status_code == 200
