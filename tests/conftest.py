"""Fixtures: every index back end x every blob store, and a live Fovea on a loopback port.

The same tests run on SQLite and PostgreSQL (127.0.0.1:5432, user postgres, database test; skipped with
a message when no server answers) and on a folder and S3 (moto's server mode over real HTTP).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from app.imaging.codec_pool import CodecPool
from app.main import create_app
from app.services import Services, transcoded_frame_cache
from app.settings import Settings
from app.store.caches.shared import RedisDerivativeStore
from app.store.infra.blobs import BlobStore, FileBlobStore
from app.store.infra.db import create_index_engine, migrate
from app.store.infra.s3_blobs import S3BlobStore
from app.store.infra.spool import LOCK_NAME
from app.store.policies import DuplicatePolicy
from app.store.tables import Base
from app.store.write.ingest import Ingestor
from app.store.write.ingest_pool import IngestPool, start_worker_pool

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"  # the shared derivative cache
INDEXES = ("sqlite", "postgres")
BLOB_STORES = ("file", "s3")
BACKENDS = [f"{index}-{blobs}" for index in INDEXES for blobs in BLOB_STORES]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except OperationalError as exc:
        return f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc.orig}); PostgreSQL tests skipped"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database, migrated, dropped after the session."""
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    schema = f"fovea_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in server mode, spoken to over real HTTP."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test alone in the Redis at 127.0.0.1:6379, its keys removed afterwards;
    skipped with a message when no Redis answers."""
    name = f"fovea-test-{uuid.uuid4().hex[:12]}"
    store = RedisDerivativeStore(REDIS_URL, 1, prefix=name)
    try:
        store.client.ping()
    except Exception as exc:
        store.close()
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379 ({exc}); shared cache tests skipped")
    try:
        yield name
    finally:
        store.clear()
        store.close()


_ENGINES: dict[str, Engine] = {}


def _engine_for(index: str, request: pytest.FixtureRequest, tmp_root: Path) -> Engine:
    if index not in _ENGINES:
        if index == "sqlite":
            url = f"sqlite:///{tmp_root / 'index.db'}"
        else:
            url = request.getfixturevalue("postgres_url")
        engine = create_index_engine(url)
        migrate(engine)
        _ENGINES[index] = engine
    return _ENGINES[index]


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fovea-session")


@pytest.fixture(scope="session", autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def _clear_index(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@dataclass
class Backend:
    """One index + blob store combination, emptied before each test."""

    name: str
    engine: Engine
    storage_url: str
    data_dir: Path
    s3_endpoint: str | None = None
    blobs: BlobStore = field(init=False)

    def __post_init__(self) -> None:
        self.blobs = self.settings().ingest_target().open_blob_store()

    @property
    def database_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": self.data_dir,
            "database_url": self.database_url,
            "storage_url": self.storage_url,
            "s3_endpoint_url": self.s3_endpoint,
            "s3_access_key_id": "testing" if self.s3_endpoint else None,
            "s3_secret_access_key": "testing" if self.s3_endpoint else None,
            "auto_migrate": False,
            "readiness_cache_s": 0.0,  # outage tests expect each probe to look afresh
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def ingestor(self, policy: DuplicatePolicy = DuplicatePolicy.REPLACE) -> Ingestor:
        return Ingestor(self.engine, self.blobs, policy)

    def blob_keys(self) -> set[str]:
        """Every key that holds a blob right now (what a leak or a half-write would show)."""
        if isinstance(self.blobs, FileBlobStore):
            root = self.blobs.root
            return {
                p.relative_to(root).as_posix()
                for p in root.rglob("*")
                if p.is_file() and ".spool" not in p.parts
            }
        assert isinstance(self.blobs, S3BlobStore)
        listing = self.blobs.client.list_objects_v2(Bucket=self.blobs.bucket)
        return {item["Key"] for item in listing.get("Contents", [])}

    def spool_files(self) -> list[Path]:
        """Files left in the spool (every process's folder), not counting the folders' lock files."""
        root = self.blobs.spool_root
        return [p for p in root.rglob("*") if p.is_file() and p.name != LOCK_NAME]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, session_dir: Path, tmp_path: Path) -> Backend:
    index, store = request.param.split("-")
    engine = _engine_for(index, request, session_dir)
    _clear_index(engine)
    data_dir = tmp_path / "data"
    endpoint = None
    if store == "file":
        storage_url = str(data_dir / "blobs")
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"fovea-{uuid.uuid4().hex[:16]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        storage_url = f"s3://{bucket}"
    return Backend(request.param, engine, storage_url, data_dir, endpoint)


@pytest.fixture(scope="session")
def worker_pool() -> Iterator[Executor]:
    """One set of ingest worker processes for the whole session (forking per test costs ~0.3 s)."""
    pool = start_worker_pool(2)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def codec_pool() -> Iterator[CodecPool]:
    """One set of codec workers for the whole session, like the ingest workers."""
    pool = CodecPool(2)
    try:
        yield pool
    finally:
        pool.close()


@dataclass
class LiveServer:
    base_url: str  # http://127.0.0.1:PORT
    services: Services

    @property
    def dicomweb(self) -> str:
        return f"{self.base_url}/dicom-web"


@contextmanager
def start_live_server(
    backend: Backend, pool: Executor, codecs: CodecPool | None = None, **overrides: object
) -> Iterator[LiveServer]:
    # The tests' own client plays the reverse proxy (X-Forwarded-* from loopback are honoured), as
    # uvicorn's default does; tests of untrusted peers pass trusted_proxies="".
    overrides.setdefault("trusted_proxies", "127.0.0.1")
    settings = backend.settings(**overrides)
    services = Services(
        settings=settings,
        engine=backend.engine,
        blobs=backend.blobs,
        ingest=IngestPool(settings.ingest_target(), workers=2, executor=pool),
        codecs=codecs or CodecPool(2),
        transcoded_frames=transcoded_frame_cache(settings.transcode_cache_mb),
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=False,  # as `fovea serve`: Fovea's trusted-proxy list judges X-Forwarded-*
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.ingest.close()
        services.retrieval.shutdown(wait=False, cancel_futures=True)
        if codecs is None:
            services.codecs.close()


@pytest.fixture
def live_server(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[LiveServer]:
    with start_live_server(backend, worker_pool, codec_pool) as server:
        yield server
