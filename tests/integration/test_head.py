"""HEAD on every resource GET serves: the same status and headers as GET, no content (RFC 9110 9.3.2)."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import REGISTRY
from pydicom.uid import generate_uid

from tests.conftest import LiveServer
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import post_stow

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)

# Headers a HEAD must answer as its GET does (a multipart boundary is drawn per response: compared
# without it).
COMPARED = ("content-type", "content-length", "etag", "last-modified", "vary", "cache-control")


def comparable(response: httpx.Response) -> dict[str, str | None]:
    headers: dict[str, str | None] = {name: response.headers.get(name) for name in COMPARED}
    content_type = headers["content-type"] or ""
    headers["content-type"] = content_type.split("; boundary=")[0]
    return headers


@pytest.fixture
def instance_url(live_server: LiveServer) -> str:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    stored = make_instance(study_uid=study, series_uid=series, sop_uid=sop, frames=2, seed=3)
    assert post_stow(live_server, [stored]).status_code == 200
    return f"{live_server.dicomweb}/studies/{study}/series/{series}/instances/{sop}"


@pytest.mark.parametrize(
    ("resource", "accept"),
    [
        ("{instance}", "multipart/related; type=application/dicom"),
        ("{instance}/metadata", "application/dicom+json"),
        ("{instance}/frames/2", 'multipart/related; type="application/octet-stream"'),
        ("{instance}/bulkdata/7FE00010", "*/*"),
        ("{instance}/rendered", "image/png"),
        ("{instance}/thumbnail", "image/jpeg"),
        ("{series}/instances", "application/dicom+json"),  # QIDO-RS
        ("{study}/metadata", "application/dicom+json"),
    ],
)
def test_head_answers_what_get_answers_without_the_content(
    instance_url: str, resource: str, accept: str
) -> None:
    study = instance_url.rsplit("/series/", 1)[0]
    series = instance_url.rsplit("/instances/", 1)[0]
    url = resource.format(instance=instance_url, series=series, study=study)
    headers = {"Accept": accept, "Accept-Encoding": "identity"}
    got = httpx.get(url, headers=headers)
    head = httpx.head(url, headers=headers)
    assert got.status_code == 200, got.text[:300]
    assert head.status_code == 200
    assert head.content == b""
    assert comparable(head) == comparable(got)
    assert got.content, "the GET has a body, so the comparison says something"


def test_head_is_conditional_and_refused_as_get_is(live_server: LiveServer, instance_url: str) -> None:
    metadata = f"{instance_url}/metadata"
    etag = httpx.get(metadata).headers["etag"]
    unchanged = httpx.head(metadata, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    missing = f"{live_server.dicomweb}/studies/{generate_uid()}/metadata"
    assert (httpx.get(missing).status_code, httpx.head(missing).status_code) == (404, 404)
    unacceptable = httpx.head(metadata, headers={"Accept": "text/plain"})
    assert (
        unacceptable.status_code == httpx.get(metadata, headers={"Accept": "text/plain"}).status_code == 406
    )
    assert unacceptable.content == b""


def test_methods_a_resource_does_not_serve_are_still_405(instance_url: str) -> None:
    response = httpx.put(f"{instance_url}/metadata")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def blob_streams_opened() -> float:
    """Blob range reads started by this process (the live server runs in it)."""
    labels = {"operation": "range", "store": "file"}
    return REGISTRY.get_sample_value("fovea_blob_seconds_count", labels) or 0.0


def head_requests_answered() -> float:
    """HEAD requests whose answer this process has finished (counted once the app returns)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "fovea_http_requests"
        for sample in metric.samples
        if sample.name == "fovea_http_requests_total" and sample.labels.get("method") == "HEAD"
    )


def test_head_of_a_streamed_body_does_not_read_the_rest_of_it(live_server: LiveServer) -> None:
    """A study over the whole-body size (WHOLE_BODY_BYTES) is streamed: HEAD sends GET's headers and
    never reads the instances the stream had not reached."""
    study = generate_uid()
    parts = [make_instance(study_uid=study, rows=512, columns=512, frames=5, seed=n) for n in range(4)]
    assert post_stow(live_server, parts).status_code == 200  # 4 x 2.5 MiB
    url = f"{live_server.dicomweb}/studies/{study}"
    headers = {"Accept": "multipart/related; type=application/dicom"}

    # One connection kept open throughout, as a browser or proxy keeps it: a client that hangs up
    # after the headers would end a streamed answer by itself.
    with httpx.Client(timeout=60) as client:
        before_get = blob_streams_opened()
        got = client.get(url, headers=headers)
        read_by_get = blob_streams_opened() - before_get
        answered = head_requests_answered()
        head = client.head(url, headers=headers)
        # The client has the headers before the server is done: wait until it is, then count.
        deadline = time.monotonic() + 30
        while head_requests_answered() == answered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert head_requests_answered() == answered + 1
        read_by_head = blob_streams_opened() - before_get - read_by_get

    assert (got.status_code, head.status_code, head.content) == (200, 200, b"")
    assert comparable(head) == comparable(got)
    assert "transfer-encoding" not in head.headers
    assert read_by_get == 4
    assert read_by_head < read_by_get
