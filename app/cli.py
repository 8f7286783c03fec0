"""The `fovea` command: serve, import, migrate, transcode, audit.

Settings come from FOVEA_* environment variables; command-line flags override them.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
import uvicorn

from app.settings import Settings

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Fovea, a DICOMweb origin server.")

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (FOVEA_DATA_DIR)", show_default=False)
]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values = {key: value for key, value in overrides.items() if value is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    base = Settings()
    return base.model_copy(update=values) if values else base


def app_from_environment() -> object:
    """ASGI app factory for uvicorn worker processes (`fovea serve --workers N`)."""
    from app.main import create_app

    return create_app(Settings())


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (FOVEA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (FOVEA_PORT)")] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[int, typer.Option(help="Server processes")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve DICOMweb on http://HOST:PORT/dicom-web."""
    from app.main import create_app
    from app.store.db import create_index_engine, migrate

    settings = _settings(data_dir, host=host, port=port)
    if workers > 1:
        # Workers read settings from the environment: pass the flags on, migrate once here.
        os.environ["FOVEA_DATA_DIR"] = str(settings.data_dir)
        if settings.migrate_at_startup:
            engine = create_index_engine(settings.resolved_database_url)
            migrate(engine)
            engine.dispose()
            os.environ["FOVEA_AUTO_MIGRATE"] = "false"
        uvicorn.run(
            "app.cli:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=log_level,
        )
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)


@cli.command()
def migrate(data_dir: DataDirOption = None) -> None:
    """Create or upgrade the index database schema (alembic)."""
    from app.store.db import create_index_engine
    from app.store.db import migrate as run_migrations

    settings = _settings(data_dir)
    engine = create_index_engine(settings.resolved_database_url)
    try:
        run_migrations(engine)
    finally:
        engine.dispose()
    typer.echo(f"index schema is up to date ({engine.url.render_as_string(hide_password=True)})")


@cli.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to import", exists=True)],
    data_dir: DataDirOption = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes")] = 0,
) -> None:
    """Store DICOM files from folders through the ingest pipeline (not over HTTP)."""
    from app.store.bulk_import import run_import

    settings = _settings(data_dir)
    summary = run_import(settings, paths, jobs=jobs or (os.cpu_count() or 1))
    raise typer.Exit(code=0 if not summary.failed else 1)


@cli.command()
def transcode(
    source: Annotated[Path, typer.Argument(help="A DICOM file, or a folder of them", exists=True)],
    destination: Annotated[Path, typer.Argument(help="Output file, or folder (same tree as SOURCE)")],
    syntax: Annotated[
        str, typer.Option("--syntax", "-s", help="Target transfer syntax: UID or keyword (HTJ2KLossless)")
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that exist")] = False,
) -> None:
    """Convert DICOM files into another transfer syntax, as WADO-RS would serve them.

    Exit status: 0 all converted (or skipped), 1 some failed, 2 bad arguments.
    """
    from app.imaging.syntaxes import find_transfer_syntax_by_name
    from app.store.batch_transcode import transcode_paths

    target = find_transfer_syntax_by_name(syntax)
    if target is None:
        typer.echo(f"unknown transfer syntax: {syntax}", err=True)
        raise typer.Exit(code=2)
    if source.is_dir() and destination.exists() and not destination.is_dir():
        typer.echo(f"{destination} is a file; a folder is converted into a folder", err=True)
        raise typer.Exit(code=2)
    summary = transcode_paths(
        source, destination, target.uid, overwrite=overwrite, report=lambda line: typer.echo(line, err=True)
    )
    typer.echo(
        f"{summary.converted} converted to {target.name} ({target.uid}), "
        f"{summary.skipped} skipped, {len(summary.failed)} failed"
    )
    raise typer.Exit(code=1 if summary.failed else 0)


class AuditFormat(StrEnum):
    JSON = "json"
    TABLE = "table"


@cli.command()
def audit(
    study: Annotated[
        str | None, typer.Option(help="Only events that touched this Study Instance UID")
    ] = None,
    principal: Annotated[
        str | None, typer.Option(help="Only this principal (key name, OIDC sub or username, token id)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time: ISO 8601 (2026-12-01T08:00Z) or an age (12h, 7d)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (same forms as --since)")] = None,
    limit: Annotated[int, typer.Option(help="The latest N matching events")] = 1000,
    output: Annotated[AuditFormat, typer.Option("--format", help="JSON lines or a table")] = AuditFormat.JSON,
    data_dir: DataDirOption = None,
) -> None:
    """Show the audit trail kept in the index database, oldest first.

    Exit status: 0 shown (even if none matched), 2 bad arguments, 1 the index cannot be read.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from app.audit.queries import AuditQuery, BadAuditQuery, find_events, parse_when
    from app.audit.table import event_table
    from app.store.db import create_index_engine

    settings = _settings(data_dir)
    try:
        query = AuditQuery(
            study=study,
            principal=principal,
            since=parse_when(since) if since else None,
            until=parse_when(until) if until else None,
            limit=limit,
        )
    except BadAuditQuery as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from exc
    engine = create_index_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            events = find_events(connection, query)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        typer.echo(f"cannot read the audit trail: {type(exc).__name__}: {reason}", err=True)
        typer.echo("(is the index migrated? run `fovea migrate`)", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()
    if output is AuditFormat.TABLE:
        typer.echo(event_table(events))
    else:
        for event in events:
            typer.echo(orjson.dumps(event).decode())


def main() -> None:
    cli()
