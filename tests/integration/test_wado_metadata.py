"""WADO-RS metadata resources against a live server (PS3.18 10.4, Annex F), on every back end."""

from __future__ import annotations

import io
from typing import Any, TypedDict

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import LiveServer
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import post_stow

JSON = {"Accept": "application/dicom+json"}


class SentStudy(TypedDict):
    uid: str
    series: list[str]  # the series' UIDs
    sent: dict[str, bytes]  # each file as sent, by SOP Instance UID


@pytest.fixture
def study(live_server: LiveServer) -> SentStudy:
    """Two series of a study, sent out of order, and what was sent."""
    study_uid: str = generate_uid()
    series: list[str] = [generate_uid(), generate_uid()]
    sent: dict[str, bytes] = {}
    parts = []
    for series_number, instance_number in [(2, 2), (1, 3), (2, 1), (1, 1), (1, 2)]:
        sop = generate_uid()
        data = make_instance(
            study_uid=study_uid,
            series_uid=series[series_number - 1],
            sop_uid=sop,
            seed=instance_number,
            rows=8,
            columns=8,
        )
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.SeriesNumber, ds.InstanceNumber = series_number, instance_number
        buffer = io.BytesIO()
        ds.save_as(buffer)
        sent[sop] = buffer.getvalue()
        parts.append(buffer.getvalue())
    assert post_stow(live_server, parts).status_code == 200
    return {"uid": study_uid, "series": series, "sent": sent}


def _order(items: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(item["00200011"]["Value"][0], item["00200013"]["Value"][0]) for item in items]


def test_study_metadata_lists_every_instance_in_series_and_instance_order(
    live_server: LiveServer, study: SentStudy
) -> None:
    response = httpx.get(f"{live_server.dicomweb}/studies/{study['uid']}/metadata", headers=JSON)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    items = response.json()
    assert _order(items) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    sent = study["sent"]
    for item in items:
        served = Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b"")
        original = pydicom.dcmread(io.BytesIO(sent[str(served.SOPInstanceUID)]))
        for keyword in (
            "PatientName",
            "PatientID",
            "StudyDate",
            "Modality",
            "Rows",
            "Columns",
            "BitsAllocated",
            "PixelRepresentation",
            "SeriesInstanceUID",
        ):
            assert served[keyword].value == original[keyword].value, keyword
        uri = item["7FE00010"]["BulkDataURI"]
        assert uri == (
            f"{live_server.dicomweb}/studies/{study['uid']}/series/{original.SeriesInstanceUID}"
            f"/instances/{original.SOPInstanceUID}/bulkdata/7FE00010"
        )


def test_series_and_instance_metadata_narrow_the_scope(live_server: LiveServer, study: SentStudy) -> None:
    series = study["series"]
    base = f"{live_server.dicomweb}/studies/{study['uid']}/series/{series[1]}"
    in_series = httpx.get(f"{base}/metadata", headers=JSON).json()
    assert _order(in_series) == [(2, 1), (2, 2)]
    sop = in_series[0]["00080018"]["Value"][0]
    [one] = httpx.get(f"{base}/instances/{sop}/metadata", headers=JSON).json()
    assert one == in_series[0]


@pytest.mark.parametrize(
    "path",
    [
        "studies/{unknown}/metadata",
        "studies/{study}/series/{unknown}/metadata",
        "studies/{study}/series/{series}/instances/{unknown}/metadata",
        "studies/{unknown}/series/{series}/metadata",  # the series exists, but not in that study
    ],
)
def test_unknown_scope_is_404(live_server: LiveServer, study: SentStudy, path: str) -> None:
    series = study["series"]
    url = path.format(unknown=generate_uid(), study=study["uid"], series=series[0])
    response = httpx.get(f"{live_server.dicomweb}/{url}", headers=JSON)
    assert response.status_code == 404
    assert response.json()["error"].startswith("no ")


def test_malformed_uid_is_400(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.dicomweb}/studies/1.2.abc/metadata", headers=JSON)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("header", "query", "status"),
    [
        ("*/*", None, 200),
        (None, None, 200),
        ("application/json", None, 200),
        (
            "application/dicom+json, multipart/related; type=application/octet-stream; transfer-syntax=*",
            None,
            200,
        ),
        ("text/html", None, 406),
        ("text/html", "application/dicom+json", 200),  # the accept query parameter wins over the header
        ('multipart/related; type="application/dicom+xml", application/dicom+json', None, 200),
        ('multipart/related; type="application/dicom+xml"', None, 200),
        ("application/dicom+xml", None, 406),  # XML metadata is multipart only (Table 10.4.4-1)
    ],
)
def test_metadata_accept_negotiation(
    live_server: LiveServer, study: SentStudy, header: str | None, query: str | None, status: int
) -> None:
    headers = {"Accept": header} if header is not None else {}
    params = {"accept": query} if query is not None else {}
    response = httpx.get(
        f"{live_server.dicomweb}/studies/{study['uid']}/metadata", headers=headers, params=params
    )
    assert response.status_code == status
    if status == 406:
        assert "application/dicom+json" in response.json()["error"]


def test_bulkdata_uris_follow_the_proxy(live_server: LiveServer, study: SentStudy) -> None:
    headers = {**JSON, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "pacs.example.org"}
    items = httpx.get(f"{live_server.dicomweb}/studies/{study['uid']}/metadata", headers=headers).json()
    assert all(
        item["7FE00010"]["BulkDataURI"].startswith("https://pacs.example.org/dicom-web/studies/")
        for item in items
    )


def test_dicomweb_client_reads_metadata(live_server: LiveServer, study: SentStudy) -> None:
    client = DICOMwebClient(url=live_server.dicomweb)
    series = study["series"]
    study_items = client.retrieve_study_metadata(study["uid"])
    series_items = client.retrieve_series_metadata(study["uid"], series[0])
    sop = series_items[0]["00080018"]["Value"][0]
    instance = client.retrieve_instance_metadata(study["uid"], series[0], sop)  # one object, not a list
    assert (len(study_items), len(series_items)) == (5, 3)
    assert str(pydicom.Dataset.from_json(instance).SOPInstanceUID) == sop
