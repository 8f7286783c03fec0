"""The `fovea` command: serve, import, migrate, transcode, gc, verify, audit, export, api-key,
query-tags, share, config check.

Settings come from FOVEA_* environment variables; command-line flags override them. A bad setting is one
line naming the variable, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from app import __version__
from app.log_setup import configure_logging
from app.settings import Settings
from app.settings_check import SettingsError, effective_settings, load_settings, unknown_variables
from app.tracing import missing_tracing_packages

if TYPE_CHECKING:
    from sqlalchemy import Engine

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets and patient data
    help="Fovea, a DICOMweb origin server.",
)
config_cli = typer.Typer(no_args_is_help=True, help="Inspect the settings in force.")
cli.add_typer(config_cli, name="config")

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (FOVEA_DATA_DIR)", show_default=False)
]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    return load_settings(data_dir=data_dir, **overrides)


def _print_version(*, value: bool) -> None:
    if value:
        typer.echo(f"fovea {__version__}")
        raise typer.Exit()


@cli.callback()
def _startup(
    *,
    version: Annotated[  # noqa: ARG001 (acted on by its eager callback)
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit"),
    ] = False,
) -> None:
    """Fovea, a DICOMweb origin server."""
    for warning in unknown_variables():
        typer.echo(f"fovea: warning: {warning}", err=True)


def app_from_environment() -> object:
    """ASGI app factory for uvicorn worker processes (`fovea serve --workers N`)."""
    from app.main import create_app

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


def _fresh_metrics_directory(data_dir: Path) -> Path:
    """An empty folder where each worker process writes its metrics, so /metrics counts them all."""
    folder = (data_dir / ".metrics" / str(os.getpid())).resolve()
    shutil.rmtree(data_dir / ".metrics", ignore_errors=True)  # left by earlier runs: stale values
    folder.mkdir(parents=True)
    return folder


def _exit_after_terminate(_signal: int, _frame: object) -> None:
    raise SystemExit(0)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (FOVEA_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (FOVEA_PORT)")] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[int, typer.Option(help="Server processes")] = 1,
    log_level: Annotated[str | None, typer.Option(help="Least severe level logged (FOVEA_LOG_LEVEL)")] = None,
) -> None:
    """Serve DICOMweb on http://HOST:PORT/dicom-web."""
    import uvicorn  # here, not at the top: the other commands start without the server's modules

    from app.main import create_app
    from app.metrics import MULTIPROCESS_DIRECTORY
    from app.security.startup import startup_refusal
    from app.store.infra.db import create_index_engine, migrate

    settings = _settings(data_dir, host=host, port=port, log_level=log_level)
    refusal = startup_refusal(settings) or (missing_tracing_packages() if settings.otel_enabled else None)
    if refusal:
        typer.echo(refusal, err=True)
        raise typer.Exit(code=2)
    configure_logging(settings.log_format, settings.log_level)
    # uvicorn re-raises SIGTERM once it has shut down; ending by SystemExit instead runs the exit
    # handlers, so the log lines still queued are written.
    signal.signal(signal.SIGTERM, _exit_after_terminate)
    # X-Forwarded-* (the client address included) are judged by Fovea's own trusted-proxy list.
    proxy_options: dict[str, object] = {"proxy_headers": False}
    if workers > 1:
        # Workers read settings from the environment: pass the flags on, migrate once here.
        os.environ["FOVEA_DATA_DIR"] = str(settings.data_dir)
        os.environ[MULTIPROCESS_DIRECTORY] = str(_fresh_metrics_directory(settings.data_dir))
        os.environ["FOVEA_LOG_LEVEL"] = settings.log_level
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
            log_config=None,  # configure_logging did it (and does it again in each worker)
            log_level=settings.log_level,
            access_log=False,  # one line per request comes from Fovea's own middleware
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            **proxy_options,  # type: ignore[arg-type]
        )
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        **proxy_options,  # type: ignore[arg-type]
    )


@cli.command()
def migrate(data_dir: DataDirOption = None) -> None:
    """Create or upgrade the index database schema (alembic)."""
    from app.store.infra.db import create_index_engine
    from app.store.infra.db import migrate as run_migrations

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
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Worker processes (small files: up to 4 threads)")
    ] = 0,
) -> None:
    """Store DICOM files from folders through the ingest pipeline (not over HTTP)."""
    from rich.console import Console

    from app.cli_progress import ImportProgress, print_import_summary

    settings = _settings(data_dir)
    console = Console(stderr=True)
    with ImportProgress(console) as progress:  # drawn before the ingest modules are even loaded
        # Configured once the line is live: on a terminal, records then print above it (rich
        # redirects stderr meanwhile) rather than through it. In the worker processes too.
        configure_logging(settings.log_format, settings.log_level)
        from app.store.tools.bulk_import import run_import

        summary = run_import(
            settings.ingest_target(),
            paths,
            jobs=jobs or (os.cpu_count() or 1),
            inline_bytes=settings.ingest_inline_bytes,
            auto_migrate=settings.migrate_at_startup,
            on_event=progress,
        )
    print_import_summary(console, summary)
    raise typer.Exit(code=0 if not summary.failed else 1)


@cli.command()
def transcode(
    source: Annotated[Path, typer.Argument(help="A DICOM file, or a folder of them", exists=True)],
    destination: Annotated[Path, typer.Argument(help="Output file, or folder (same tree as SOURCE)")],
    syntax: Annotated[
        str, typer.Option("--syntax", "-s", help="Target transfer syntax: UID or keyword (HTJ2KLossless)")
    ],
    *,
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that exist")] = False,
) -> None:
    """Convert DICOM files into another transfer syntax, as WADO-RS would serve them.

    Exit status: 0 all converted (or skipped), 1 some failed, 2 bad arguments.
    """
    from app.cli_progress import transcode_report
    from app.imaging.syntaxes import TRANSFER_SYNTAXES, find_transfer_syntax_by_name
    from app.store.tools.batch_transcode import transcode_paths

    target = find_transfer_syntax_by_name(syntax)
    if target is None:
        known = ", ".join(ts.keyword for ts in TRANSFER_SYNTAXES if not ts.is_video)
        typer.echo(f"unknown transfer syntax: {syntax} (use a UID or one of: {known})", err=True)
        raise typer.Exit(code=2)
    if source.is_dir() and destination.exists() and not destination.is_dir():
        typer.echo(f"{destination} is a file; a folder is converted into a folder", err=True)
        raise typer.Exit(code=2)
    summary = transcode_paths(source, destination, target.uid, overwrite=overwrite, on_event=transcode_report)
    typer.echo(
        f"{summary.converted} converted to {target.name} ({target.uid}), "
        f"{summary.skipped} skipped, {len(summary.failed)} failed"
    )
    raise typer.Exit(code=1 if summary.failed else 0)


@config_cli.command("check")
def config_check(data_dir: DataDirOption = None) -> None:
    """Print the settings in force (FOVEA_* variables and defaults, secrets masked).

    Exit status: 0 the settings are usable, 2 a setting is not (one line each on stderr).
    """
    settings = _settings(data_dir)
    for name, value in effective_settings(settings):
        typer.echo(f"{name}={value}")


@cli.command()
def gc(
    data_dir: DataDirOption = None,
    *,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would go; remove nothing")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object, not text lines")] = False,
) -> None:
    """Remove blobs whose deferred deletion is due, orphan blobs and spool leftovers; report them.

    Safe while servers run: see "Crash consistency and garbage collection" in docs/deployment.md.
    Exit status 1 when the index or the blob store fails (what was removed until then stays removed;
    running it again carries on).
    """
    import orjson
    from sqlalchemy.exc import SQLAlchemyError

    from app.store.infra.db import create_index_engine, prepare_index
    from app.store.upkeep.garbage import collect_garbage

    settings = _settings(data_dir)
    engine = create_index_engine(settings.resolved_database_url)
    try:
        prepare_index(engine, auto_migrate=settings.migrate_at_startup)
        blobs = settings.ingest_target().open_blob_store()
        report = collect_garbage(engine, blobs, orphan_grace_s=settings.orphan_grace_s, dry_run=dry_run)
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"garbage collection failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()
    if json_output:
        typer.echo(orjson.dumps(report.as_dict()).decode())
    else:
        for line in report.lines():
            typer.echo(line)


@cli.command()
def verify(
    study: Annotated[str | None, typer.Option(help="Only this study (Study Instance UID)")] = None,
    sample: Annotated[
        str | None, typer.Option(help="A random share of the instances: 1% (a percentage)")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only instances stored since: ISO 8601 (2026-12-01) or an age (7d, 12h)"),
    ] = None,
    rate: Annotated[
        int, typer.Option(help="Read at most this many bytes per second (0: no limit)", min=0)
    ] = 0,
    data_dir: DataDirOption = None,
) -> None:
    """Re-read stored files and compare their size and SHA-256 with the index; report what is wrong.

    stdout: one JSON line per corrupt, missing, unreadable or orphaned file, then a summary line.
    Corrupt and missing instances are flagged in the index (WADO-RS answers 410 Gone for them).
    Orphans are looked for only when every instance is checked (no --study, --since or --sample).
    Exit status: 0 every file intact, 1 problems found, 2 bad arguments, 3 the check could not run.
    """
    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from app.audit.queries import BadAuditQuery, parse_when
    from app.cli_progress import VerifyProgress
    from app.dicomweb.uids import is_valid_uid
    from app.store.infra.db import create_index_engine, prepare_index
    from app.store.tools.verify_run import run_verify, summary_lines
    from app.store.upkeep.verification import Selection

    try:
        if study is not None and not is_valid_uid(study):
            raise ValueError(f"--study {study!r} is not a UID")
        selection = Selection(
            study_instance_uid=study,
            since=parse_when(since) if since is not None else None,
            sample_percent=_percentage(sample) if sample is not None else None,
        )
    except (BadAuditQuery, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    settings = _settings(data_dir)
    engine = create_index_engine(settings.resolved_database_url)
    try:
        prepare_index(engine, auto_migrate=settings.migrate_at_startup)
        blobs = settings.ingest_target().open_blob_store()
        grace_s = settings.orphan_grace_s
        with VerifyProgress(Console(stderr=True)) as progress:
            tally = run_verify(
                engine,
                blobs,
                selection,
                orphan_grace_s=grace_s,
                bytes_per_s=rate,
                emit=print,
                on_event=progress,
            )
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"verification failed: {exc}", err=True)
        raise typer.Exit(code=3) from exc
    finally:
        engine.dispose()
    for line in summary_lines(tally):
        typer.echo(line, err=True)
    raise typer.Exit(code=1 if tally.problems else 0)


def _percentage(text: str) -> float:
    """`1%`, `0.5%` or `25` (a percentage, above 0 and at most 100)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if not 0 < value <= 100:
        raise ValueError(f"--sample {text!r}: a percentage above 0 and at most 100, such as 1%")
    return value


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
    from app.store.infra.db import create_index_engine

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


class ExportFormatOption(StrEnum):
    DICOM = "dicom"
    PNG = "png"
    TIFF = "tiff"
    PDF = "pdf"


class DeidentifyProfile(StrEnum):
    BASIC = "basic"  # PS3.15 Annex E Basic Profile, with the FOVEA_DEID_* options


def _parse_window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not CENTER,WIDTH (e.g. 40,400)") from None
    if width <= 0:
        raise typer.BadParameter("the window width must be positive")
    return center, width


@cli.command()
def export(
    study_uids: Annotated[
        list[str], typer.Argument(help="Study Instance UIDs to export", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if needed)", show_default=False)],
    deidentify: Annotated[
        DeidentifyProfile | None,
        typer.Option("--deidentify", help="De-identify (PS3.15 Annex E; options from FOVEA_DEID_*)"),
    ] = None,
    output_format: Annotated[
        ExportFormatOption, typer.Option("--format", help="Part 10 files, or images")
    ] = ExportFormatOption.DICOM,
    window: Annotated[
        str | None, typer.Option("--window", help="PNG: CENTER,WIDTH instead of each image's stored window")
    ] = None,
    slices: Annotated[
        str, typer.Option("--slices", help="PDF: key slices of each series, by Image Position")
    ] = "25%,50%,75%",
    *,
    include_burned_in: Annotated[
        bool,
        typer.Option(
            "--include-burned-in", help="De-identified: also instances with Burned In Annotation YES"
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Write stored studies to a folder: Part 10 files (default), PNG, TIFF or a PDF report of key
    slices per study; de-identified on request.

    Each file's SHA-256 goes into the audit trail and OUT/SHA256SUMS. Exit status: 0 all written,
    1 some instances could not be written, 2 bad arguments or studies not stored (nothing written).
    """
    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from app.audit.trail import open_audit_trail
    from app.dicomweb.uids import is_valid_uid
    from app.imaging.display import Window
    from app.lifecycle.export import ExportError, ExportFormat, ExportOptions, export_studies, find_studies
    from app.lifecycle.export_pdf import SliceSpecError, parse_slices
    from app.lifecycle.export_progress import export_progress
    from app.store.infra.db import create_index_engine, prepare_index

    settings = _settings(data_dir)
    bad = [uid for uid in study_uids if not is_valid_uid(uid)]
    if bad:
        typer.echo(f"not a UID: {', '.join(bad)}", err=True)
        raise typer.Exit(code=2)
    chosen_window = Window(*_parse_window(window)) if window else None
    try:
        key_slices = parse_slices(slices)
    except SliceSpecError as exc:
        typer.echo(f"--slices: {exc}", err=True)
        raise typer.Exit(code=2) from None
    deidentifier = None
    if deidentify is not None:
        deidentifier = settings.deidentifier()
        if deidentifier is None:
            typer.echo(
                "de-identification needs FOVEA_DEID_SECRET (32+ characters): it keys the new UIDs", err=True
            )
            raise typer.Exit(code=2)
    options = ExportOptions(
        output=out,
        image_format=ExportFormat(output_format.value),
        deidentifier=deidentifier,
        window=chosen_window,
        include_burned_in=include_burned_in,
        slices=key_slices,
    )
    console = Console(stderr=True)
    engine = create_index_engine(settings.resolved_database_url)
    trail = open_audit_trail(settings.audit_log, engine if settings.audit_db else None, settings.audit_syslog)
    try:
        prepare_index(engine, auto_migrate=settings.migrate_at_startup)
        studies = find_studies(engine, study_uids)
        blobs = settings.ingest_target().open_blob_store()
        total = sum(instance.blob_size for instances in studies.values() for instance in instances)
        with export_progress(console, total) as advance:
            summary = export_studies(studies, blobs, options, trail, advance=advance)
    except ExportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from exc
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"export failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        trail.flush()
        trail.close()
        engine.dispose()
    for uid, reason in summary.failed:
        typer.echo(f"not written: {uid}: {reason}", err=True)
    withheld = f", {summary.withheld} withheld (burned-in annotation)" if summary.withheld else ""
    typer.echo(
        f"{summary.files} files, {summary.bytes_written:,} bytes written to {out} from "
        f"{len(summary.studies)} studies{withheld}; {len(summary.failed)} instances failed"
    )
    raise typer.Exit(code=1 if summary.failed else 0)


api_key_cli = typer.Typer(no_args_is_help=True, help="API keys for machine clients (index database).")
cli.add_typer(api_key_cli, name="api-key")


@contextmanager
def _index(data_dir: Path | None) -> Iterator[Engine]:
    """The index `fovea serve` would use, migrated first where serve would migrate it."""
    from app.store.infra.db import create_index_engine, is_up_to_date
    from app.store.infra.db import migrate as run_migrations

    settings = _settings(data_dir)
    engine = create_index_engine(settings.resolved_database_url)
    try:
        if settings.migrate_at_startup:
            run_migrations(engine)
        elif not is_up_to_date(engine):
            typer.echo("the index schema is not up to date: run `fovea migrate` first", err=True)
            raise typer.Exit(code=2)
        yield engine
    finally:
        engine.dispose()


@api_key_cli.command("create")
def api_key_create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key (unique)")],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: dicom.read,dicom.write,...")],
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime: 90d, 12h, 2w")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and only its hash is stored."""
    from app.security.api_keys import ApiKeyError, create_api_key, parse_scopes
    from app.security.durations import parse_duration

    try:
        granted = parse_scopes(scopes)
        lifetime = parse_duration(expires) if expires else None
        with _index(data_dir) as engine:
            record, key = create_api_key(engine, name, granted, lifetime)
    except (ApiKeyError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    until = record.expires_at.isoformat(timespec="seconds") if record.expires_at else "never"
    typer.echo(
        f"API key {record.name!r} ({record.key_id}), scopes {' '.join(sorted(record.scopes))}, "
        f"expires {until}. Store it now; it cannot be shown again:"
    )
    typer.echo(key)


@api_key_cli.command("list")
def api_key_list(data_dir: DataDirOption = None) -> None:
    """Every key: name, key id, scopes, created, expires, state (never the key)."""
    from app.security.api_keys import list_api_keys

    with _index(data_dir) as engine:
        records = list_api_keys(engine)
    now = datetime.now(UTC)
    for record in records:
        state = "revoked" if record.revoked_at else "active" if record.usable_at(now) else "expired"
        until = record.expires_at.isoformat(timespec="seconds") if record.expires_at else "never"
        typer.echo(
            f"{record.name}\t{record.key_id}\t{','.join(sorted(record.scopes))}\t"
            f"created {record.created_at.isoformat(timespec='seconds')}\texpires {until}\t{state}"
        )


@api_key_cli.command("revoke")
def api_key_revoke(
    name: Annotated[str, typer.Argument(help="The key's name")], data_dir: DataDirOption = None
) -> None:
    """Revoke a key: every Fovea process refuses it within a second."""
    from app.security.api_keys import ApiKeyError, revoke_api_key

    try:
        with _index(data_dir) as engine:
            revoke_api_key(engine, name)
    except ApiKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"API key {name!r} revoked")


query_tags_cli = typer.Typer(no_args_is_help=True, help="Extended query tags: more QIDO-RS matching keys.")
cli.add_typer(query_tags_cli, name="query-tags")


@query_tags_cli.command("add")
def query_tags_add(
    attribute: Annotated[str, typer.Argument(help="Keyword or tag: PatientWeight, 00101030, (0009,1010)")],
    level: Annotated[str, typer.Option("--level", help="study, series or instance")] = "instance",
    vr: Annotated[str | None, typer.Option("--vr", help="Needed for a private attribute")] = None,
    private_creator: Annotated[
        str | None, typer.Option("--private-creator", help="The private creator of a private attribute")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Declare an attribute matchable in QIDO-RS and index it in every stored instance (resumable)."""
    from rich.progress import Progress

    from app.store.query_tags import QueryTagError, backfill, declare, parse_declaration

    try:
        declaration = parse_declaration(attribute, level, vr, private_creator)
        with _index(data_dir) as engine:
            key = declare(engine, declaration)
            with Progress(transient=True) as progress:
                task = progress.add_task(f"indexing {key.name}", total=key.instances_total or None)
                key = backfill(
                    engine, key, lambda done, total: progress.update(task, completed=done, total=total)
                )
    except QueryTagError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"{key.name} ({key.key.vr}) is a {key.key.level} matching key; {key.instances_done} instances indexed"
    )


@query_tags_cli.command("list")
def query_tags_list(data_dir: DataDirOption = None) -> None:
    """Every declared tag: tag, keyword, private creator, VR, level, state, instances indexed."""
    from app.store.query_tags import declared_tags

    with _index(data_dir) as engine, engine.connect() as connection:
        keys = declared_tags(connection)
    for key in keys:
        d = key.describe()
        typer.echo(
            f"{d['tag']}\t{d['keyword'] or '-'}\t{d['privateCreator'] or '-'}\t{d['vr']}\t{d['level']}\t"
            f"{d['state']}\t{d['instancesDone']}/{d['instancesTotal']}"
        )


@query_tags_cli.command("remove")
def query_tags_remove(
    attribute: Annotated[str, typer.Argument(help="The tag's keyword or tag")], data_dir: DataDirOption = None
) -> None:
    """Forget a tag and drop its index; QIDO-RS refuses it as a matching key again."""
    from app.store.query_tags import QueryTagError, remove

    try:
        with _index(data_dir) as engine:
            removed = remove(engine, attribute)
    except QueryTagError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    if not removed:
        typer.echo(f"{attribute} is not an extended query tag", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"{attribute} removed")


@cli.command()
def share(
    study_instance_uid: Annotated[str, typer.Argument(help="The study to share")],
    expires: Annotated[str, typer.Option("--expires", help="Lifetime: 1h, 7d")] = "1h",
    *,
    deidentified: Annotated[
        bool,
        typer.Option(
            "--deidentified", help="Read the de-identified rendition only (FOVEA_DEID_*), under new UIDs"
        ),
    ] = False,
) -> None:
    """Print a token that reads one study only (a share link's ?token=), alone on the last line."""
    from app.dicomweb.uids import is_valid_uid
    from app.security.durations import parse_duration
    from app.security.share_tokens import ShareSecretMissing, issue_share_token

    settings = _settings()
    try:
        if not is_valid_uid(study_instance_uid):
            raise ValueError(f"{study_instance_uid!r} is not a UID")
        lifetime = parse_duration(expires)
        shared_uid, key = study_instance_uid, None
        if deidentified:
            rendition = settings.rendition()
            if rendition is None:
                raise ValueError(
                    "--deidentified needs FOVEA_DEID_SECRET (32+ characters): it keys the new UIDs"
                )
            shared_uid, key = rendition.replacement_uid(study_instance_uid), _study_key(study_instance_uid)
        issued = issue_share_token(
            settings.share_secret_list, shared_uid, lifetime, deidentified=deidentified, study_key=key
        )
    except (ShareSecretMissing, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    until = issued.expires_at.isoformat(timespec="seconds")
    if deidentified:
        typer.echo(
            f"de-identified read-only access to study {study_instance_uid} as "
            f"/dicom-web/deidentified/studies/{issued.study_uid} until {until} (token id {issued.token_id}):"
        )
    else:
        typer.echo(
            f"read-only access to study {issued.study_uid} until {until} (token id {issued.token_id}):"
        )
    typer.echo(issued.token)


def _study_key(study_instance_uid: str) -> int:
    """The stored study's index key (a de-identified token's hint); ValueError when it is not stored."""
    from app.store.read.rendition_index import study_key

    with _index(None) as engine, engine.connect() as connection:
        key = study_key(connection, study_instance_uid)
    if key is None:
        raise ValueError(f"study {study_instance_uid} is not stored")
    return key


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        for line in exc.lines:
            print(f"fovea: {line}", file=sys.stderr)
        raise SystemExit(2) from None
