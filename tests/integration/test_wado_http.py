"""WADO-RS HTTP behaviour: validators and 304 (RFC 9110 13), content codings, XML metadata.

httpx decodes gzip and br by itself; these tests ask for one coding at a time and read the raw bytes
(`iter_raw`) so that what went over the wire is what gets checked.
"""

from __future__ import annotations

import gzip
import io
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.etree import ElementTree

import brotli
import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import post_stow
from tests.integration.test_wado_instances import multipart_parts

JSON = "application/dicom+json"
OCTET = "application/octet-stream"
NATIVE_MODEL = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"


def raw_get(url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (no content decoding by the client)."""
    with httpx.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


@pytest.fixture
def stored(live_server: LiveServer) -> pydicom.Dataset:
    data = make_instance(rows=128, columns=128, frames=2, patient_name="Doe^Jane^Q^Dr^III")
    assert post_stow(live_server, [data]).status_code == 200
    return pydicom.dcmread(io.BytesIO(data))


def series_url(server: LiveServer, ds: pydicom.Dataset) -> str:
    return f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"


def test_metadata_revalidation_gives_304(live_server: LiveServer, stored: pydicom.Dataset) -> None:
    url = f"{series_url(live_server, stored)}/metadata"
    first, _body = raw_get(url, Accept=JSON, **{"Accept-Encoding": "identity"})
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert first.status_code == 200 and etag.startswith('"') and first.headers["cache-control"] == "no-cache"
    assert "Accept-Encoding" in first.headers["vary"]

    again, again_body = raw_get(url, Accept=JSON, **{"Accept-Encoding": "identity", "If-None-Match": etag})
    assert (again.status_code, again_body, again.headers["etag"]) == (304, b"", etag)
    listed, _ = raw_get(
        url, Accept=JSON, **{"Accept-Encoding": "identity", "If-None-Match": f'"x", W/{etag}'}
    )
    assert listed.status_code == 304
    other, _ = raw_get(url, Accept=JSON, **{"Accept-Encoding": "identity", "If-None-Match": '"stale"'})
    assert other.status_code == 200

    since, _ = raw_get(
        url, Accept=JSON, **{"Accept-Encoding": "identity", "If-Modified-Since": last_modified}
    )
    assert since.status_code == 304
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    before, _ = raw_get(url, Accept=JSON, **{"Accept-Encoding": "identity", "If-Modified-Since": earlier})
    assert before.status_code == 200

    gzipped, _ = raw_get(url, Accept=JSON, **{"Accept-Encoding": "gzip"})
    assert gzipped.headers["etag"] != etag  # another representation, another tag


def test_a_new_instance_changes_the_validators(live_server: LiveServer, stored: pydicom.Dataset) -> None:
    url = f"{series_url(live_server, stored)}/metadata"
    etag = httpx.get(url).headers["etag"]
    post_stow(
        live_server,
        [make_instance(study_uid=stored.StudyInstanceUID, series_uid=stored.SeriesInstanceUID, seed=9)],
    )
    response = httpx.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 200 and len(response.json()) == 2
    assert response.headers["etag"] != etag


def test_frames_revalidation_gives_304(live_server: LiveServer, stored: pydicom.Dataset) -> None:
    url = f"{series_url(live_server, stored)}/instances/{stored.SOPInstanceUID}/frames/2"
    first = httpx.get(url, headers={"Accept": OCTET})
    assert first.status_code == 200
    again = httpx.get(url, headers={"Accept": OCTET, "If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    other_frame = httpx.get(url[:-1] + "1", headers={"Accept": OCTET, "If-None-Match": first.headers["etag"]})
    assert other_frame.status_code == 200
    instance = httpx.get(url.rsplit("/frames", 1)[0], headers={"Accept": "application/dicom"})
    repeat = httpx.get(
        url.rsplit("/frames", 1)[0],
        headers={"Accept": "application/dicom", "If-None-Match": instance.headers["etag"]},
    )
    assert repeat.status_code == 304


@pytest.mark.parametrize(("coding", "decode"), [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_metadata_is_compressed_when_accepted(
    live_server: LiveServer, stored: pydicom.Dataset, coding: str, decode: object
) -> None:
    url = f"{series_url(live_server, stored)}/metadata"
    _, plain = raw_get(url, Accept=JSON, **{"Accept-Encoding": "identity"})
    response, body = raw_get(url, Accept=JSON, **{"Accept-Encoding": coding})
    assert response.headers["content-encoding"] == coding
    assert decode(body) == plain  # type: ignore[operator]
    assert len(body) < len(plain)
    refused, _ = raw_get(url, Accept=JSON, **{"Accept-Encoding": f"{coding};q=0"})
    assert "content-encoding" not in refused.headers


def test_uncompressed_frames_are_gzipped_and_codestreams_are_not(
    live_server: LiveServer, stored: pydicom.Dataset
) -> None:
    base = f"{series_url(live_server, stored)}/instances/{stored.SOPInstanceUID}/frames"
    plain = httpx.get(f"{base}/1", headers={"Accept": OCTET, "Accept-Encoding": "identity"}).content
    single, body = raw_get(f"{base}/1", Accept=OCTET, **{"Accept-Encoding": "gzip, br"})
    assert single.headers["content-encoding"] == "gzip"  # br is for JSON only
    assert gzip.decompress(body) == plain
    multi, multi_body = raw_get(
        f"{base}/1,2", Accept=f'multipart/related; type="{OCTET}"', **{"Accept-Encoding": "gzip"}
    )
    assert multi.headers["content-encoding"] == "gzip"
    assert gzip.decompress(multi_body).count(b"Content-Location: ") == 2

    corpus = corpus_file("MR_small_jpeg_ls_lossless.dcm")
    post_stow(live_server, [corpus.path.read_bytes()])
    ds = pydicom.dcmread(corpus.path)
    url = f"{series_url(live_server, ds)}/instances/{ds.SOPInstanceUID}/frames/1"
    jls, jls_body = raw_get(url, Accept="image/jls", **{"Accept-Encoding": "gzip"})
    assert jls.status_code == 200 and "content-encoding" not in jls.headers
    assert jls_body[:2] == b"\xff\xd8"


def test_xml_metadata_is_one_native_model_part_per_instance(
    live_server: LiveServer, stored: pydicom.Dataset
) -> None:
    post_stow(
        live_server,
        [make_instance(study_uid=stored.StudyInstanceUID, series_uid=stored.SeriesInstanceUID, seed=3)],
    )
    response = httpx.get(
        f"{series_url(live_server, stored)}/metadata",
        headers={"Accept": 'multipart/related; type="application/dicom+xml"'},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith('multipart/related; type="application/dicom+xml"')
    parts = multipart_parts(response)
    assert len(parts) == 2 and all(h["content-type"] == "application/dicom+xml" for h, _ in parts)
    roots = [ElementTree.fromstring(body) for _, body in parts]
    assert {root.tag for root in roots} == {f"{NATIVE_MODEL}NativeDicomModel"}
    by_uid = {
        root.find(f"{NATIVE_MODEL}DicomAttribute[@tag='00080018']/{NATIVE_MODEL}Value").text: root  # type: ignore[union-attr]
        for root in roots
    }
    root = by_uid[stored.SOPInstanceUID]
    locations = {h["content-location"] for h, _ in parts}
    assert f"{series_url(live_server, stored)}/instances/{stored.SOPInstanceUID}/metadata" in locations
    name = root.find(f"{NATIVE_MODEL}DicomAttribute[@keyword='PatientName']/{NATIVE_MODEL}PersonName")
    assert name is not None and name.get("number") == "1"
    alphabetic = name.find(f"{NATIVE_MODEL}Alphabetic")
    assert alphabetic is not None
    components = {child.tag.removeprefix(NATIVE_MODEL): child.text for child in alphabetic}
    assert components == {
        "FamilyName": "Doe",
        "GivenName": "Jane",
        "MiddleName": "Q",
        "NamePrefix": "Dr",
        "NameSuffix": "III",
    }
    bulk = root.find(f"{NATIVE_MODEL}DicomAttribute[@tag='7FE00010']/{NATIVE_MODEL}BulkData")
    assert bulk is not None and bulk.get("uri", "").startswith(f"{live_server.dicomweb}/studies/")
    assert (
        httpx.get(bulk.get("uri", ""), headers={"Accept": f'multipart/related; type="{OCTET}"'}).status_code
        == 200
    )


def test_unknown_study_metadata_is_404_not_304(live_server: LiveServer) -> None:
    response = httpx.get(
        f"{live_server.dicomweb}/studies/{generate_uid()}/metadata", headers={"If-None-Match": "*"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_frame_compression_can_be_turned_off(backend: Backend, worker_pool: Executor) -> None:
    with start_live_server(backend, worker_pool, gzip_frames=False) as server:
        data = make_instance(rows=128, columns=128)
        post_stow(server, [data])
        ds = pydicom.dcmread(io.BytesIO(data))
        base = f"{series_url(server, ds)}/instances/{ds.SOPInstanceUID}"
        frame, body = raw_get(f"{base}/frames/1", Accept=OCTET, **{"Accept-Encoding": "gzip"})
        assert "content-encoding" not in frame.headers and body == ds.PixelData
        metadata, _ = raw_get(f"{base}/metadata", Accept=JSON, **{"Accept-Encoding": "gzip"})
        assert metadata.headers["content-encoding"] == "gzip"
