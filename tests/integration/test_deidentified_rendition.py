"""The de-identified rendition against a live Fovea with authentication on: a study of three corpus-based
instances (CT_small as stored; a copy saying Burned In Annotation YES; a Secondary Capture that does not
say NO), read through /dicom-web/deidentified with a de-identified share token and with an admin key."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, generate_uid

from app.imaging.codec_pool import CodecPool
from app.lifecycle.pseudonyms import Pseudonyms
from app.security.share_tokens import issue_share_token
from app.store.read.rendition_index import study_key
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import corpus_file, corpus_files, multipart_body, stow_content_type
from tests.integration.auth_helpers import bearer, new_key
from tests.integration.test_cli import run_fovea
from tests.integration.test_wado_instances import multipart_parts

SHARE_SECRET, DEID_SECRET = "s" * 40, "d" * 40
PSEUDONYMS = Pseudonyms(DEID_SECRET)
ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'
FRAME_AS_STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
STUDY_UID, SERIES_UID, SOP_UID, RETRIEVE_URL = "0020000D", "0020000E", "00080018", "00081190"


@dataclass
class Original:
    """The stored study's original UIDs: the plain CT, the burned-in copy, the Secondary Capture."""

    study: str
    series: str
    sop: str
    burned_in_sop: str
    capture_series: str
    capture_sop: str
    patient_name: str
    pixel_data: bytes

    def uids(self) -> list[str]:
        return [self.study, self.series, self.sop, self.burned_in_sop, self.capture_series, self.capture_sop]


def _part10(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def store_corpus_study(server: LiveServer, headers: dict[str, str]) -> Original:
    ct = pydicom.dcmread(corpus_file("CT_small.dcm").path)
    burned = pydicom.dcmread(corpus_file("CT_small.dcm").path)
    burned.SOPInstanceUID = burned.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    burned.InstanceNumber = 2
    burned.BurnedInAnnotation = "YES"
    capture = pydicom.dcmread(corpus_file("SC_rgb_small_odd.dcm").path)
    capture.StudyInstanceUID = ct.StudyInstanceUID
    capture.SeriesInstanceUID = generate_uid()
    capture.SeriesNumber = 99
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(capture, keyword, ct.get(keyword, ""))
    capture.SOPInstanceUID = capture.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    response = httpx.post(
        f"{server.dicomweb}/studies",
        content=multipart_body([_part10(ct), _part10(burned), _part10(capture)]),
        headers={"Content-Type": stow_content_type(), "Accept": "application/dicom+json", **headers},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return Original(
        str(ct.StudyInstanceUID),
        str(ct.SeriesInstanceUID),
        str(ct.SOPInstanceUID),
        str(burned.SOPInstanceUID),
        str(capture.SeriesInstanceUID),
        str(capture.SOPInstanceUID),
        str(ct.PatientName),
        ct.PixelData,
    )


def new(uid: str) -> str:
    return PSEUDONYMS.uid(uid)


@dataclass
class Rendition:
    server: LiveServer
    original: Original
    token: str  # a de-identified share token for the study
    admin: dict[str, str]
    reader: dict[str, str]  # dicom.read only
    writer: dict[str, str]

    @property
    def root(self) -> str:
        return f"{self.server.dicomweb}/deidentified"

    @property
    def study_path(self) -> str:
        return f"/studies/{new(self.original.study)}"

    @property
    def instance_path(self) -> str:
        o = self.original
        return f"{self.study_path}/series/{new(o.series)}/instances/{new(o.sop)}"

    def get(self, path: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        """GET under the rendition's root, with the share token unless other headers are given."""
        chosen = bearer(self.token) if headers is None else headers
        return httpx.get(f"{self.root}{path}", headers=chosen, params=params, timeout=30)

    def assert_no_original(self, text: str) -> None:
        for uid in self.original.uids():
            assert uid not in text
        assert self.original.patient_name not in text


@contextmanager
def running(backend: Backend, pool: Executor, codecs: CodecPool, **overrides: object) -> Iterator[Rendition]:
    writer = new_key(backend, "writer", "dicom.write")
    admin = new_key(backend, "admin", "admin")
    reader = new_key(backend, "reader", "dicom.read")
    with start_live_server(
        backend, pool, codecs, share_secrets=SHARE_SECRET, deid_secret=DEID_SECRET, **overrides
    ) as server:
        original = store_corpus_study(server, bearer(writer))
        token = issue_share_token([SHARE_SECRET], new(original.study), timedelta(hours=1), deidentified=True)
        yield Rendition(server, original, token.token, bearer(admin), bearer(reader), bearer(writer))


@pytest.fixture
def rendition(backend: Backend, worker_pool: Executor, codec_pool: CodecPool) -> Iterator[Rendition]:
    with running(backend, worker_pool, codec_pool) as made:
        yield made


def first(item: dict[str, Any], tag: str) -> Any:
    return item[tag]["Value"][0]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_metadata_is_de_identified_under_replacement_uids(rendition: Rendition) -> None:
    o = rendition.original
    response = rendition.get(f"{rendition.study_path}/metadata")
    assert response.status_code == 200, response.text
    rendition.assert_no_original(response.text)
    [item] = response.json()  # the burned-in copy and the Secondary Capture are withheld
    assert (first(item, STUDY_UID), first(item, SERIES_UID), first(item, SOP_UID)) == (
        new(o.study),
        new(o.series),
        new(o.sop),
    )
    assert first(item, "00120062") == "YES"  # Patient Identity Removed
    assert "Value" not in item.get("00100010", {})  # Patient's Name emptied (Basic Profile: Z)
    pixel_uri = item["7FE00010"]["BulkDataURI"]
    assert pixel_uri == f"{rendition.root}{rendition.instance_path}/bulkdata/7FE00010"
    pixels = httpx.get(pixel_uri, headers=bearer(rendition.token), timeout=30)
    assert pixels.status_code == 200
    [(_headers, body)] = multipart_parts(pixels)
    assert body == o.pixel_data


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_same_original_has_the_same_replacement_in_search_metadata_and_part10(
    rendition: Rendition,
) -> None:
    o = rendition.original
    found = rendition.get(f"{rendition.study_path}/instances")
    assert found.status_code == 200, found.text
    rendition.assert_no_original(found.text)
    [result] = found.json()
    assert first(result, SOP_UID) == new(o.sop)
    assert first(result, RETRIEVE_URL) == f"{rendition.root}{rendition.instance_path}"
    series = rendition.get(f"{rendition.study_path}/series").json()
    assert [first(item, SERIES_UID) for item in series] == [new(o.series)]
    by_uid = rendition.get(f"{rendition.study_path}/instances", SOPInstanceUID=new(o.sop)).json()
    assert [first(item, SOP_UID) for item in by_uid] == [new(o.sop)]
    by_original = rendition.get(f"{rendition.study_path}/instances", SOPInstanceUID=o.sop).json()
    assert by_original == []  # an original UID matches nothing here
    by_name = rendition.get(f"{rendition.study_path}/instances", PatientName=o.patient_name)
    assert by_name.status_code == 400  # no matching on what the profile removes

    response = rendition.get(
        rendition.instance_path, headers={**bearer(rendition.token), "Accept": ANY_SYNTAX}
    )
    assert response.status_code == 200, response.text
    [(headers, body)] = multipart_parts(response)
    assert headers["content-location"] == f"{rendition.root}{rendition.instance_path}"
    ds = pydicom.dcmread(io.BytesIO(body))
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == (
        new(o.study),
        new(o.series),
        new(o.sop),
    )
    assert ds.file_meta.MediaStorageSOPInstanceUID == new(o.sop)
    assert str(ds.PatientName) != o.patient_name and ds.PatientIdentityRemoved == "YES"
    assert ds.PixelData == o.pixel_data  # pixels untouched
    rendition.assert_no_original(body.decode("latin-1"))
    xml = rendition.get(
        f"{rendition.study_path}/metadata", accept='multipart/related; type="application/dicom+xml"'
    )
    assert xml.status_code == 200
    [(xml_headers, xml_body)] = multipart_parts(xml)
    assert xml_headers["content-location"] == f"{rendition.root}{rendition.instance_path}/metadata"
    assert new(o.sop).encode() in xml_body
    rendition.assert_no_original(xml.text)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_frames_and_rendered_images_are_the_originals_bytes(rendition: Rendition) -> None:
    o = rendition.original
    frame = rendition.get(
        f"{rendition.instance_path}/frames/1", headers={**bearer(rendition.token), "Accept": FRAME_AS_STORED}
    )
    assert frame.status_code == 200, frame.text
    [(headers, body)] = multipart_parts(frame)
    assert body == o.pixel_data  # bit-exact
    assert headers["content-location"] == f"{rendition.root}{rendition.instance_path}/frames/1"
    real_instance = f"/studies/{o.study}/series/{o.series}/instances/{o.sop}"
    plain = httpx.get(
        f"{rendition.server.dicomweb}{real_instance}/thumbnail", headers=rendition.reader, timeout=30
    )
    thumbnail = rendition.get(f"{rendition.study_path}/thumbnail")
    assert thumbnail.status_code == 200 and plain.status_code == 200
    assert thumbnail.content == plain.content
    by_link = rendition.get(
        f"{rendition.study_path}/thumbnail", headers={}, token=rendition.token
    )  # <img src>
    assert by_link.status_code == 200 and by_link.content == plain.content
    assert rendition.get(f"{rendition.instance_path}/rendered", annotation="patient").status_code == 400
    missing = rendition.get(f"{rendition.instance_path}/frames/7")
    assert missing.status_code == 404
    rendition.assert_no_original(missing.text)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_token_reads_nothing_else(rendition: Rendition) -> None:
    o = rendition.original
    for path in (f"/studies/{o.study}/metadata", f"/studies/{o.study}/series", "/studies"):
        response = httpx.get(
            f"{rendition.server.dicomweb}{path}", headers=bearer(rendition.token), timeout=30
        )
        assert response.status_code == 403, path
        rendition.assert_no_original(response.text)
    other = rendition.get(f"/studies/{new(generate_uid())}/metadata")
    assert other.status_code == 403
    plain_token = issue_share_token([SHARE_SECRET], o.study, timedelta(hours=1)).token
    assert rendition.get(f"{rendition.study_path}/metadata", headers=bearer(plain_token)).status_code == 403


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_burned_in_and_secondary_capture_instances_are_withheld(rendition: Rendition) -> None:
    o = rendition.original
    burned = f"{rendition.study_path}/series/{new(o.series)}/instances/{new(o.burned_in_sop)}"
    capture = f"{rendition.study_path}/series/{new(o.capture_series)}/instances/{new(o.capture_sop)}"
    for path in (
        f"{burned}/metadata",
        burned,
        f"{burned}/frames/1",
        f"{capture}/thumbnail",
        f"{capture}/metadata",
    ):
        response = rendition.get(path, headers={**bearer(rendition.token), "Accept": "*/*"})
        assert response.status_code == 404, path
        rendition.assert_no_original(response.text)
    listed = rendition.get(f"{rendition.study_path}/instances").json()
    assert [first(item, SOP_UID) for item in listed] == [new(o.sop)]

    # Stored after the study was mapped: not served, whether the map is still the old one or made again.
    late = pydicom.dcmread(corpus_file("CT_small.dcm").path)
    late.SOPInstanceUID = late.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    late.BurnedInAnnotation = "YES"
    stored = httpx.post(
        f"{rendition.server.dicomweb}/studies",
        content=multipart_body([_part10(late)]),
        headers={"Content-Type": stow_content_type(), **rendition.writer},
        timeout=30,
    )
    assert stored.status_code == 200
    whole = rendition.get(rendition.study_path, headers={**bearer(rendition.token), "Accept": ANY_SYNTAX})
    assert whole.status_code == 200
    served = [pydicom.dcmread(io.BytesIO(body)).SOPInstanceUID for _headers, body in multipart_parts(whole)]
    assert served == [new(o.sop)]


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_setting_serves_withheld_instances(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with running(backend, worker_pool, codec_pool, deid_allow_burned_in=True) as rendition:
        o = rendition.original
        listed = rendition.get(f"{rendition.study_path}/instances").json()
        burned = f"{rendition.study_path}/series/{new(o.series)}/instances/{new(o.burned_in_sop)}"
        metadata = rendition.get(f"{burned}/metadata")
    assert sorted(first(item, SOP_UID) for item in listed) == sorted(
        new(uid) for uid in (o.sop, o.burned_in_sop, o.capture_sop)
    )
    assert metadata.status_code == 200
    assert first(metadata.json()[0], "00280301") == "YES"
    rendition.assert_no_original(metadata.text)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_an_admin_reads_any_study_others_are_refused_and_reads_are_audited(rendition: Rendition) -> None:
    o = rendition.original
    path = f"{rendition.study_path}/metadata"
    assert rendition.get(path, headers=rendition.admin).status_code == 200
    assert rendition.get(path, headers=rendition.reader).status_code == 403
    assert rendition.get(path, headers={}).status_code == 401
    audit = httpx.get(
        f"{rendition.server.base_url}/admin/audit", params={"study": o.study}, headers=rendition.admin
    )
    events = [(e["action"], e["principal"], e["route"], e["status"]) for e in audit.json()]
    route = "/dicom-web/deidentified/studies/{study}/metadata"
    assert ("read-metadata", "admin", route, 200) in events
    deidentified = [e for e in audit.json() if e["route"] == route and e["status"] == 200]
    assert all(e["studies"] == [o.study] for e in deidentified)  # the original, never the replacement


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_fovea_share_deidentified_prints_a_token_for_the_rendition(
    rendition: Rendition, backend: Backend, tmp_path: Path
) -> None:
    o = rendition.original
    env = {
        "FOVEA_DATA_DIR": str(tmp_path),
        "FOVEA_DATABASE_URL": backend.database_url,
        "FOVEA_SHARE_SECRETS": SHARE_SECRET,
    }
    refused = run_fovea("share", o.study, "--deidentified", env=env)
    assert refused.returncode == 2 and "FOVEA_DEID_SECRET" in refused.stderr
    made = run_fovea("share", o.study, "--deidentified", env={**env, "FOVEA_DEID_SECRET": DEID_SECRET})
    assert made.returncode == 0, made.stderr
    assert f"/dicom-web/deidentified/studies/{new(o.study)}" in made.stdout
    token = made.stdout.strip().splitlines()[-1]
    claims = jwt.decode(token, options={"verify_signature": False})  # readable by whoever holds the link
    assert claims["study"] == new(o.study) and claims["deid"] == "basic"
    with backend.engine.connect() as connection:
        assert claims["key"] == study_key(connection, o.study)  # the hint: an index key, no UID
    assert o.study not in str(claims)
    assert rendition.get(f"{rendition.study_path}/metadata", headers=bearer(token)).status_code == 200
    real = httpx.get(
        f"{rendition.server.dicomweb}/studies/{o.study}/metadata", headers=bearer(token), timeout=30
    )
    assert real.status_code == 403
    deid_env = {**env, "FOVEA_DEID_SECRET": DEID_SECRET}
    not_stored = run_fovea("share", generate_uid(), "--deidentified", env=deid_env)
    assert not_stored.returncode == 2 and "is not stored" in not_stored.stderr


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_token_key_finds_the_study_without_mapping_every_study(
    rendition: Rendition, backend: Backend
) -> None:
    o = rendition.original
    with backend.engine.connect() as connection:
        key = study_key(connection, o.study)
    assert key is not None
    hinted = backend.settings(deid_secret=DEID_SECRET).rendition()
    assert hinted is not None
    assert hinted.original_study(backend.engine, new(o.study), key) == o.study
    assert hinted.mapped_studies == 0  # no search through the study list
    assert hinted.original_study(backend.engine, new(o.study), key + 1) == o.study  # a wrong key: searched
    assert hinted.mapped_studies == 1
    wrong_key = issue_share_token(
        [SHARE_SECRET], new(o.study), timedelta(hours=1), deidentified=True, study_key=key + 1
    ).token
    assert rendition.get(f"{rendition.study_path}/metadata", headers=bearer(wrong_key)).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_study_search_names_studies_by_replacement_uid(rendition: Rendition) -> None:
    o = rendition.original
    [mine] = rendition.get("/studies").json()  # the token's search is narrowed to its study
    assert first(mine, STUDY_UID) == new(o.study)
    assert first(mine, RETRIEVE_URL) == f"{rendition.root}{rendition.study_path}"
    assert "Value" not in mine.get("00100010", {})
    other = new(generate_uid())
    assert [first(i, STUDY_UID) for i in rendition.get("/studies", StudyInstanceUID=other).json()] == [
        new(o.study)
    ]
    by_admin = rendition.get("/studies", headers=rendition.admin, StudyInstanceUID=f"{new(o.study)},{other}")
    assert [first(i, STUDY_UID) for i in by_admin.json()] == [new(o.study)]
    rendition.assert_no_original(by_admin.text)
    assert rendition.get("/studies", headers=rendition.admin).status_code == 400  # no listing of every study
    by_original = rendition.get("/studies", headers=rendition.admin, StudyInstanceUID=o.study)
    assert by_original.json() == []
    by_name = rendition.get("/studies", headers=rendition.admin, PatientName="*")
    assert by_name.status_code == 400


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_every_corpus_study_is_served_de_identified(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    with running(backend, worker_pool, codec_pool, deid_allow_burned_in=True) as rendition:
        writer = bearer(new_key(backend, "corpus-writer", "dicom.write"))
        for corpus in corpus_files():  # one at a time: a file refused (another patient) refuses no other
            httpx.post(
                f"{rendition.server.dicomweb}/studies",
                content=multipart_body([corpus.path.read_bytes()]),
                headers={"Content-Type": stow_content_type(), "Accept": "application/dicom+json", **writer},
                timeout=60,
            )
        names = {
            str(pydicom.dcmread(c.path, stop_before_pixels=True).get("PatientName", ""))
            for c in corpus_files()
        }
        for study in sorted({corpus.study_instance_uid for corpus in corpus_files()}):
            path = f"/studies/{new(study)}"
            metadata = rendition.get(f"{path}/metadata", headers=rendition.admin)
            instances = rendition.get(path, headers={**rendition.admin, "Accept": ANY_SYNTAX})
            assert metadata.status_code in (200, 404), (study, metadata.text)
            if instances.status_code == 406:  # the retired big endian syntax is not converted here: all are
                assert ExplicitVRBigEndian in instances.text and metadata.status_code == 200
                continue
            partial = instances.status_code == 206 and metadata.status_code == 200  # some big endian
            assert partial or instances.status_code == metadata.status_code, (study, instances.status_code)
            if metadata.status_code == 200:
                assert study not in metadata.text
                leaked = {name for name in names if len(name) > 3 and name in metadata.text} - {"Anonymized"}
                assert not leaked, study
                for _headers, body in multipart_parts(instances):
                    ds = pydicom.dcmread(io.BytesIO(body))
                    assert ds.StudyInstanceUID == new(study) and ds.PatientIdentityRemoved == "YES"
