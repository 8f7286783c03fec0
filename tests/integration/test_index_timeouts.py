"""The index engine carries its timeouts to the database, keeping options given in the URL."""

from __future__ import annotations

from pathlib import Path

from app.store.infra.db import DatabaseTimeouts, create_index_engine


def test_postgresql_gets_the_statement_timeout_and_keeps_url_options(postgres_url: str) -> None:
    assert "options=-csearch_path" in postgres_url  # the session's schema, through libpq options
    engine = create_index_engine(postgres_url, DatabaseTimeouts(connect_s=3, statement_s=2.5))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "2500ms"
            schema = connection.exec_driver_sql("SHOW search_path").scalar()
            assert schema == postgres_url.rsplit("%3D", 1)[1]
    finally:
        engine.dispose()


def test_migration_engine_has_no_statement_timeout(postgres_url: str) -> None:
    engine = create_index_engine(postgres_url)  # what `fovea migrate` and auto-migration use
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    finally:
        engine.dispose()


def test_sqlite_busy_timeout_is_the_setting(tmp_path: Path) -> None:
    engine = create_index_engine(f"sqlite:///{tmp_path / 'busy.db'}", DatabaseTimeouts(sqlite_busy_s=1.5))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
    finally:
        engine.dispose()
