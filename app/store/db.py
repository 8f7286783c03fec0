"""Opening the index database and bringing its schema up to date (alembic).

Why: SQLite needs a few pragmas to be a good embedded default (WAL so readers never wait for the writer,
a busy timeout so concurrent ingest threads queue instead of failing, enforced foreign keys); PostgreSQL
needs nothing special. Both get their schema only from the migrations.

Timeouts (`DatabaseTimeouts`, docs/deployment.md "Limits and timeouts"): a server's engine never waits
on the database for longer than a few seconds, so an outage is answered 503 rather than waited on.
Migrations run on an engine without a statement timeout: building an index may take long.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from app.settings import Settings
from app.store.statement_watchdog import GRACE_S, watch_round_trips


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """How long the index may take (seconds); 0 for `statement_s` means no statement timeout."""

    connect_s: int = 5  # PostgreSQL: establishing a connection (libpq counts whole seconds, at least 2)
    statement_s: float = 10.0  # PostgreSQL: one statement (server side), one round trip (client side)
    pool_s: float = 10.0  # waiting for a free connection of the pool
    sqlite_busy_s: float = 10.0  # SQLite: waiting for another process's write lock

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseTimeouts:
        return cls(
            connect_s=settings.database_connect_timeout_s,
            statement_s=settings.database_statement_timeout_s,
            pool_s=settings.database_pool_timeout_s,
            sqlite_busy_s=settings.sqlite_busy_timeout_s,
        )


MIGRATION_TIMEOUTS = DatabaseTimeouts(statement_s=0)


def create_index_engine(url: str | URL, timeouts: DatabaseTimeouts = MIGRATION_TIMEOUTS) -> Engine:
    """An engine for the index at `url` with `timeouts`, and the SQLite pragmas on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _postgresql_engine(parsed, timeouts)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    busy_s = timeouts.sqlite_busy_s
    engine = create_engine(
        parsed, connect_args={"check_same_thread": False, "timeout": busy_s}, pool_timeout=timeouts.pool_s
    )

    @event.listens_for(engine, "connect")
    def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
        cursor.close()

    return engine


def _postgresql_engine(url: URL, timeouts: DatabaseTimeouts) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": timeouts.connect_s}
    if timeouts.statement_s > 0:
        # Sent in the startup packet, so a new connection needs no extra round trip; libpq `options`
        # already in the URL (a search_path, say) are kept.
        milliseconds = int(timeouts.statement_s * 1000)
        given = url.query.get("options", "")
        given = given if isinstance(given, str) else " ".join(given)
        connect_args["options"] = f"{given} -c statement_timeout={milliseconds}".strip()
    engine = create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=timeouts.pool_s,
    )
    if timeouts.statement_s > 0:
        watch_round_trips(engine, timeouts.statement_s + GRACE_S)
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


@cache
def _migration_heads() -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def schema_is_current(connection: Connection) -> bool:
    """True when the database behind `connection` is at the newest migration (readiness)."""
    return set(MigrationContext.configure(connection).get_current_heads()) == _migration_heads()


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
        migration_engine = create_index_engine(engine.url)  # no statement timeout
        try:
            migrate(migration_engine)
        finally:
            migration_engine.dispose()
    elif not is_up_to_date(engine):
        raise SchemaOutOfDate(
            "the index database schema is not up to date: "
            "run `fovea migrate` (or set FOVEA_AUTO_MIGRATE=true)"
        )
