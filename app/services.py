"""The long-lived objects a running Fovea needs, built from settings in one place.

Why: `create_app` and `fovea import` both need an index engine, a blob store and an ingestor wired the
same way; handlers receive them through `api/deps.py`, never through module globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine

from app.settings import Settings
from app.store.blobs import BlobStore
from app.store.db import create_index_engine, prepare_index
from app.store.ingest_pool import IngestPool, IngestTarget


@dataclass
class Services:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    ingest: IngestPool

    def close(self) -> None:
        self.ingest.close()
        self.engine.dispose()


def open_services(settings: Settings) -> Services:
    """Open the index (migrating it when the settings say so), the blob store and the ingest workers."""
    engine = create_index_engine(settings.resolved_database_url)
    try:
        prepare_index(engine, settings)
        target = IngestTarget.from_settings(settings)
        blobs = target.open_blob_store()
    except BaseException:
        engine.dispose()
        raise
    return Services(
        settings=settings,
        engine=engine,
        blobs=blobs,
        ingest=IngestPool(target, settings.ingest_workers or os.cpu_count() or 1),
    )
