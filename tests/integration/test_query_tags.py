"""Extended query tags against a live server, on SQLite and PostgreSQL: declared over HTTP and with
`fovea query-tags`, back-filled from the stored metadata, matched in QIDO-RS by their VR's rules, and
removed with their index."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from app.store.query_tags import backfill, declare, parse_declaration
from app.store.tables import QueryTag, QueryTagValue
from tests.conftest import Backend, LiveServer
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import post_stow
from tests.integration.test_cli import run_fovea

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)

JSON = {"Accept": "application/dicom+json"}
STUDY_X, STUDY_Y = generate_uid(), generate_uid()
SERIES_X1, SERIES_X2, SERIES_Y1 = generate_uid(), generate_uid(), generate_uid()


def _instance(study: str, series: str, patient: str, **attributes: Any) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(make_instance(rows=2, columns=2, study_uid=study, series_uid=series)))
    ds.PatientID = patient
    for keyword, value in attributes.items():
        if keyword == "private":  # (creator block, value): the creator's block decides the element
            block, text = value
            ds.private_block(0x0009, "ACME 1.0", create=True)  # block 0x10, taken by the first creator
            if block != 0x10:
                ds[0x00090010].value = "OTHER"
                ds.add_new(0x00090000 | block, "LO", "ACME 1.0")
            ds.add_new(0x00090000 | (block << 8) | 0x10, "LO", text)
            continue
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _sop_uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)


def _search(server: LiveServer, path: str, params: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{server.dicomweb}{path}", params=params, headers=JSON, timeout=30)


def _uids(response: httpx.Response, tag: str) -> set[str]:
    assert response.status_code == 200, response.text
    return {item[tag]["Value"][0] for item in response.json()}


def _wait_until_ready(server: LiveServer, tag: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        described = httpx.get(f"{server.base_url}/admin/query-tags/{tag}", timeout=10).json()
        if described["state"] == "ready" or time.monotonic() > deadline:
            return dict(described)
        time.sleep(0.05)


@pytest.fixture
def stored(live_server: LiveServer) -> dict[str, str]:
    """Three instances stored before any tag is declared: X1 (chest, 72.5 kg, two operators, a private
    value in the creator's usual block), X2 (abdomen, in another block), Y1 (head, no weight)."""
    parts = {
        "x1": _instance(
            STUDY_X,
            SERIES_X1,
            "P-X",
            BodyPartExamined="CHEST",
            PatientWeight="72.5",
            OperatorsName=["Smith^Jo", "Jones^Kim"],
            private=(0x10, "secret-1"),
        ),
        "x2": _instance(STUDY_X, SERIES_X2, "P-X", BodyPartExamined="ABDOMEN", private=(0x11, "secret-2")),
        "y1": _instance(STUDY_Y, SERIES_Y1, "P-Y", BodyPartExamined="HEAD", PatientWeight="80"),
    }
    for data in parts.values():
        assert post_stow(live_server, [data]).status_code == 200
    return {name: _sop_uid(data) for name, data in parts.items()}


def test_a_tag_declared_over_http_is_back_filled_matched_and_removed(
    live_server: LiveServer, backend: Backend, stored: dict[str, str]
) -> None:
    refused = _search(live_server, "/series", {"BodyPartExamined": "CHEST"})
    assert refused.status_code == 400 and "BodyPartExamined is not matched" in refused.text

    admin = f"{live_server.base_url}/admin/query-tags"
    created = httpx.post(admin, json={"tag": "BodyPartExamined", "level": "series"}, timeout=10)
    assert created.status_code == 202, created.text
    assert created.headers["location"] == "/admin/query-tags/00180015"
    assert created.json()["vr"] == "CS" and created.json()["level"] == "series"
    ready = _wait_until_ready(live_server, "00180015")
    assert (ready["state"], ready["instancesDone"], ready["instancesTotal"]) == ("ready", 3, 3)
    assert [tag["tag"] for tag in httpx.get(admin, timeout=10).json()] == ["00180015"]

    assert _uids(_search(live_server, "/series", {"BodyPartExamined": "CHEST"}), "0020000E") == {SERIES_X1}
    assert _uids(_search(live_server, "/series", {"BodyPartExamined": "CHEST,HEAD"}), "0020000E") == {
        SERIES_X1,
        SERIES_Y1,
    }
    assert _uids(_search(live_server, "/series", {"BodyPartExamined": "*D*"}), "0020000E") == {
        SERIES_X2,
        SERIES_Y1,
    }
    assert _uids(_search(live_server, "/series", {"BodyPartExamined": "chest"}), "0020000E") == set()  # CS
    found = _search(live_server, f"/studies/{STUDY_X}/instances", {"00180015": "ABDOMEN"})
    assert _uids(found, "00080018") == {stored["x2"]}
    assert found.json()[0]["00180015"] == {"vr": "CS", "Value": ["ABDOMEN"]}  # returned when matched
    at_study_level = _search(live_server, "/studies", {"BodyPartExamined": "CHEST"})
    assert at_study_level.status_code == 400  # a series key

    # Stored after the declaration: indexed at ingest.
    late_series = generate_uid()
    late = _instance(STUDY_Y, late_series, "P-Y", BodyPartExamined="CHEST")
    assert post_stow(live_server, [late]).status_code == 200
    assert _uids(_search(live_server, "/series", {"BodyPartExamined": "CHEST"}), "0020000E") == {
        SERIES_X1,
        late_series,
    }

    assert (
        httpx.post(admin, json={"tag": "BodyPartExamined", "level": "study"}, timeout=10).status_code == 409
    )
    assert httpx.delete(f"{admin}/BodyPartExamined", timeout=10).status_code == 204
    with backend.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(QueryTagValue)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(QueryTag)).scalar_one() == 0
    assert _search(live_server, "/series", {"BodyPartExamined": "CHEST"}).status_code == 400
    assert httpx.delete(f"{admin}/BodyPartExamined", timeout=10).status_code == 404
    assert httpx.get(f"{admin}/BodyPartExamined", timeout=10).status_code == 404


def test_numbers_person_names_and_private_attributes_follow_their_vr(
    live_server: LiveServer, backend: Backend, stored: dict[str, str]
) -> None:
    progress: list[tuple[int, int]] = []
    for attribute, level, vr, creator in (
        ("PatientWeight", "study", None, None),
        ("OperatorsName", "instance", None, None),
        ("(0009,1010)", "instance", "LO", "ACME 1.0"),
    ):
        key = declare(backend.engine, parse_declaration(attribute, level, vr, creator))
        backfill(backend.engine, key, lambda done, total: progress.append((done, total)))
    assert progress[-1] == (3, 3)
    live_server.services.query_tags.forget()

    def studies(params: dict[str, str]) -> set[str]:
        return _uids(_search(live_server, "/studies", params), "0020000D")

    def instances(params: dict[str, str]) -> set[str]:
        return _uids(_search(live_server, "/instances", params), "00080018")

    assert studies({"PatientWeight": "72.5"}) == {STUDY_X}
    (study,) = _search(live_server, "/studies", {"PatientWeight": "72.5"}).json()
    assert study["00101030"] == {"vr": "DS", "Value": [72.5]}  # returned, from the index
    assert studies({"PatientWeight": "72.50"}) == {STUDY_X}  # equal as numbers
    assert studies({"PatientWeight": "80"}) == {STUDY_Y}
    assert studies({"PatientWeight": "81"}) == set()
    assert _search(live_server, "/studies", {"PatientWeight": "heavy"}).status_code == 400

    assert instances({"OperatorsName": "jones^kim"}) == {stored["x1"]}  # PN: case-folded, any value
    assert instances({"OperatorsName": "smith*"}) == {stored["x1"]}
    both = {"OperatorsName": "Jones^Kim\\Smith^Jo", "multiplevaluematching": "true"}
    assert instances(both) == {stored["x1"]}
    assert instances({**both, "OperatorsName": "Jones^Kim\\Doe^Al"}) == set()
    empty = instances({"OperatorsName": "nobody", "emptyvaluematching": "true"})
    assert empty == {stored["x2"], stored["y1"]}

    # The private creator's block is found in each data set: X2's value sits at (0009,1110).
    assert instances({"00091010": "secret-2"}) == {stored["x2"]}
    (instance,) = _search(live_server, "/instances", {"00091010": "secret-2"}).json()
    assert instance["00091010"] == {"vr": "LO", "Value": ["secret-2"]}  # under the declared tag
    (instance,) = _search(live_server, "/instances", {"OperatorsName": "jones^kim"}).json()
    operators = instance["00081070"]["Value"]  # PN: as stored, from the metadata
    assert operators == [{"Alphabetic": "Smith^Jo"}, {"Alphabetic": "Jones^Kim"}]
    assert instances({"00091010": "secret-*"}) == {stored["x1"], stored["x2"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tag": "NoSuchKeyword", "level": "study"}, "not a DICOM keyword"),
        ({"tag": "ReferencedImageSequence", "level": "instance"}, "VR SQ is not searchable"),
        ({"tag": "PatientName", "level": "study"}, "already a matching key"),
        ({"tag": "00091010", "level": "instance", "vr": "LO"}, "needs its private creator"),
        ({"tag": "PatientWeight", "level": "patient"}, "study, series or instance"),
        ({"tag": "PatientWeight", "level": "study", "extra": "1"}, "unknown fields"),
        ({"level": "study"}, "a JSON object with"),
    ],
)
def test_declarations_that_cannot_be_made_are_400(
    live_server: LiveServer, body: dict[str, str], message: str
) -> None:
    response = httpx.post(f"{live_server.base_url}/admin/query-tags", json=body, timeout=10)
    assert response.status_code == 400 and message in response.text, response.text


@pytest.mark.usefixtures("stored")
def test_the_cli_adds_lists_and_removes_a_tag(live_server: LiveServer, backend: Backend) -> None:
    env = {
        "FOVEA_DATABASE_URL": backend.database_url,
        "FOVEA_DATA_DIR": str(backend.data_dir),
        "FOVEA_STORAGE_URL": backend.storage_url,
        "FOVEA_AUTO_MIGRATE": "false",
    }
    added = run_fovea("query-tags", "add", "PatientWeight", "--level", "study", env=env)
    assert added.returncode == 0, added.stderr
    assert "3 instances indexed" in added.stdout
    listed = run_fovea("query-tags", "list", env=env)
    assert listed.stdout.split("\t")[:6] == ["00101030", "PatientWeight", "-", "DS", "study", "ready"]
    live_server.services.query_tags.forget()  # the server reads the tags again within seconds anyway
    found = _search(live_server, "/studies", {"PatientWeight": "80"})
    assert _uids(found, "0020000D") == {STUDY_Y}
    removed = run_fovea("query-tags", "remove", "PatientWeight", env=env)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert run_fovea("query-tags", "remove", "PatientWeight", env=env).returncode == 1
    assert run_fovea("query-tags", "add", "Nonsense", env=env).returncode == 2
