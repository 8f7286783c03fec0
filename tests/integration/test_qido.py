"""QIDO-RS against a live server (PS3.18 10.6, PS3.4 C.2.2.2), on SQLite and PostgreSQL.

One small archive is stored through STOW-RS, then searched at the six URLs with every kind of
matching; each case names the studies, series or instances it must return, in order.
"""

from __future__ import annotations

import gzip
import io
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid

from app.imaging.codec_pool import CodecPool
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import post_stow

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)

JSON = {"Accept": "application/dicom+json"}
XML_MULTIPART = 'multipart/related; type="application/dicom+xml"'


@dataclass
class Archive:
    """What was stored: study, series and instance UIDs by short name ("A", "A1", "A1.2")."""

    uids: dict[str, str]

    def name_of(self, uid: str) -> str:
        return next(name for name, value in self.uids.items() if value == uid)


def _instance(study: str, series: str, number: int, attributes: dict[str, Any]) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(make_instance(rows=4, columns=6, seed=number)))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, number
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _request_attributes(*items: tuple[str, str]) -> list[Dataset]:
    datasets = []
    for step, procedure in items:
        item = Dataset()
        item.ScheduledProcedureStepID, item.RequestedProcedureID = step, procedure
        datasets.append(item)
    return datasets


# Studies A to D; series A1, A2, B1, C1, D1; the instance counts of each series.
STUDIES: dict[str, dict[str, Any]] = {
    "A": {
        "PatientName": "Müller^Jürgen",
        "PatientID": "P-100",
        "IssuerOfPatientID": "HOSP",
        "PatientAge": "042Y",
        "StudyDate": "20250310",
        "StudyTime": "101500",
        "AccessionNumber": "ACC-1",
        "StudyID": "S1",
        "ReferringPhysicianName": "House^Gregory",
        "StudyDescription": "CT Chest",
    },
    "B": {
        "PatientName": "DOE^JOHN",
        "PatientID": "P-200",
        "StudyDate": "20240101",
        "StudyTime": "235959",
        "AccessionNumber": "ACC-2",
        "StudyDescription": "MR Brain",
    },
    "C": {"PatientName": "Doe^Jane", "PatientID": "P-300", "StudyDate": "20260615", "StudyTime": "0800"},
    "D": {"PatientName": "O'Brien^Ana María", "PatientID": "P_400", "StudyDate": "", "StudyTime": ""},
}
SERIES: dict[str, tuple[dict[str, Any], int]] = {
    "A1": (
        {
            "Modality": "CT",
            "SeriesNumber": 1,
            "SeriesDescription": "Axial",
            "SliceThickness": "1.25",
            "RequestAttributesSequence": _request_attributes(("SPS-7", "RP-1")),
        },
        3,
    ),
    "A2": (
        {
            "Modality": "MR",
            "SeriesNumber": 2,
            "RequestAttributesSequence": _request_attributes(("STEP-8", "PROC-8"), ("STEP-9", "PROC-9")),
        },
        2,
    ),
    "B1": ({"Modality": "MR", "SeriesNumber": 1}, 1),
    "C1": ({"Modality": "CR", "SeriesNumber": 1}, 1),
    "D1": ({"Modality": "US", "SeriesNumber": 1}, 1),
}


@pytest.fixture
def archive(live_server: LiveServer) -> Archive:
    uids: dict[str, str] = {}
    parts = []
    for study_name, study_attributes in STUDIES.items():
        uids[study_name] = generate_uid()
        for series_name, (series_attributes, count) in SERIES.items():
            if series_name[0] != study_name:
                continue
            uids[series_name] = generate_uid()
            for number in range(1, count + 1):
                name = f"{series_name}.{number}"
                data = _instance(
                    uids[study_name], uids[series_name], number, {**study_attributes, **series_attributes}
                )
                uids[name] = pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
                parts.append(data)
    for data in parts:  # one request each, in order, so storage order is the order above
        assert post_stow(live_server, [data]).status_code == 200
    return Archive(uids)


def _search(server: LiveServer, path: str, params: Any = None, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.dicomweb}{path}", params=params, headers={**JSON, **headers}, timeout=30)


def _filled(text: str, archive: Archive) -> str:
    """`text` with each `{name}` replaced by the UID stored under that short name."""
    return re.sub(r"\{([^}]+)\}", lambda m: archive.uids[m.group(1)], text)


def _uid_of(item: dict[str, Any], level: str) -> str:
    tag = {"study": "0020000D", "series": "0020000E", "instance": "00080018"}[level]
    return str(item[tag]["Value"][0])


def _names(archive: Archive, response: httpx.Response, level: str) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    return [archive.name_of(_uid_of(item, level)) for item in response.json()]


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


STUDY_CASES = [
    ({}, ["A", "B", "C", "D"]),
    ({"PatientID": "P-100"}, ["A"]),
    ({"00100020": "P-200"}, ["B"]),
    ({"PatientID": "P_4*"}, ["D"]),  # "_" is literal, not SQL's any-character
    ({"PatientID": "P?100"}, ["A"]),
    ({"PatientID": "p-100"}, []),  # LO matching is case-sensitive
    ({"PatientName": "doe*"}, ["B", "C"]),  # PN matching is not
    ({"PatientName": "DOE^JOHN"}, ["B"]),
    ({"PatientName": "doe^john"}, ["B"]),
    ({"PatientName": "müller*"}, ["A"]),
    ({"PatientName": "muller*"}, []),  # accents count unless fuzzy
    ({"PatientName": "*an*"}, ["C", "D"]),
    ({"PatientName": "*"}, ["A", "B", "C", "D"]),
    ({"PatientName": "mull", "fuzzymatching": "true"}, ["A"]),
    ({"PatientName": "jurg", "fuzzymatching": "true"}, ["A"]),
    ({"PatientName": "jo do", "fuzzymatching": "true"}, ["B"]),
    ({"PatientName": "doe", "fuzzymatching": "true"}, ["B", "C"]),
    ({"PatientName": "MARIA", "fuzzymatching": "true"}, ["D"]),
    ({"PatientName": "xyz", "fuzzymatching": "true"}, []),
    ({"PatientName": "mull", "fuzzymatching": "false"}, []),
    ({"StudyDate": "20250310"}, ["A"]),
    ({"StudyDate": "20250101-"}, ["A", "C"]),
    ({"StudyDate": "-20241231"}, ["B"]),  # D's empty date is in no range
    ({"StudyDate": "20240101-20250310"}, ["A", "B"]),
    ({"StudyDate": "20250101-", "emptyvaluematching": "true"}, ["A", "C", "D"]),
    ({"StudyTime": "1000-1100"}, ["A"]),
    ({"StudyTime": "-0800"}, ["C"]),
    ({"StudyTime": "-08"}, ["C"]),  # the upper end covers the whole hour
    # StudyDate with StudyTime: one range from the first date at the first time (PS3.4 C.2.2.2.5.1).
    ({"StudyDate": "20240101-20250310", "StudyTime": "2300-1100"}, ["A", "B"]),
    ({"StudyDate": "20240101-20250310", "StudyTime": "2300-1000"}, ["B"]),  # A is at 10:15
    ({"StudyDate": "20240102-20260615", "StudyTime": "-0800"}, ["A", "C"]),
    ({"StudyDate": "20240101-", "StudyTime": "235959-"}, ["A", "B", "C"]),
    ({"StudyDate": "-20250310", "StudyTime": "-09"}, ["B"]),  # the upper end: 09:59:59 on 2025-03-10
    ({"StudyDate": "-20250310", "StudyTime": "-1015"}, ["A", "B"]),
    ({"StudyDate": "20250310", "StudyTime": "1000-1100"}, ["A"]),
    ({"StudyDate": "20250310", "StudyTime": "1100-"}, []),
    ({"StudyDate": "20240101-20250310", "StudyTime": "101500"}, ["A", "B"]),  # B: 23:59:59 on day one
    ({"AccessionNumber": "ACC-1"}, ["A"]),
    ({"AccessionNumber": "ACC-*"}, ["A", "B"]),
    ({"ModalitiesInStudy": "MR"}, ["A", "B"]),
    ({"ModalitiesInStudy": "CT,US"}, ["A", "D"]),
    ({"ModalitiesInStudy": "C*"}, ["A", "C"]),
    # Multiple Value Matching (PS3.4 C.2.2.2.8): every value; without it, any.
    ({"ModalitiesInStudy": "CT\\MR", "multiplevaluematching": "true"}, ["A"]),
    ({"ModalitiesInStudy": "MR\\CT", "multiplevaluematching": "true"}, ["A"]),
    ({"ModalitiesInStudy": "MR\\US", "multiplevaluematching": "true"}, []),
    ({"ModalitiesInStudy": "MR", "multiplevaluematching": "true"}, ["A", "B"]),
    ({"ModalitiesInStudy": "CT\\MR", "multiplevaluematching": "false"}, ["A", "B"]),
    ({"ModalitiesInStudy": "CT\\MR"}, ["A", "B"]),
    ({"ReferringPhysicianName": "house*"}, ["A"]),
    ({"ReferringPhysicianName": "greg", "fuzzymatching": "true"}, ["A"]),
    ({"StudyID": "S1"}, ["A"]),
    ({"PatientName": "doe*", "StudyDate": "20260101-"}, ["C"]),
]


def test_study_matching(live_server: LiveServer, archive: Archive) -> None:
    """Every case against one stored archive; the failures are listed together."""
    found = {
        str(params): _names(archive, _search(live_server, "/studies", params), "study")
        for params, _ in STUDY_CASES
    }
    assert found == {str(params): expected for params, expected in STUDY_CASES}


def test_study_uid_list_matching(live_server: LiveServer, archive: Archive) -> None:
    uids = f"{archive.uids['C']},{archive.uids['A']}"
    response = _search(live_server, "/studies", {"StudyInstanceUID": uids})
    assert _names(archive, response, "study") == ["A", "C"]


def test_study_results_carry_every_required_key(live_server: LiveServer, archive: Archive) -> None:
    response = _search(live_server, "/studies", {"PatientID": "P-100"})
    (study,) = response.json()

    assert _value(study, "00100010") == {"Alphabetic": "Müller^Jürgen"}
    assert _value(study, "00100020") == "P-100"
    assert _value(study, "00080020") == "20250310"
    assert _value(study, "00080030") == "101500"
    assert _value(study, "00080050") == "ACC-1"
    assert _value(study, "00080090") == {"Alphabetic": "House^Gregory"}
    assert _value(study, "00200010") == "S1"
    assert _value(study, "00081030") == "CT Chest"
    assert _value(study, "00080056") == "ONLINE"
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert study["00201206"] == {"vr": "IS", "Value": [2]}
    assert study["00201208"] == {"vr": "IS", "Value": [5]}
    assert _value(study, "00081190") == f"{live_server.dicomweb}/studies/{archive.uids['A']}"
    assert "00100030" in study and "00100040" in study  # required, empty here
    assert list(study) == sorted(study)  # attributes in tag order
    assert "00100021" not in study  # optional: only when asked for


def test_includefield_adds_indexed_and_stored_attributes(live_server: LiveServer, archive: Archive) -> None:
    response = _search(
        live_server,
        "/studies",
        [
            ("PatientID", "P-100"),
            ("includefield", "IssuerOfPatientID,00101010"),
            ("includefield", "Modality"),
        ],
    )
    (study,) = response.json()
    assert _value(study, "00100021") == "HOSP"  # a column of the index
    assert _value(study, "00101010") == "042Y"  # from the study's first instance
    assert "00080060" not in study  # a series attribute is not returned at study level

    response = _search(live_server, "/studies", {"PatientID": "P-100", "includefield": "all"})
    assert _value(response.json()[0], "00100021") == "HOSP"

    path = f"/studies/{archive.uids['A']}/series/{archive.uids['A1']}/instances"
    instances = _search(live_server, path, {"includefield": "SliceThickness"}).json()
    assert [_value(item, "00180050") for item in instances] == [1.25, 1.25, 1.25]

    (instance, *_) = _search(live_server, path, {"includefield": "PixelData"}).json()
    uri = instance["7FE00010"]["BulkDataURI"]  # copied from the stored metadata, made absolute
    assert uri.startswith(f"{live_server.dicomweb}/studies/{archive.uids['A']}/series/")
    assert httpx.get(uri, headers={"Accept": "application/octet-stream"}).status_code == 200


def test_limit_and_offset_page_through_matches_with_a_warning(
    live_server: LiveServer, archive: Archive
) -> None:
    first = _search(live_server, "/studies", {"limit": "2"})
    assert _names(archive, first, "study") == ["A", "B"]
    assert first.headers["warning"].startswith("299 ")
    assert "offset=2" in first.headers["warning"]

    rest = _search(live_server, "/studies", {"limit": "2", "offset": "2"})
    assert _names(archive, rest, "study") == ["C", "D"]
    assert "warning" not in rest.headers

    beyond = _search(live_server, "/studies", {"offset": "10"})
    assert beyond.status_code == 200 and beyond.json() == []


def test_server_maximum_cuts_results_with_a_warning(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with start_live_server(backend, worker_pool, codec_pool, qido_max_results=2) as server:
        archive = Archive({})
        for name in ("X", "Y", "Z"):
            data = make_instance(patient_id=name)
            archive.uids[name] = pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID
            assert post_stow(server, [data]).status_code == 200
        unlimited = _search(server, "/studies")
        assert _names(archive, unlimited, "study") == ["X", "Y"]
        assert "warning" in unlimited.headers
        too_large = _search(server, "/studies", {"limit": "1000"})
        assert len(too_large.json()) == 2 and "warning" in too_large.headers


SERIES_CASES = [
    ("/series", {"Modality": "MR"}, ["A2", "B1"]),
    ("/series", {"Modality": "mr"}, []),
    ("/series", {"PatientName": "doe*"}, ["B1", "C1"]),
    ("/series", {"SeriesNumber": "2"}, ["A2"]),
    ("/series", {"RequestAttributeSequence.ScheduledProcedureStepID": "SPS-7"}, ["A1"]),
    ("/series", {"00400275.00401001": "RP-*"}, ["A1"]),
    ("/series", {"RequestAttributesSequence.RequestedProcedureID": "RP-2"}, []),
    # Sequence Matching (PS3.4 C.2.2.2.6): the item keys match within one item.
    ("/series", {"RequestAttributeSequence.ScheduledProcedureStepID": "STEP-8"}, ["A2"]),
    (
        "/series",
        {
            "RequestAttributeSequence.ScheduledProcedureStepID": "STEP-9",
            "RequestAttributeSequence.RequestedProcedureID": "PROC-9",
        },
        ["A2"],
    ),
    (
        "/series",
        {
            "RequestAttributeSequence.ScheduledProcedureStepID": "STEP-8",
            "RequestAttributeSequence.RequestedProcedureID": "PROC-9",
        },
        [],
    ),
    (
        "/series",
        {
            "RequestAttributeSequence.ScheduledProcedureStepID": "STEP-*",
            "RequestAttributeSequence.RequestedProcedureID": "PROC-9",
        },
        ["A2"],
    ),
    ("/studies/{A}/series", {}, ["A1", "A2"]),
    ("/studies/{A}/series", {"Modality": "CT"}, ["A1"]),
    ("/studies/{B}/series", {"Modality": "CT"}, []),
]


def test_series_matching(live_server: LiveServer, archive: Archive) -> None:
    found = {
        f"{path} {params}": _names(archive, _search(live_server, _filled(path, archive), params), "series")
        for path, params, _ in SERIES_CASES
    }
    assert found == {f"{path} {params}": expected for path, params, expected in SERIES_CASES}


def test_series_results_carry_every_required_key(live_server: LiveServer, archive: Archive) -> None:
    study = archive.uids["A"]
    series = _search(live_server, f"/studies/{study}/series").json()
    first, second = series
    assert _value(first, "00080060") == "CT"
    assert _value(first, "0008103E") == "Axial"
    assert _value(first, "00200011") == 1
    assert first["00201209"] == {"vr": "IS", "Value": [3]}
    assert second["00201209"] == {"vr": "IS", "Value": [2]}
    (item,) = first["00400275"]["Value"]
    assert _value(item, "00400009") == "SPS-7" and _value(item, "00401001") == "RP-1"
    steps = [(_value(i, "00400009"), _value(i, "00401001")) for i in second["00400275"]["Value"]]
    assert steps == [("STEP-8", "PROC-8"), ("STEP-9", "PROC-9")]  # every item, in stored order
    (other,) = _search(live_server, f"/studies/{archive.uids['B']}/series").json()
    assert other["00400275"] == {"vr": "SQ"}  # no items: present, empty
    assert "00400244" in first and "00400245" in first
    assert _value(first, "00081190") == f"{live_server.dicomweb}/studies/{study}/series/{archive.uids['A1']}"
    assert "00100010" not in first  # the study is named by the URL: its keys are not repeated

    everywhere = _search(live_server, "/series", {"Modality": "CT"}).json()
    assert _value(everywhere[0], "00100010") == {"Alphabetic": "Müller^Jürgen"}  # all-series: study keys too


INSTANCE_CASES: list[tuple[str, dict[str, str], list[str]]] = [
    ("/studies/{A}/series/{A1}/instances", {}, ["A1.1", "A1.2", "A1.3"]),
    ("/studies/{A}/instances", {}, ["A1.1", "A1.2", "A1.3", "A2.1", "A2.2"]),
    ("/studies/{A}/instances", {"Modality": "MR"}, ["A2.1", "A2.2"]),
    ("/instances", {"InstanceNumber": "2"}, ["A1.2", "A2.2"]),
    ("/instances", {"PatientID": "P-300"}, ["C1.1"]),
    ("/instances", {"SOPInstanceUID": "{B1.1}"}, ["B1.1"]),
    ("/instances", {"SOPClassUID": MRImageStorage}, []),
    ("/studies/{B}/series/{A1}/instances", {}, []),  # the series is not in that study
]


def test_instance_matching(live_server: LiveServer, archive: Archive) -> None:
    found = {}
    for path, params, _ in INSTANCE_CASES:
        filled = {key: _filled(value, archive) for key, value in params.items()}
        response = _search(live_server, _filled(path, archive), filled)
        found[f"{path} {params}"] = _names(archive, response, "instance")
    assert found == {f"{path} {params}": expected for path, params, expected in INSTANCE_CASES}


def test_instance_results_carry_every_required_key(live_server: LiveServer, archive: Archive) -> None:
    study, series = archive.uids["A"], archive.uids["A1"]
    (instance, *_) = _search(live_server, f"/studies/{study}/series/{series}/instances").json()
    assert _value(instance, "00080016") == CTImageStorage
    assert _value(instance, "00080056") == "ONLINE"
    assert _value(instance, "00200013") == 1
    assert (_value(instance, "00280010"), _value(instance, "00280011")) == (4, 6)
    assert _value(instance, "00280100") == 16
    assert _value(instance, "00280008") == 1
    sop = archive.uids["A1.1"]
    assert (
        _value(instance, "00081190")
        == f"{live_server.dicomweb}/studies/{study}/series/{series}/instances/{sop}"
    )
    assert (_value(instance, "0020000D"), _value(instance, "0020000E")) == (study, series)


BAD_REQUESTS = [
    ("/studies", {"Foo": "1"}, "Foo"),
    ("/studies", {"StudyDate": "2025"}, "StudyDate"),
    ("/studies", {"StudyDate": "20250230"}, "StudyDate"),
    ("/studies", {"limit": "ten"}, "limit"),
    ("/studies", {"offset": str(10**30)}, "offset=1000000000000000000000000000000: a whole number"),
    ("/series", {"limit": str(10**30)}, "limit=1000000000000000000000000000000: a whole number"),
    ("/instances", {"offset": "9223372036854775808"}, "offset=9223372036854775808: a whole number"),
    ("/studies", {"SOPInstanceUID": "1.2.3"}, "not matched at study level"),
    ("/studies", {"includefield": "NoSuchKeyword"}, "NoSuchKeyword"),
    ("/studies", {"fuzzymatching": "maybe"}, "fuzzymatching"),
    ("/series", {"SeriesInstanceUID": "1.2.abc"}, "not a UID"),
    ("/studies/not-a-uid/series", {}, "Study Instance UID"),
]


@pytest.mark.parametrize(
    ("path", "params", "fault"), BAD_REQUESTS, ids=[f"{p} {q}" for p, q, _ in BAD_REQUESTS]
)
def test_malformed_searches_are_400_naming_the_fault(
    live_server: LiveServer, path: str, params: Any, fault: str
) -> None:
    response = _search(live_server, path, params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert fault in response.json()["error"]


def test_empty_archive_answers_200_with_an_empty_array(live_server: LiveServer) -> None:
    for path in ("/studies", "/series", "/instances", f"/studies/{generate_uid()}/series"):
        response = _search(live_server, path)
        assert (response.status_code, response.json()) == (200, [])


@pytest.mark.usefixtures("archive")
def test_multipart_xml_results(live_server: LiveServer) -> None:
    response = _search(live_server, "/studies", {"PatientName": "doe*"}, Accept=XML_MULTIPART)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(XML_MULTIPART + "; boundary=")
    boundary = response.headers["content-type"].split("boundary=")[1]
    parts = [p for p in response.content.split(f"--{boundary}".encode()) if b"NativeDicomModel" in p]
    assert len(parts) == 2
    names = []
    for part in parts:
        root = ElementTree.fromstring(part.split(b"\r\n\r\n", 1)[1].strip())
        namespace = {"d": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
        names.append(root.findtext("d:DicomAttribute[@tag='00100020']/d:Value", namespaces=namespace))
    assert names == ["P-200", "P-300"]


def test_accept_parameter_wins_over_the_header(live_server: LiveServer, archive: Archive) -> None:
    refused = _search(live_server, "/studies", Accept="image/png")
    assert refused.status_code == 406
    response = _search(live_server, "/studies", {"accept": "application/dicom+json"}, Accept="image/png")
    assert _names(archive, response, "study") == ["A", "B", "C", "D"]


@pytest.mark.usefixtures("archive")
def test_results_are_compressed_for_clients_that_accept_it(live_server: LiveServer) -> None:
    with httpx.Client() as client:
        request = client.build_request(
            "GET", f"{live_server.dicomweb}/instances", headers={**JSON, "Accept-Encoding": "gzip"}
        )
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert len(gzip.decompress(raw).decode().split('"00080018"')) == 9  # 8 instances


def test_retrieve_urls_follow_the_proxy(live_server: LiveServer, archive: Archive) -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "pacs.example.org",
        "X-Forwarded-Prefix": "/fovea",
    }
    (study,) = _search(live_server, "/studies", {"PatientID": "P-300"}, **headers).json()
    assert (
        _value(study, "00081190") == f"https://pacs.example.org/fovea/dicom-web/studies/{archive.uids['C']}"
    )


@pytest.fixture
def browser_server(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[LiveServer]:
    origins = "http://viewer.example:3000, https://ohif.example.org"
    with start_live_server(backend, worker_pool, codec_pool, cors_origins=origins) as server:
        yield server


def test_cors_preflight_and_exposed_headers(browser_server: LiveServer) -> None:
    preflight = httpx.options(
        f"{browser_server.dicomweb}/studies",
        headers={
            "Origin": "https://ohif.example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, accept, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ohif.example.org"
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "accept", "content-type"} <= allowed

    response = _search(browser_server, "/studies", Origin="http://viewer.example:3000")
    assert response.headers["access-control-allow-origin"] == "http://viewer.example:3000"
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"content-type", "content-location", "warning"} <= exposed

    stranger = httpx.options(
        f"{browser_server.dicomweb}/studies",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


def test_no_cors_headers_unless_configured(live_server: LiveServer) -> None:
    response = _search(live_server, "/studies", Origin="https://ohif.example.org")
    assert "access-control-allow-origin" not in response.headers
