"""Opening the index database and bringing its schema up to date (alembic).

Why: SQLite needs a few pragmas to be a good embedded default (WAL so readers never wait for the writer,
a busy timeout so concurrent ingest threads queue instead of failing, enforced foreign keys); PostgreSQL
needs nothing special. Both get their schema only from the migrations.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from app.settings import Settings


def create_index_engine(url: str) -> Engine:
    """An engine for the index at `url`, with the SQLite pragmas applied on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    return engine


class WriteSerializer:
    """One index writer at a time across threads and processes, for SQLite only.

    Why: SQLite admits one writer; others wait in its busy handler, which sleeps in steps of several
    milliseconds and wastes most of a short ingest transaction. An exclusive `flock` on a file next to the
    database hands the turn over the moment it is released. PostgreSQL needs nothing: it locks rows.
    """

    def __init__(self, lock_path: Path | None) -> None:
        self._lock_path = lock_path
        self._thread_lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._fd: int | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        with self._thread_lock:
            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def write_serializer_for(engine: Engine) -> WriteSerializer:
    """The serializer for `engine`: a lock file beside a SQLite database, nothing otherwise."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return WriteSerializer(None)
    return WriteSerializer(Path(f"{database}.write-lock"))


def migrations_directory() -> Path:
    """The alembic scripts: packaged inside `app` in a wheel, at the repository root in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("alembic migrations not found (expected app/_migrations or migrations/)")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the index schema to the newest revision."""
    command.upgrade(alembic_config(engine), "head")


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is at the newest migration (start-up check when not migrating)."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(script.get_heads())


class SchemaOutOfDate(RuntimeError):
    """The index database is not at the newest migration and auto-migration is off."""


def prepare_index(engine: Engine, settings: Settings) -> None:
    """Migrate the index when the settings say so; otherwise refuse an out-of-date schema."""
    if settings.migrate_at_startup:
        migrate(engine)
    elif not is_up_to_date(engine):
        raise SchemaOutOfDate(
            "the index database schema is not up to date: "
            "run `fovea migrate` (or set FOVEA_AUTO_MIGRATE=true)"
        )
