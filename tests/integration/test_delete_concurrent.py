"""Deleting while other clients read, across two server processes: every read is a whole 200 or a 404.

Two `fovea serve` processes share one index and blob store (SQLite + folder; PostgreSQL + S3). One client
deletes a study piece by piece (instances one at a time, then a series, then the rest of the study),
alternating servers, while three others read it every way a viewer does (frames, whole instances,
metadata, searches) from both. No read may be a 5xx or hold bytes of the wrong instance; once everything
is deleted, everything is 404 on both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.conftest import Backend
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.server_processes import ServerProcess, running_server
from tests.integration.test_wado_instances import ANY_SYNTAX, multipart_parts, read

SERIES = 3
PER_SERIES = 3
OCTET = "application/octet-stream"


class Study:
    """A study of SERIES series of PER_SERIES instances (two frames each), with what each holds."""

    def __init__(self) -> None:
        self.uid = generate_uid()
        self.series = [generate_uid() for _ in range(SERIES)]
        self.instances: list[tuple[str, str]] = []  # (series, sop)
        self.files: dict[str, bytes] = {}
        self.frames: dict[str, bytes] = {}  # frame 1, native little-endian
        for index, series in enumerate(self.series):
            for number in range(PER_SERIES):
                sop = generate_uid()
                data = make_instance(
                    study_uid=self.uid,
                    series_uid=series,
                    sop_uid=sop,
                    frames=2,
                    rows=16,
                    columns=16,
                    seed=index * PER_SERIES + number,
                )
                self.instances.append((series, sop))
                self.files[sop] = data
                self.frames[sop] = np.ascontiguousarray(read(data).pixel_array[0]).astype("<i2").tobytes()

    def instance_path(self, series: str, sop: str) -> str:
        return f"/studies/{self.uid}/series/{series}/instances/{sop}"


Read = Callable[[httpx.Client, str, Study, int], str | None]  # a problem, or None


def read_frame(client: httpx.Client, base: str, study: Study, turn: int) -> str | None:
    series, sop = study.instances[turn % len(study.instances)]
    response = client.get(f"{base}{study.instance_path(series, sop)}/frames/1", headers={"Accept": OCTET})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        return f"frame: {response.status_code} {response.text[:300]}"
    return None if response.content == study.frames[sop] else "frame: bytes of another instance"


def read_instance(client: httpx.Client, base: str, study: Study, turn: int) -> str | None:
    series, sop = study.instances[turn % len(study.instances)]
    response = client.get(f"{base}{study.instance_path(series, sop)}", headers={"Accept": ANY_SYNTAX})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        return f"instance: {response.status_code} {response.text[:300]}"
    [(_, body)] = multipart_parts(response)
    return None if body == study.files[sop] else "instance: bytes of another instance"


def read_series_metadata(client: httpx.Client, base: str, study: Study, turn: int) -> str | None:
    series = study.series[turn % SERIES]
    response = client.get(f"{base}/studies/{study.uid}/series/{series}/metadata")
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        return f"metadata: {response.status_code} {response.text[:300]}"
    found = {item["00080018"]["Value"][0] for item in response.json()}
    expected = {sop for owner, sop in study.instances if owner == series}
    return None if found <= expected else "metadata: instances of another series"


def search_instances(client: httpx.Client, base: str, study: Study, _turn: int) -> str | None:
    response = client.get(f"{base}/studies/{study.uid}/instances")
    if response.status_code != 200:
        return f"search: {response.status_code} {response.text[:300]}"
    found = {item["00080018"]["Value"][0] for item in response.json()}
    return None if found <= set(study.files) else "search: unknown instances"


READS: tuple[Read, ...] = (read_frame, read_instance, read_series_metadata, search_instances, read_frame)


def delete(server: ServerProcess, path: str) -> int:
    return httpx.delete(f"{server.dicomweb}{path}", timeout=60).status_code


@pytest.mark.parametrize(
    ("backend", "grace_s"),
    [
        pytest.param("sqlite-file", 300, id="sqlite-file"),
        pytest.param("postgres-s3", 300, id="postgres-s3"),
        # blobs removed as fast as the collector runs: the reads' own re-lookups alone keep them whole
        pytest.param("sqlite-file", 0, id="sqlite-file-no-grace"),
    ],
    indirect=["backend"],
)
def test_reads_during_deletions_are_whole_or_404(backend: Backend, grace_s: float, tmp_path: Path) -> None:
    study = Study()
    settings = backend.settings(
        ingest_workers=1, codec_workers=1, blob_deletion_grace_s=grace_s, gc_interval_s=0.05
    )
    log = tmp_path / "servers.log"
    with running_server(settings, log) as first, running_server(settings, log) as second:
        servers = (first, second)
        stored = httpx.post(
            f"{first.dicomweb}/studies",
            content=multipart_body(list(study.files.values())),
            headers={"Content-Type": stow_content_type()},
            timeout=60,
        )
        assert stored.status_code == 200, stored.text
        deleting_done = threading.Event()
        problems: list[str] = []
        counts = [0]
        lock = threading.Lock()

        def reader(offset: int) -> None:
            with httpx.Client(timeout=60) as client:
                for turn in itertools.count(offset):
                    if deleting_done.is_set() and turn - offset >= len(READS) * 2:
                        return
                    server = servers[turn % 2]
                    problem = READS[turn % len(READS)](client, server.dicomweb, study, turn // 2)
                    with lock:
                        counts[0] += 1
                        if problem is not None:
                            problems.append(f"{server.base_url}: {problem}")

        readers = [threading.Thread(target=reader, args=(offset,)) for offset in range(3)]
        for thread in readers:
            thread.start()
        try:
            turns = itertools.count()
            first_series = study.series[0]
            for series, sop in study.instances[:PER_SERIES]:  # one instance at a time
                assert delete(servers[next(turns) % 2], study.instance_path(series, sop)) == 204
            assert delete(servers[next(turns) % 2], f"/studies/{study.uid}/series/{first_series}") == 404
            assert delete(servers[next(turns) % 2], f"/studies/{study.uid}/series/{study.series[1]}") == 204
            assert delete(servers[next(turns) % 2], f"/studies/{study.uid}") == 204
        finally:
            deleting_done.set()
            for thread in readers:
                thread.join(timeout=120)

        assert problems == []
        assert counts[0] >= 30  # reads overlapped the deletions
        with httpx.Client(timeout=60) as client:
            for server in servers:
                for turn in range(len(study.instances)):
                    series, sop = study.instances[turn]
                    url = f"{server.dicomweb}{study.instance_path(series, sop)}"
                    assert client.get(f"{url}/frames/1", headers={"Accept": OCTET}).status_code == 404
                    assert client.get(url, headers={"Accept": ANY_SYNTAX}).status_code == 404
                assert client.get(f"{server.dicomweb}/studies/{study.uid}/instances").json() == []
