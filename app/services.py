"""The long-lived objects a running Fovea needs, built from settings in one place.

Why: `create_app` and `fovea import` both need an index engine, a blob store and an ingestor wired the
same way; handlers receive them through `api/deps.py`, never through module globals.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine

from app.imaging.codec_pool import CodecLimits, CodecPool
from app.metrics import watch_connection_pool
from app.readiness import ReadinessMemo
from app.settings import Settings
from app.store.caches.derivatives import DerivativeCache
from app.store.caches.frame_tables import FrameTableCache
from app.store.caches.shared import RedisDerivativeStore, SharedTier, dump_labelled, load_labelled
from app.store.infra.blobs import BlobStore
from app.store.infra.db import create_index_engine, prepare_index
from app.store.query_tags import QueryTagCache
from app.store.read.frame_source import MadeFrame, dump_made_frame, load_made_frame, made_frame_size
from app.store.upkeep.garbage import BlobCollector
from app.store.upkeep.verification_job import FixityVerifier
from app.store.write.ingest_pool import IngestPool

_P = ParamSpec("_P")
_T = TypeVar("_T")
RETRIEVAL_THREADS = 32  # blocking index lookups and blob reads (S3 waits on the network) of WADO-RS


def _retrieval_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(RETRIEVAL_THREADS, thread_name_prefix="fovea-retrieve")


def transcoded_frame_cache(
    max_mb: int, shared: RedisDerivativeStore | None = None
) -> DerivativeCache[MadeFrame]:
    tier = None
    if shared is not None:
        tier = SharedTier(shared, "transcoded-frames-shared", dump_made_frame, load_made_frame)
    return DerivativeCache(max_mb * 1_000_000, made_frame_size, name="transcoded-frames", shared=tier)


RenderedImage = tuple[bytes, str]  # an encoded rendered image, and its Fovea-Window header


def _dump_rendered_image(image: RenderedImage) -> bytes:
    body, window = image
    return dump_labelled(window, body)


def _load_rendered_image(value: bytes) -> RenderedImage:
    window, body = load_labelled(value)
    return body, window


def rendered_image_cache(
    max_mb: int, shared: RedisDerivativeStore | None = None
) -> DerivativeCache[RenderedImage]:
    tier = None
    if shared is not None:
        tier = SharedTier(shared, "rendered-images-shared", _dump_rendered_image, _load_rendered_image)
    return DerivativeCache(max_mb * 1_000_000, lambda item: len(item[0]), name="rendered-images", shared=tier)


def shared_derivative_store(settings: Settings) -> RedisDerivativeStore | None:
    """The shared derivative cache the settings name, or None (the default: each process on its own)."""
    if not settings.shared_cache_url:
        return None
    return RedisDerivativeStore(
        settings.shared_cache_url,
        settings.shared_cache_mb * 1_000_000,
        prefix=settings.shared_cache_prefix,
        timeout_s=settings.shared_cache_timeout_s,
    )


def codec_limits(settings: Settings) -> CodecLimits:
    return CodecLimits(settings.codec_memory_limit_mb * 1024 * 1024, settings.codec_timeout_s)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    ingest: IngestPool
    retrieval: ThreadPoolExecutor = field(default_factory=_retrieval_threads)
    frame_tables: FrameTableCache = field(default_factory=FrameTableCache)
    codecs: CodecPool = field(default_factory=CodecPool)
    transcoded_frames: DerivativeCache[MadeFrame] = field(default_factory=lambda: transcoded_frame_cache(256))
    rendered_images: DerivativeCache[RenderedImage] = field(default_factory=lambda: rendered_image_cache(64))
    readiness: ReadinessMemo = field(default_factory=ReadinessMemo)
    collector: BlobCollector | None = None  # started by `open_services`; stopped by `close`
    shared_cache: RedisDerivativeStore | None = None  # behind both caches above, when configured
    verifier: FixityVerifier | None = None  # started by `open_services` when FOVEA_VERIFY_INTERVAL_S is set
    query_tags: QueryTagCache = field(init=False)  # the searchable extended query tags

    def __post_init__(self) -> None:
        self.query_tags = QueryTagCache(self.engine)

    async def run_blocking(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking retrieval step in the retrieval threads and wait for it.

        Why not Starlette's `run_in_threadpool`: a plain executor hand-off costs about half a
        millisecond less per request (no capacity limiter or context copy), a quarter of a frame's time.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.retrieval, lambda: function(*args, **kwargs))

    def close(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        if self.verifier is not None:
            self.verifier.stop()
        self.ingest.close()
        self.retrieval.shutdown(wait=False, cancel_futures=True)
        self.codecs.close()
        self.engine.dispose()
        if self.shared_cache is not None:
            self.shared_cache.close()


def open_services(settings: Settings) -> Services:
    """Open the index (migrating it when the settings say so), the blob store and the ingest workers,
    and start collecting garbage in the background: what a crash left, then due deferred deletions."""
    engine = create_index_engine(settings.resolved_database_url, settings.database_timeouts())
    watch_connection_pool(engine)
    try:
        prepare_index(engine, auto_migrate=settings.migrate_at_startup)
        target = settings.ingest_target()
        blobs = target.open_blob_store()
    except BaseException:
        engine.dispose()
        raise
    collector = None
    if settings.gc_interval_s > 0:  # else `fovea gc` (a cron job) does it
        collector = BlobCollector(
            engine,
            blobs,
            orphan_grace_s=settings.orphan_grace_s,
            interval_s=settings.gc_interval_s,
            rejected_after_days=settings.rejected_delete_after_days,
            blob_deletion_grace_s=settings.blob_deletion_grace_s,
        )
    shared = shared_derivative_store(settings)
    verifier = None
    if settings.verify_interval_s > 0:  # else `fovea verify` (a cron job) does it
        verifier = FixityVerifier(
            engine,
            blobs,
            interval_s=settings.verify_interval_s,
            bytes_per_s=settings.verify_rate_bytes_per_s,
        )
    services = Services(
        settings=settings,
        engine=engine,
        blobs=blobs,
        collector=collector,
        verifier=verifier,
        ingest=IngestPool(
            target,
            settings.ingest_workers or os.cpu_count() or 1,
            inline_bytes=settings.ingest_inline_bytes,
        ),
        codecs=CodecPool(settings.codec_workers, codec_limits(settings)),
        transcoded_frames=transcoded_frame_cache(settings.transcode_cache_mb, shared),
        rendered_images=rendered_image_cache(settings.rendered_cache_mb, shared),
        shared_cache=shared,
    )
    if collector is not None:
        collector.start()
    if verifier is not None:
        verifier.start()
    return services
