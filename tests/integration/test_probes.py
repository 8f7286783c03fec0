"""/livez and /readyz (and /health, readiness under its older name) on a working server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from app import __version__
from tests.conftest import Backend, LiveServer

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
    live_server: LiveServer, schema_behind: None
) -> None:
    response = httpx.get(f"{live_server.base_url}/readyz")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "status": "unavailable",
        "problems": {"index": "schema is not at the newest migration: run `fovea migrate`"},
    }
    assert httpx.get(f"{live_server.base_url}/livez").status_code == 200  # liveness does not care
