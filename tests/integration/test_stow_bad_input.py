"""STOW-RS with bad input: the right PS3.18 status and failure entry, and a consistent store.

Each test first stores a "bystander" instance and checks afterwards that its bytes, rows and blob are
untouched, that no new blob or index row appeared for the bad input, and that no spooled file is left.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import Executor

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.stow_helpers import (
    IndexCounts,
    index_counts,
    items,
    post_stow,
    stored_bytes,
    stored_instance,
    value_of,
)

FAILED, REFERENCED = "00081198", "00081199"
SOP_INSTANCE, FAILURE_REASON, ERROR_COMMENT = "00081155", "00081197", "00000902"


class Bystander:
    """An instance stored before the bad request, which must come through it unchanged."""

    def __init__(self, server: LiveServer, backend: Backend) -> None:
        self.backend = backend
        self.sop = generate_uid()
        self.data = make_instance(sop_uid=self.sop, seed=99)
        assert post_stow(server, [self.data]).status_code == 200
        self.keys = backend.blob_keys()
        self.counts = index_counts(backend)

    def assert_untouched(self, *, added: IndexCounts | None = None) -> None:
        assert stored_bytes(self.backend, self.sop) == self.data
        counts = index_counts(self.backend)
        if added is None:
            assert counts == self.counts
            assert self.backend.blob_keys() == self.keys
        else:
            assert counts.instances == self.counts.instances + added.instances
        assert self.backend.spool_files() == []


@pytest.fixture
def bystander(live_server: LiveServer, backend: Backend) -> Bystander:
    return Bystander(live_server, backend)


def only_failure(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert REFERENCED not in body
    [failure] = items(body, FAILED)
    return failure


def test_part_that_is_not_dicom_fails_with_cannot_understand(
    live_server: LiveServer, bystander: Bystander
) -> None:
    response = post_stow(live_server, [b"%PDF-1.4 this is not a DICOM file" * 20])
    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == 0xC000
    assert "not a DICOM Part 10 file" in value_of(failure, ERROR_COMMENT)
    bystander.assert_untouched()


def test_bad_part_among_good_ones_is_202(live_server: LiveServer, bystander: Bystander) -> None:
    good = make_instance()
    response = post_stow(live_server, [good, b"garbage" * 100])
    assert response.status_code == 202
    body = response.json()
    assert len(items(body, REFERENCED)) == 1
    assert value_of(items(body, FAILED)[0], FAILURE_REASON) == 0xC000
    bystander.assert_untouched(added=IndexCounts(0, 0, 1, 0))


@pytest.mark.parametrize("keep", [300, 0.5, 0.999], ids=["in-header", "mid-pixels", "last-byte"])
def test_truncated_file_is_refused_and_not_stored(
    live_server: LiveServer, bystander: Bystander, keep: float
) -> None:
    sop = generate_uid()
    data = make_instance(sop_uid=sop, rows=128, columns=128)
    cut = int(keep) if keep > 1 else int(len(data) * keep)
    response = post_stow(live_server, [data[:cut]])
    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == 0xC000
    if keep < 1:  # header intact: the failure names the instance
        assert value_of(failure, SOP_INSTANCE) == sop
        assert "truncated" in value_of(failure, ERROR_COMMENT)
    assert stored_instance(bystander.backend, sop) is None
    bystander.assert_untouched()


def test_missing_sop_instance_uid_is_refused(live_server: LiveServer, bystander: Bystander) -> None:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(make_instance()))
    del ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    response = post_stow(live_server, [buffer.getvalue()])
    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == 0xA900
    assert value_of(failure, ERROR_COMMENT) == "SOPInstanceUID is missing"
    bystander.assert_untouched()


@pytest.mark.parametrize(
    "bad_uid",
    ["../../../etc/passwd", "1.2.3/../../4", "1.2.abc", "1..2", "1.02.3", "1.2." + "3" * 70],
)
def test_illegal_uids_are_refused(live_server: LiveServer, bystander: Bystander, bad_uid: str) -> None:
    response = post_stow(live_server, [make_instance(sop_uid=bad_uid)])
    assert response.status_code == 400
    failure = only_failure(response)
    assert value_of(failure, FAILURE_REASON) == 0xA900
    assert "is not a valid UID" in value_of(failure, ERROR_COMMENT)
    bystander.assert_untouched()
    backend = bystander.backend
    assert not any("etc" in key or "passwd" in key for key in backend.blob_keys())


@pytest.mark.parametrize("bad_uid", ["1.2.abc", "..", "1.2.3%2F..%2F"])
def test_illegal_study_uid_in_url_is_400(live_server: LiveServer, bystander: Bystander, bad_uid: str) -> None:
    response = post_stow(live_server, [make_instance()], study=bad_uid)
    # ".." may be normalised away by the client: POST /dicom-web/, a resource that answers only OPTIONS
    assert response.status_code in (400, 404, 405)
    bystander.assert_untouched()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/dicom",
        'multipart/related; type="application/octet-stream"; boundary=x',
        "multipart/form-data; boundary=x",
    ],
)
def test_wrong_content_type_is_415(live_server: LiveServer, bystander: Bystander, content_type: str) -> None:
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=multipart_body([make_instance()], "x"),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 415
    assert "application/dicom" in response.json()["error"]
    bystander.assert_untouched()


def test_multipart_without_boundary_is_400(live_server: LiveServer, bystander: Bystander) -> None:
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=b"--x\r\n\r\n",
        headers={"Content-Type": 'multipart/related; type="application/dicom"'},
    )
    assert response.status_code == 400
    bystander.assert_untouched()


def test_body_over_limit_is_413_and_server_keeps_serving(backend: Backend, worker_pool: Executor) -> None:
    with start_live_server(backend, worker_pool, max_request_bytes=200_000) as server:
        bystander = Bystander(server, backend)
        big = make_instance(rows=512, columns=512)  # 512 KiB of pixels

        declared = post_stow(server, [big])
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while streaming
            body = multipart_body([big])
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        try:
            streamed = httpx.post(
                f"{server.dicomweb}/studies",
                content=chunks(),
                headers={"Content-Type": stow_content_type()},
            )
            assert streamed.status_code == 413
        except httpx.RemoteProtocolError:
            pass  # the server may close the connection after answering 413 mid-upload
        bystander.assert_untouched()
        assert post_stow(server, [make_instance()]).status_code == 200  # still serving


def test_part_over_instance_limit_fails_alone(backend: Backend, worker_pool: Executor) -> None:
    with start_live_server(backend, worker_pool, max_instance_bytes=100_000) as server:
        bystander = Bystander(server, backend)
        response = post_stow(server, [make_instance(rows=512, columns=512), make_instance()])
        assert response.status_code == 202
        [failure] = items(response.json(), FAILED)
        assert value_of(failure, FAILURE_REASON) == 0xA700
        bystander.assert_untouched(added=IndexCounts(0, 0, 1, 0))


@pytest.mark.parametrize(
    "cut", [0.3, 0.7, 0.9999], ids=["in-first-part", "in-second-part", "before-closing-boundary"]
)
def test_body_cut_off_mid_part_stores_nothing(
    live_server: LiveServer, bystander: Bystander, cut: float
) -> None:
    body = multipart_body([make_instance(rows=128, columns=128, seed=s) for s in range(2)])
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=body[: int(len(body) * cut)],
        headers={"Content-Type": stow_content_type()},
    )
    assert response.status_code == 400
    assert "incomplete" in response.json()["error"]
    bystander.assert_untouched()


def test_client_disconnecting_mid_upload_leaves_no_trace(
    live_server: LiveServer, bystander: Bystander
) -> None:
    body = multipart_body([make_instance(rows=256, columns=256)])
    host, port = live_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST /dicom-web/studies HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: {stow_content_type()}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])
    assert httpx.get(f"{live_server.base_url}/health").status_code == 200  # server is fine
    bystander.assert_untouched()


def test_garbage_multipart_is_400(live_server: LiveServer, bystander: Bystander) -> None:
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=b"\x00\xff" * 5000,
        headers={"Content-Type": stow_content_type()},
    )
    assert response.status_code == 400
    bystander.assert_untouched()


def test_empty_multipart_is_400(live_server: LiveServer, bystander: Bystander) -> None:
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=b"--fovea-test-boundary--\r\n",
        headers={"Content-Type": stow_content_type()},
    )
    assert response.status_code == 400
    assert "no parts" in response.json()["error"]
    bystander.assert_untouched()


def test_duplicate_parts_in_one_request(live_server: LiveServer, bystander: Bystander) -> None:
    sop = generate_uid()
    data = make_instance(sop_uid=sop)
    response = post_stow(live_server, [data, data])
    assert response.status_code == 202
    body = response.json()
    assert [value_of(i, SOP_INSTANCE) for i in items(body, REFERENCED)] == [sop]
    [failure] = items(body, FAILED)
    assert value_of(failure, SOP_INSTANCE) == sop
    assert value_of(failure, FAILURE_REASON) == 0x0111
    assert stored_bytes(bystander.backend, sop) == data
    bystander.assert_untouched(added=IndexCounts(0, 0, 1, 0))


def test_part_with_wrong_content_type_fails_alone(live_server: LiveServer, bystander: Bystander) -> None:
    good = multipart_body([make_instance()], "b").removesuffix(b"--b--\r\n")
    body = good + b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    response = httpx.post(
        f"{live_server.dicomweb}/studies",
        content=body,
        headers={"Content-Type": stow_content_type("b")},
    )
    assert response.status_code == 202
    [failure] = items(response.json(), FAILED)
    assert "text/plain" in value_of(failure, ERROR_COMMENT)
    bystander.assert_untouched(added=IndexCounts(0, 0, 1, 0))
