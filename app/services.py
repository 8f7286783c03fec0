"""The long-lived objects a running Fovea needs, built from settings in one place.

Why: `create_app` and `fovea import` both need an index engine, a blob store and an ingestor wired the
same way; handlers receive them through `api/deps.py`, never through module globals.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from app.settings import Settings
from app.store.blobs import BlobStore, open_blob_store
from app.store.db import create_index_engine, is_up_to_date, migrate
from app.store.ingest import Ingestor


class SchemaOutOfDate(RuntimeError):
    """The index database is not at the newest migration and auto-migration is off."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    ingestor: Ingestor
    ingest_pool: ThreadPoolExecutor

    def close(self) -> None:
        self.ingest_pool.shutdown(wait=True)
        self.engine.dispose()


def open_blob_store_from(settings: Settings) -> BlobStore:
    return open_blob_store(
        settings.resolved_storage_url,
        spool_directory=(settings.data_dir / "spool").resolve(),
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=settings.s3_secret_access_key,
    )


def open_services(settings: Settings) -> Services:
    """Open the index (migrating it when the settings say so) and the blob store."""
    engine = create_index_engine(settings.resolved_database_url)
    try:
        if settings.migrate_at_startup:
            migrate(engine)
        elif not is_up_to_date(engine):
            raise SchemaOutOfDate(
                "the index database schema is not up to date: run `fovea migrate` "
                "(or set FOVEA_AUTO_MIGRATE=true)"
            )
        blobs = open_blob_store_from(settings)
    except BaseException:
        engine.dispose()
        raise
    return Services(
        settings=settings,
        engine=engine,
        blobs=blobs,
        ingestor=Ingestor(engine, blobs, settings.duplicate_policy),
        ingest_pool=ThreadPoolExecutor(
            max_workers=max(1, settings.ingest_workers), thread_name_prefix="ingest"
        ),
    )
