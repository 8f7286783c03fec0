"""Replacing an instance while other clients read it, across two server processes: no read fails.

Two `fovea serve` processes share one index and blob store (SQLite + folder; PostgreSQL + S3). One
client replaces an instance twelve times, alternating servers, while three others read it every way a
viewer does (single frames, frame lists, pixel data, the whole instance, metadata) from both. Every read
must be 200 and hold exactly one stored version, whole: never a mix, never a 5xx.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import Backend
from tests.dicom_files import (
    InstanceUIDs,
    make_instance,
    multipart_body,
    new_instance_uids,
    stow_content_type,
)
from tests.integration.server_processes import ServerProcess, running_server
from tests.integration.test_wado_instances import ANY_SYNTAX, multipart_parts, read

REPLACEMENTS = 12
FRAMES = 4
OCTET = "application/octet-stream"
OCTET_PARTS = f'multipart/related; type="{OCTET}"'


class Versions:
    """Every version stored under one SOP Instance UID: its bytes and its frames' native pixels."""

    def __init__(self, uids: InstanceUIDs) -> None:
        self.files = [make_instance(**uids, frames=FRAMES, seed=seed) for seed in range(REPLACEMENTS + 1)]
        self.frames = [
            [np.ascontiguousarray(frame).astype("<i2").tobytes() for frame in read(data).pixel_array]
            for data in self.files
        ]

    def holds_file(self, body: bytes) -> bool:
        return body in self.files

    def holds_frames(self, numbers: list[int], bodies: list[bytes]) -> bool:
        """True when the frames all come from one version (a mix would be a torn read)."""
        return any([frames[n - 1] for n in numbers] == bodies for frames in self.frames)


def store(server: ServerProcess, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.dicomweb}/studies",
        content=multipart_body([data]),
        headers={"Content-Type": stow_content_type()},
        timeout=60,
    )


Read = Callable[[httpx.Client, str], str | None]  # (client, instance URL) -> a problem, or None


def read_single_frame(client: httpx.Client, url: str, versions: Versions) -> str | None:
    response = client.get(f"{url}/frames/2", headers={"Accept": OCTET})
    if response.status_code != 200:
        return f"frame 2: {response.status_code} {response.text[:300]}"
    return None if versions.holds_frames([2], [response.content]) else "frame 2: bytes of no version"


def read_frame_list(client: httpx.Client, url: str, versions: Versions) -> str | None:
    response = client.get(f"{url}/frames/1,3,4", headers={"Accept": OCTET_PARTS})
    if response.status_code != 200:
        return f"frames 1,3,4: {response.status_code} {response.text[:300]}"
    bodies = [body for _, body in multipart_parts(response)]
    return None if versions.holds_frames([1, 3, 4], bodies) else "frames 1,3,4: torn or unknown"


def read_pixeldata(client: httpx.Client, url: str, versions: Versions) -> str | None:
    response = client.get(f"{url}/pixeldata", headers={"Accept": OCTET_PARTS})
    if response.status_code != 200:
        return f"pixeldata: {response.status_code} {response.text[:300]}"
    bodies = [body for _, body in multipart_parts(response)]
    return None if versions.holds_frames([1, 2, 3, 4], bodies) else "pixeldata: torn or unknown"


def read_instance(client: httpx.Client, url: str, versions: Versions) -> str | None:
    response = client.get(url, headers={"Accept": ANY_SYNTAX})
    if response.status_code != 200:
        return f"instance: {response.status_code} {response.text[:300]}"
    [(_, body)] = multipart_parts(response)
    return None if versions.holds_file(body) else "instance: bytes of no version"


def read_metadata(client: httpx.Client, url: str, _versions: Versions) -> str | None:
    response = client.get(f"{url}/metadata")
    if response.status_code != 200 or len(response.json()) != 1:
        return f"metadata: {response.status_code} {response.text[:300]}"
    return None


READS = (read_single_frame, read_frame_list, read_pixeldata, read_instance, read_metadata)


@pytest.mark.parametrize(
    ("backend", "grace_s"),
    [
        pytest.param("sqlite-file", 300, id="sqlite-file"),
        pytest.param("postgres-s3", 300, id="postgres-s3"),
        # no grace at all, old blobs deleted as fast as possible: the re-resolving reads alone
        pytest.param("sqlite-file", 0, id="sqlite-file-no-grace"),
    ],
    indirect=["backend"],
)
def test_replacing_while_two_processes_serve_reads_fails_no_read(
    backend: Backend, grace_s: float, tmp_path: Path
) -> None:
    uids = new_instance_uids()
    versions = Versions(uids)
    settings = backend.settings(
        ingest_workers=1, codec_workers=1, blob_deletion_grace_s=grace_s, gc_interval_s=0.05
    )
    log = tmp_path / "servers.log"
    with running_server(settings, log) as first, running_server(settings, log) as second:
        servers = (first, second)
        assert store(first, versions.files[0]).status_code == 200
        path = f"/studies/{uids['study_uid']}/series/{uids['series_uid']}/instances/{uids['sop_uid']}"
        writing_done = threading.Event()
        problems: list[str] = []
        counts = [0]
        lock = threading.Lock()

        def reader(offset: int) -> None:
            with httpx.Client(timeout=60) as client:
                for turn in itertools.count(offset):
                    if writing_done.is_set() and turn - offset >= len(READS) * 2:
                        return
                    server = servers[turn % 2]
                    problem = READS[turn % len(READS)](client, server.dicomweb + path, versions)
                    with lock:
                        counts[0] += 1
                        if problem is not None:
                            problems.append(f"{server.base_url}: {problem}")

        readers = [threading.Thread(target=reader, args=(offset,)) for offset in range(3)]
        for thread in readers:
            thread.start()
        try:
            for seed in range(1, REPLACEMENTS + 1):
                response = store(servers[seed % 2], versions.files[seed])
                assert response.status_code == 202, response.text  # 202: replaced (warning B100)
        finally:
            writing_done.set()
            for thread in readers:
                thread.join(timeout=120)

        assert problems == []
        assert counts[0] >= 50  # reads overlapped the replacements (about 80 to 450 here)
        final = httpx.get(f"{first.dicomweb}{path}", headers={"Accept": ANY_SYNTAX}, timeout=60)
        assert multipart_parts(final)[0][1] == versions.files[-1]
