"""The alembic migrations and the SQLAlchemy models describe the same schema, on every database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.store.infra.db import (
    create_index_engine,
    current_revisions,
    is_up_to_date,
    migrate,
    migration_heads,
    migrations_directory,
    schema_is_current,
)
from app.store.tables import Base
from tests.conftest import Backend


def test_migrated_schema_matches_the_models(backend: Backend) -> None:
    with backend.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert is_up_to_date(backend.engine)


def test_fresh_sqlite_database_is_migrated_and_reported_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    engine = create_index_engine(url)
    assert not is_up_to_date(engine)
    migrate(engine)
    migrate(engine)  # idempotent
    assert is_up_to_date(engine)
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"patient", "study", "series", "instance", "frame", "bulkdata"} <= tables
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_index_engine(f"sqlite:///{tmp_path}/pragmas.db")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_sqlite_writers_take_turns_through_the_lock_file(tmp_path: Path) -> None:
    import threading

    from app.store.infra.db import write_serializer_for

    engine = create_index_engine(f"sqlite:///{tmp_path}/locked.db")
    first, second = write_serializer_for(engine), write_serializer_for(engine)  # as two processes would
    entered = threading.Event()

    def take_turn() -> None:
        with second():
            entered.set()

    with first():
        assert (tmp_path / "locked.db.write-lock").exists()
        waiter = threading.Thread(target=take_turn)
        waiter.start()
        waiter.join(timeout=0.3)
        assert not entered.is_set()  # the second writer waits while the first holds the turn
    waiter.join(timeout=5)
    assert entered.is_set()
    engine.dispose()


def test_postgresql_writers_need_no_lock(backend: Backend) -> None:
    from app.store.infra.db import write_serializer_for

    serializer = write_serializer_for(backend.engine)
    with serializer():
        pass
    assert (serializer._lock_path is None) == (backend.engine.dialect.name != "sqlite")


def test_migration_0002_fills_the_name_forms_of_names_already_indexed(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from app.store.infra.db import alembic_config

    engine = create_index_engine(f"sqlite:///{tmp_path}/old.db")
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patient (pk, patient_id, issuer_of_patient_id, patient_name, patient_birth_date,"
                " patient_sex) VALUES (1, 'P1', '', 'Müller^Jürgen', '', ''), (2, 'P2', '', '', '', '')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO study (pk, study_instance_uid, patient_pk, study_date, study_time,"
                " accession_number, referring_physician_name, study_id, study_description,"
                " timezone_offset_from_utc, created_at, updated_at)"
                " VALUES (1, '1.2.3', 1, '', '', '', 'HOUSE^Gregory', '', '', '', :now, :now)"
            ),
            {"now": "2026-01-01 00:00:00"},
        )
    migrate(engine)
    with engine.connect() as connection:
        patients = connection.execute(
            text("SELECT patient_name_folded, patient_name_fuzzy FROM patient ORDER BY pk")
        ).all()
        study = connection.execute(
            text("SELECT referring_physician_name_folded, referring_physician_name_fuzzy FROM study")
        ).one()
    assert [tuple(row) for row in patients] == [("müller^jürgen", " muller jurgen "), ("", "")]
    assert tuple(study) == ("house^gregory", " house gregory ")
    engine.dispose()


def test_heads_read_from_the_scripts_are_alembics(tmp_path: Path) -> None:
    """Start-up and readiness read the heads without alembic; they must be the ones alembic migrates to."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    assert migration_heads() == frozenset(ScriptDirectory.from_config(config).get_heads())
    engine = create_index_engine(f"sqlite:///{tmp_path}/heads.db")
    with engine.connect() as connection:
        assert current_revisions(connection) == frozenset()  # no alembic_version table yet
    migrate(engine)
    with engine.connect() as connection:
        assert current_revisions(connection) == migration_heads()
        context = MigrationContext.configure(connection)
        assert current_revisions(connection) == frozenset(context.get_current_heads())
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
        assert not schema_is_current(connection)
    engine.dispose()
