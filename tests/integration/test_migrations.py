"""The alembic migrations and the SQLAlchemy models describe the same schema, on every database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.store.db import create_index_engine, is_up_to_date, migrate
from app.store.index import Base
from tests.conftest import Backend


def test_migrated_schema_matches_the_models(backend: Backend) -> None:
    with backend.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert is_up_to_date(backend.engine)


def test_fresh_sqlite_database_is_migrated_and_reported_up_to_date(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"  # type: ignore[operator]
    engine = create_index_engine(url)
    assert not is_up_to_date(engine)
    migrate(engine)
    migrate(engine)  # idempotent
    assert is_up_to_date(engine)
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"patient", "study", "series", "instance", "frame", "bulkdata"} <= tables
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: pytest.TempPathFactory) -> None:
    engine = create_index_engine(f"sqlite:///{tmp_path}/pragmas.db")  # type: ignore[operator]
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
