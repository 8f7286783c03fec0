"""Outages are answered, not waited on: the object store or the database stops answering mid-service.

The real moto server (S3) and the real PostgreSQL sit behind a pausable TCP proxy (pausable_proxy.py):
paused, it accepts connections and swallows everything (a black hole); refusing, it closes them. Fovea
runs with timeouts of about a second. While the part is down, every route that needs it answers 503
with Retry-After and a one-line JSON reason, within a generous bound of its timeouts; routes that do
not need it go on working; /livez answers within a second throughout; STOW stores nothing half; and
once the part is back, everything answers again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import create_engine, text

from app.imaging.codec_pool import CodecPool
from app.settings import Settings
from app.store.infra.db import DatabaseTimeouts, create_index_engine, migrate
from tests.conftest import POSTGRES_URL, Backend, LiveServer, _postgres_available, start_live_server
from tests.dicom_files import make_instance
from tests.integration.pausable_proxy import PausableProxy, running_proxy
from tests.integration.stow_helpers import index_counts, post_stow

RETRY_AFTER = "7"
TIMEOUTS: dict[str, object] = {
    "s3_connect_timeout_s": 1.0,
    "s3_read_timeout_s": 1.0,
    "s3_max_attempts": 1,
    "database_connect_timeout_s": 2,  # libpq's least
    "database_statement_timeout_s": 1.0,
    "database_pool_timeout_s": 2.0,
    "readiness_timeout_s": 1.0,
    "retry_after_s": int(RETRY_AFTER),
}
# Generous: a request may meet a timeout or two (a pooled connection's ping, then a new connection).
ANSWER_BOUND_S = 15.0
LIVEZ_BOUND_S = 1.0


@dataclass
class TimedBackend(Backend):
    """A back end whose settings carry the short timeouts (the blob store opened with them too)."""

    overrides: dict[str, object] = field(default_factory=dict)

    def settings(self, **overrides: object) -> Settings:
        return super().settings(**{**self.overrides, **overrides})


class LivezWatch:
    """Asks /livez every 0.2 s in a thread, and remembers the slowest answer (or a failure)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.slowest = 0.0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LivezWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(0.2):
                started = time.monotonic()
                try:
                    response = client.get(f"{self.base_url}/livez")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                took = time.monotonic() - started
                self.slowest = max(self.slowest, took)
                if took >= LIVEZ_BOUND_S:
                    self.failures.append(f"/livez took {took:.2f} s")
                if response.status_code != 200 or response.json()["status"] != "alive":
                    self.failures.append(f"{response.status_code} {response.text}")


@dataclass(frozen=True)
class Stored:
    study: str
    series: str
    sop: str


def store_one(server: LiveServer) -> Stored:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    response = post_stow(server, [make_instance(study_uid=study, series_uid=series, sop_uid=sop)])
    assert response.status_code == 200, response.text
    return Stored(study, series, sop)


def requests_for(server: LiveServer, stored: Stored) -> dict[str, Callable[[], httpx.Response]]:
    base = server.dicomweb
    instance = f"{base}/studies/{stored.study}/series/{stored.series}/instances/{stored.sop}"

    def get(url: str, **kwargs: Any) -> Callable[[], httpx.Response]:
        return lambda: httpx.get(url, timeout=60, **kwargs)

    return {
        "search studies": get(f"{base}/studies", params={"StudyInstanceUID": stored.study}),
        "search instances": get(f"{base}/instances"),
        "metadata": get(f"{base}/studies/{stored.study}/metadata"),
        "frames": get(
            f"{instance}/frames/1", headers={"Accept": "multipart/related; type=application/octet-stream"}
        ),
        "instance": get(instance, headers={"Accept": "application/dicom"}),
        "study": get(f"{base}/studies/{stored.study}"),
        "pixel data": get(f"{instance}/pixeldata"),
        "rendered": get(f"{instance}/rendered", headers={"Accept": "image/png"}),
        "thumbnail": get(f"{instance}/thumbnail", headers={"Accept": "image/jpeg"}),
        # Several parts: each worker gives up on its share after the first outage, not once per part
        "store": lambda: post_stow(server, [make_instance(study_uid=stored.study, seed=i) for i in range(6)]),
        "readiness": get(f"{server.base_url}/readyz"),
        "health": get(f"{server.base_url}/health"),
    }


def answer_all(requests: dict[str, Callable[[], httpx.Response]]) -> dict[str, tuple[httpx.Response, float]]:
    """Send every request at once; each answer with the seconds it took."""

    def timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = send()
        return response, time.monotonic() - started

    with ThreadPoolExecutor(len(requests)) as threads:
        futures = {name: threads.submit(timed, send) for name, send in requests.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_unavailable(name: str, response: httpx.Response, seconds: float, reason_part: str) -> None:
    assert response.status_code == 503, f"{name}: {response.status_code} {response.text[:300]}"
    assert seconds < ANSWER_BOUND_S, f"{name} took {seconds:.1f} s"
    assert response.headers["retry-after"] == RETRY_AFTER, (name, response.text)
    assert response.headers["content-type"] == "application/json", name
    body = response.json()
    if name in ("readiness", "health"):
        assert body["status"] == "unavailable" and body["problems"], name
    else:
        assert body["status"] == 503, name
        reason = body["error"].removeprefix("nothing stored: ") if name == "store" else body["error"]
        assert reason_part in reason and "\n" not in reason, (name, body)


def wait_until_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.base_url}/readyz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "Fovea did not become ready again"
        time.sleep(0.5)


def assert_all_answer(server: LiveServer, stored: Stored) -> None:
    for name, (response, _) in answer_all(requests_for(server, stored)).items():
        assert response.status_code == 200, (
            f"{name} after recovery: {response.status_code} {response.text[:300]}"
        )


# -- the object store --------------------------------------------------------------------------------


@pytest.fixture
def s3_behind_proxy(moto_endpoint: str) -> Iterator[tuple[PausableProxy, str]]:
    endpoint = urlparse(moto_endpoint)
    bucket = f"fovea-outage-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    with running_proxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80) as proxy:
        yield proxy, bucket


def test_paused_object_store_is_answered_503_and_recovers(
    s3_behind_proxy: tuple[PausableProxy, str], tmp_path: Path, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    proxy, bucket = s3_behind_proxy
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate(engine)
    backend = TimedBackend(
        "sqlite-s3", engine, f"s3://{bucket}", tmp_path / "data", f"http://127.0.0.1:{proxy.port}", TIMEOUTS
    )
    with start_live_server(backend, worker_pool, codec_pool) as server:
        stored = store_one(server)  # also warms up: the first request of a session starts the workers
        counts = index_counts(backend)
        with LivezWatch(server.base_url) as livez:
            proxy.pause()
            answers = answer_all(requests_for(server, stored))

            for name in ("search studies", "search instances", "metadata"):  # the index alone: unaffected
                assert answers[name][0].status_code == 200, name
            for name in (
                "frames",
                "instance",
                "study",
                "pixel data",
                "rendered",
                "thumbnail",
                "store",
                "readiness",
                "health",
            ):
                assert_unavailable(name, *answers[name], reason_part="blob store unavailable: ")
            assert answers["store"][0].json()["error"].startswith("nothing stored: blob store unavailable: ")
            assert answers["readiness"][0].json()["problems"].keys() == {"blobs"}
            assert index_counts(backend) == counts  # the refused STOW indexed nothing
            assert backend.spool_files() == []

            proxy.resume()
            wait_until_ready(server)
            assert_all_answer(server, stored)
    engine.dispose()
    assert livez.failures == []  # every answer 200 "alive", each within LIVEZ_BOUND_S


# -- the database ------------------------------------------------------------------------------------


@pytest.fixture
def throwaway_database() -> Iterator[str]:
    """A database of its own on the shared PostgreSQL (never the test schema), dropped afterwards."""
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    name = f"fovea_outage_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_stopped_database_is_answered_503_and_recovers(
    throwaway_database: str, tmp_path: Path, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    direct = f"postgresql+psycopg://postgres@127.0.0.1:5432/{throwaway_database}"
    migration_engine = create_index_engine(direct)
    migrate(migration_engine)
    migration_engine.dispose()
    with running_proxy("127.0.0.1", 5432) as proxy:
        proxied = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{throwaway_database}"
        engine = create_index_engine(proxied, DatabaseTimeouts(connect_s=2, statement_s=1.0, pool_s=2.0))
        backend = TimedBackend(
            "postgres-file", engine, str(tmp_path / "blobs"), tmp_path / "data", None, TIMEOUTS
        )
        with start_live_server(backend, worker_pool, codec_pool) as server:
            store_one(server)  # warms up: the first request of a session starts the workers
            with LivezWatch(server.base_url) as livez:
                for outage in (proxy.pause, proxy.refuse):  # stalled, then stopped
                    # A fresh instance: one asked for already may be served from the frame-table cache
                    stored = store_one(server)
                    keys = backend.blob_keys()
                    outage()
                    answers = answer_all(requests_for(server, stored))
                    for name, (response, seconds) in answers.items():
                        assert_unavailable(name, response, seconds, reason_part="index database")
                    assert (
                        answers["store"][0]
                        .json()["error"]
                        .startswith("nothing stored: index database unavailable")
                    )
                    assert answers["readiness"][0].json()["problems"].keys() == {"index"}
                    assert backend.blob_keys() == keys  # the refused STOW left no blob behind
                    assert backend.spool_files() == []

                    proxy.resume()
                    wait_until_ready(server)
                    assert_all_answer(server, stored)
        engine.dispose()
    assert livez.failures == []  # every answer 200 "alive", each within LIVEZ_BOUND_S
