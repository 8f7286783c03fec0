"""Opening the index database and bringing its schema up to date (alembic).

Why: SQLite needs a few pragmas to be a good embedded default (WAL so readers never wait for the writer,
a busy timeout so concurrent ingest threads queue instead of failing, enforced foreign keys); PostgreSQL
needs nothing special. Both get their schema only from the migrations.

Timeouts (`DatabaseTimeouts`, docs/deployment.md "Limits and timeouts"): a server's engine never waits
on the database for longer than a few seconds, so an outage is answered 503 rather than waited on.
Migrations run on an engine without a statement timeout: building an index may take long.

alembic (about 7 MB resident, with mako) is imported only to migrate: whether the schema is current
(start-up, readiness) is read from the alembic_version table and the migration scripts' revision
lines, so a server started on an up-to-date index never loads it.
"""

from __future__ import annotations

import ast
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from app.store.infra.statement_watchdog import GRACE_S, watch_round_trips

if TYPE_CHECKING:
    from alembic.config import Config


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """How long the index may take (seconds); 0 for `statement_s` means no statement timeout."""

    connect_s: int = 5  # PostgreSQL: establishing a connection (libpq counts whole seconds, at least 2)
    statement_s: float = 10.0  # PostgreSQL: one statement (server side), one round trip (client side)
    pool_s: float = 10.0  # waiting for a free connection of the pool
    sqlite_busy_s: float = 10.0  # SQLite: waiting for another process's write lock


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
        # FULL: each commit fsyncs the write-ahead log. NORMAL would survive a killed process but not a
        # power cut, and a STOW-RS answer promises the instance is durable.
        cursor.execute("PRAGMA synchronous=FULL")
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
    here = Path(__file__).resolve().parents[2]  # app/
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("alembic migrations not found (expected app/_migrations or migrations/)")


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the index schema to the newest revision."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


@cache
def migration_heads() -> frozenset[str]:
    """The newest revisions of the migration scripts: those no other script names as its parent.

    Read from each script's `revision = ...` and `down_revision = ...` literals (alembic's own format,
    migrations/script.py.mako) rather than through alembic's ScriptDirectory, which loads every script
    and mako; tests/integration/test_migrations.py checks both agree.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_directory() / "versions").glob("*.py"):
        values = _revision_literals(script)
        if "revision" in values:
            revisions.add(str(values["revision"]))
            down = values.get("down_revision")
            parents.update(down if isinstance(down, tuple | list) else [down] if down else [])
    return frozenset(revisions - parents)


def _revision_literals(script: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for statement in ast.parse(script.read_text()).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(value)
    return values


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the database is at (alembic's alembic_version table; none before the first).

    The table is looked for first, as alembic does: a failed SELECT would spoil a PostgreSQL
    transaction.
    """
    if not connection.dialect.has_table(connection, "alembic_version"):
        return frozenset()
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return frozenset(str(row) for row in rows)


def schema_is_current(connection: Connection) -> bool:
    """True when the database behind `connection` is at the newest migration (readiness)."""
    return current_revisions(connection) == migration_heads()


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is at the newest migration (start-up check when not migrating)."""
    with engine.connect() as connection:
        return schema_is_current(connection)


class SchemaOutOfDate(RuntimeError):
    """The index database is not at the newest migration and auto-migration is off."""


def prepare_index(engine: Engine, *, auto_migrate: bool) -> None:
    """Migrate an out-of-date index if `auto_migrate` (FOVEA_AUTO_MIGRATE); otherwise refuse it."""
    if auto_migrate:
        if is_up_to_date(engine):
            return  # nothing to do, and alembic stays unloaded
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
