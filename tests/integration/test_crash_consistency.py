"""Crash consistency, proven by crashing: `fovea serve` killed with SIGKILL during a concurrent STOW-RS
load, again and again, and checked after every restart.

After each restart: every instance acknowledged before the kill (a 200 or 202 naming it in the
Referenced SOP Sequence) is retrievable bit for bit; nothing half-stored is visible (every instance a
search finds is retrievable whole, and the search finds exactly what the index holds); and after
garbage collection no blob is left that the index does not account for, nor any spool file.

`FOVEA_CRASH_KILLS` sets the number of kills (10 here; `make crash-test` runs more) and
`FOVEA_CRASH_BACKENDS` the back ends (comma-separated, e.g. `sqlite-file,postgres-s3`).
"""

from __future__ import annotations

import io
import os
import random
import threading
from collections import defaultdict
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from app.store.tables import BlobDeletion, Instance
from app.store.upkeep.garbage import collect_garbage
from tests.conftest import Backend
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.server_processes import ServerProcess, running_server, start_server
from tests.integration.stow_helpers import index_counts
from tests.integration.test_wado_instances import ANY_SYNTAX, multipart_parts

KILLS = int(os.environ.get("FOVEA_CRASH_KILLS", "10"))
CRASH_BACKENDS = os.environ.get("FOVEA_CRASH_BACKENDS", "sqlite-file").split(",")
CLIENTS = 3
REFERENCED, SOP_INSTANCE = "00081199", "00081155"
STUDY, SOP = "0020000D", "00080018"


class Acknowledged:
    """Instances the server said it stored, with the bytes sent, filled in by the load threads."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def record(self, response: httpx.Response, sent: dict[str, bytes]) -> None:
        if response.status_code not in (200, 202):
            return
        for item in response.json().get(REFERENCED, {}).get("Value", []):
            sop = item[SOP_INSTANCE]["Value"][0]
            with self._lock:
                self.files[sop] = sent[sop]


def store_until_killed(server: ServerProcess, acknowledged: Acknowledged, seed: int) -> None:
    """Post studies of two instances, one after another, until the server stops answering."""
    rng = random.Random(seed)
    with httpx.Client(timeout=30) as client:
        while True:
            study = generate_uid()
            sent: dict[str, bytes] = {}
            for _ in range(2):
                sop = generate_uid()
                sent[sop] = make_instance(
                    study_uid=study, sop_uid=sop, rows=32, columns=32, seed=rng.randrange(1 << 30)
                )
            try:
                response = client.post(
                    f"{server.dicomweb}/studies",
                    content=multipart_body(list(sent.values())),
                    headers={"Content-Type": stow_content_type()},
                )
            except httpx.TransportError:
                return  # killed while this request was in flight: not acknowledged
            acknowledged.record(response, sent)


def check_consistency(server: ServerProcess, backend: Backend, acknowledged: Acknowledged) -> None:
    with httpx.Client(timeout=60) as client:
        found = client.get(f"{server.dicomweb}/instances", params={"limit": "100000"})
        assert found.status_code in (200, 204)
        results = found.json() if found.status_code == 200 else []
        by_study: dict[str, set[str]] = defaultdict(set)
        for result in results:
            by_study[result[STUDY]["Value"][0]].add(result[SOP]["Value"][0])
        retrieved: dict[str, bytes] = {}
        for study, sops in by_study.items():
            response = client.get(f"{server.dicomweb}/studies/{study}", headers={"Accept": ANY_SYNTAX})
            assert response.status_code == 200, response.text
            bodies = [body for _, body in multipart_parts(response)]
            parts = {pydicom.dcmread(io.BytesIO(body)).SOPInstanceUID: body for body in bodies}
            assert set(parts) == sops  # every instance the search shows comes back whole
            retrieved.update(parts)
    assert index_counts(backend).instances == len(results) == len(retrieved)
    missing = set(acknowledged.files) - set(retrieved)
    assert missing == set(), f"{len(missing)} acknowledged instances lost"
    for sop, data in acknowledged.files.items():
        assert retrieved[sop] == data, f"{sop} differs from what was acknowledged"


def check_no_orphans_after_gc(backend: Backend) -> None:
    # The server is idle now, so nothing is between publishing and indexing: no grace is needed.
    collect_garbage(backend.engine, backend.blobs, orphan_grace_s=0)
    with backend.engine.connect() as connection:
        referenced = set(connection.execute(select(Instance.blob_key)).scalars())
        referenced |= {k for k in connection.execute(select(Instance.data_blob_key)).scalars() if k}
        pending = set(connection.execute(select(BlobDeletion.blob_key)).scalars())
    keys = backend.blob_keys()
    assert keys - referenced - pending == set(), "orphan blobs left after garbage collection"
    assert referenced <= keys
    assert backend.spool_files() == []


@pytest.mark.parametrize("backend", CRASH_BACKENDS, indirect=True)
def test_sigkill_during_concurrent_stow_loses_nothing_acknowledged(backend: Backend, tmp_path: Path) -> None:
    settings = backend.settings(ingest_workers=1, codec_workers=1)
    log = tmp_path / "server.log"
    acknowledged = Acknowledged()
    timing = random.Random(20261203)
    for kill in range(KILLS):
        server = start_server(settings, log)
        try:
            check_consistency(server, backend, acknowledged)
            check_no_orphans_after_gc(backend)
            clients = [
                threading.Thread(target=store_until_killed, args=(server, acknowledged, kill * CLIENTS + n))
                for n in range(CLIENTS)
            ]
            for thread in clients:
                thread.start()
            threading.Event().wait(timing.uniform(0.3, 1.5))
        finally:
            server.kill()
        for thread in clients:
            thread.join(timeout=60)
    with running_server(settings, log) as server:
        check_consistency(server, backend, acknowledged)
        check_no_orphans_after_gc(backend)
    assert len(acknowledged.files) >= KILLS  # the load did store things between the kills


@pytest.mark.parametrize("backend", CRASH_BACKENDS, indirect=True)
def test_sigkill_right_after_the_answer_keeps_a_group_committed_request(
    backend: Backend, tmp_path: Path
) -> None:
    """The instances of one request share one index commit (store/write/group_commit.py): killed the
    moment the answer is read, every instance it acknowledged is there after the restart."""
    settings = backend.settings(ingest_workers=1, codec_workers=1)
    log = tmp_path / "server.log"
    acknowledged = Acknowledged()
    study = generate_uid()
    sent: dict[str, bytes] = {}
    for seed in range(8):
        sop = generate_uid()
        sent[sop] = make_instance(study_uid=study, sop_uid=sop, rows=32, columns=32, seed=seed)
    server = start_server(settings, log)
    try:
        response = httpx.post(
            f"{server.dicomweb}/studies",
            content=multipart_body(list(sent.values())),
            headers={"Content-Type": stow_content_type()},
            timeout=60,
        )
    finally:
        server.kill()
    assert response.status_code == 200, response.text
    acknowledged.record(response, sent)
    assert set(acknowledged.files) == set(sent)
    with running_server(settings, log) as server:
        check_consistency(server, backend, acknowledged)
        check_no_orphans_after_gc(backend)
