"""dicomweb-client, the reference Python DICOMweb client, against a live Fovea: STOW, QIDO and WADO-RS.

Why: a server that passes its own tests can still trip a real client (its Accept headers, its query
strings, how it splits multipart answers). Every transaction dicomweb-client offers is called here on
a small archive of real pydicom files, and the answers are checked for what PS3.18 says they hold:
exact UIDs, counts, Retrieve URLs, and pixels bit for bit where the encoding is lossless.

dicomweb-client 0.61 sends `Host` without the port (it keeps the URL's host name only), and Fovea
derives absolute URLs from that header; the client here sends `X-Forwarded-Host` with the port, which
Fovea honours (app/api/urls.py), so Retrieve URLs and BulkDataURIs come back usable and exact.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    RTDoseStorage,
    generate_uid,
)

import app.imaging.syntaxes  # noqa: F401 - registers the syntaxes pydicom lacks, as the server does
from tests.conftest import LiveServer
from tests.dicom_files import corpus_file

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)

JSON = dict[str, Any]
OCTET = "application/octet-stream"

# Tags of the QIDO-RS return attributes checked below (PS3.18 Tables 10.6.3-3 to 10.6.3-5).
STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID = "0020000D", "0020000E", "00080018"
RETRIEVE_URL, MODALITIES_IN_STUDY, MODALITY = "00081190", "00080061", "00080060"
STUDY_RELATED_SERIES, STUDY_RELATED_INSTANCES = "00201206", "00201208"
SERIES_RELATED_INSTANCES = "00201209"
PATIENT_NAME, PATIENT_ID, STUDY_DATE, STUDY_DESCRIPTION = "00100010", "00100020", "00080020", "00081030"
ROWS, COLUMNS, NUMBER_OF_FRAMES, INSTANCE_NUMBER = "00280010", "00280011", "00280008", "00200013"
PIXEL_DATA = "7FE00010"


@dataclass(frozen=True)
class PatientStudy:
    """Who a study is about, and when: what study searches match on."""

    patient_name: str
    patient_id: str
    study_date: str
    description: str


STUDIES = {
    "A": PatientStudy("Doe^John", "FOVEA-DWC-1", "20210315", "CT and MR of the chest"),
    "B": PatientStudy("Smith^Anna", "FOVEA-DWC-2", "20190601", "Radiotherapy planning"),
    "C": PatientStudy("Doe^Jane", "FOVEA-DWC-3", "20230101", "CT of the head"),
    "D": PatientStudy("Müller^Jürgen", "FOVEA-DWC-4", "20151224", "MR of the knee"),
}
# (study, series, pydicom test file): the series' modality is the file's own. The four MR files hold the
# same pixels (uncompressed, JPEG 2000, RLE and JPEG-LS lossless); rtdose.dcm has 15 frames.
PLAN = (
    ("A", "A1", "CT_small.dcm"),
    ("A", "A1", "CT_small.dcm"),
    ("A", "A2", "MR_small.dcm"),
    ("A", "A2", "MR_small_jp2klossless.dcm"),
    ("B", "B1", "rtdose.dcm"),
    ("B", "B2", "MR_small_RLE.dcm"),
    ("C", "C1", "CT_small.dcm"),
    ("D", "D1", "MR_small_jpeg_ls_lossless.dcm"),
)
MODALITIES = {"A": {"CT", "MR"}, "B": {"MR", "RTDOSE"}, "C": {"CT"}, "D": {"MR"}}


@dataclass(frozen=True)
class Archive:
    """What the live server holds, stored through dicomweb-client, and the client that stored it."""

    client: DICOMwebClient
    base: str  # the DICOMweb root, as the server writes it into Retrieve URLs
    study: dict[str, str]  # "A" -> Study Instance UID
    series: dict[str, str]  # "A1" -> Series Instance UID
    sent: dict[str, Dataset]  # SOP Instance UID -> the data set sent
    source: dict[str, str]  # SOP Instance UID -> the pydicom test file it came from

    def sops(self, series: str) -> list[str]:
        uid = self.series[series]
        return [sop for sop, ds in self.sent.items() if ds.SeriesInstanceUID == uid]

    def sop(self, series: str, source: str) -> str:
        return next(sop for sop in self.sops(series) if self.source[sop] == source)

    def instance_keys(self, series: str, source: str) -> tuple[str, str, str]:
        sop = self.sop(series, source)
        ds = self.sent[sop]
        return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop


def read_source(name: str) -> Dataset:
    """One of pydicom's local test files (never downloaded)."""
    return pydicom.dcmread(corpus_file(name).path)


def fovea_client(server: LiveServer) -> DICOMwebClient:
    """A client whose requests name the server's port (see the module docstring)."""
    return DICOMwebClient(url=server.dicomweb, headers={"X-Forwarded-Host": urlsplit(server.base_url).netloc})


def rewritten(
    source: str, facts: PatientStudy, uids: tuple[str, str, str], numbers: tuple[int, int]
) -> Dataset:
    """A pydicom test file moved into our study and series under a new SOP Instance UID."""
    ds = read_source(source)
    study, series, sop = uids
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName, ds.PatientID = facts.patient_name, facts.patient_id
    ds.StudyDate, ds.StudyDescription = facts.study_date, facts.description
    ds.SeriesNumber, ds.InstanceNumber = numbers
    return ds


@pytest.fixture
def archive(live_server: LiveServer) -> Archive:
    study = {label: str(generate_uid()) for label in STUDIES}
    series = {label: str(generate_uid()) for _, label, _ in PLAN}
    sent: dict[str, Dataset] = {}
    source: dict[str, str] = {}
    datasets = []
    for study_label, series_label, name in PLAN:
        sop = str(generate_uid())
        number = sum(1 for s in sent.values() if s.SeriesInstanceUID == series[series_label]) + 1
        uids = (study[study_label], series[series_label], sop)
        ds = rewritten(name, STUDIES[study_label], uids, (int(series_label[1]), number))
        sent[sop], source[sop] = ds, name
        datasets.append(copy.deepcopy(ds))  # the client may touch what it sends
    client = fovea_client(live_server)

    response = client.store_instances(datasets=datasets)

    stored = [str(item.ReferencedSOPInstanceUID) for item in response.ReferencedSOPSequence]
    assert stored == list(sent)
    assert "FailedSOPSequence" not in response
    return Archive(client, live_server.dicomweb, study, series, sent, source)


def values(item: JSON, tag: str) -> list[Any]:
    return list(item.get(tag, {}).get("Value", []))


def value(item: JSON, tag: str) -> Any:
    found = values(item, tag)
    assert len(found) == 1, (tag, item.get(tag))
    return found[0]


def uids(results: list[JSON], tag: str) -> list[str]:
    return [value(item, tag) for item in results]


def by_uid(results: list[JSON], tag: str) -> dict[str, JSON]:
    return {value(item, tag): item for item in results}


def person_name(item: JSON) -> str:
    return str(value(item, PATIENT_NAME)["Alphabetic"])


def study_uids(archive: Archive, *labels: str) -> set[str]:
    return {archive.study[label] for label in labels}


# --- STOW-RS ------------------------------------------------------------------------------------------


def test_store_answers_a_retrieve_url_per_instance(archive: Archive) -> None:
    sop = archive.sop("A2", "MR_small_jp2klossless.dcm")
    more = copy.deepcopy(archive.sent[sop])  # stored again: replaced, with its Retrieve URL
    response = archive.client.store_instances(datasets=[more])
    [item] = response.ReferencedSOPSequence
    assert item.ReferencedSOPInstanceUID == sop
    assert item.RetrieveURL == (
        f"{archive.base}/studies/{archive.study['A']}/series/{archive.series['A2']}/instances/{sop}"
    )


# --- QIDO-RS: studies ---------------------------------------------------------------------------------


def test_search_for_studies_lists_every_study_with_its_counts(archive: Archive) -> None:
    results = archive.client.search_for_studies()

    found = by_uid(results, STUDY_INSTANCE_UID)
    assert set(found) == set(archive.study.values())
    for label, uid in archive.study.items():
        item = found[uid]
        series = [s for s in archive.series if s.startswith(label)]
        instances = [sop for s in series for sop in archive.sops(s)]
        assert value(item, STUDY_RELATED_SERIES) == len(series), label
        assert value(item, STUDY_RELATED_INSTANCES) == len(instances), label
        assert set(values(item, MODALITIES_IN_STUDY)) == MODALITIES[label], label
        assert value(item, RETRIEVE_URL) == f"{archive.base}/studies/{uid}"
        assert value(item, PATIENT_ID) == STUDIES[label].patient_id
        assert person_name(item) == STUDIES[label].patient_name
        assert value(item, STUDY_DATE) == STUDIES[label].study_date


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"PatientID": "FOVEA-DWC-2"}, "B"),
        ({"PatientName": "Doe*"}, "AC"),
        ({"PatientName": "Doe^J?hn"}, "A"),
        ({"PatientName": "Müller*"}, "D"),
        ({"StudyDate": "20200101-"}, "AC"),
        ({"StudyDate": "20190101-20191231"}, "B"),
        ({"StudyDate": "-20191231"}, "BD"),
        ({"ModalitiesInStudy": "MR"}, "ABD"),
        ({"ModalitiesInStudy": "CT"}, "AC"),
        ({"ModalitiesInStudy": "RTDOSE", "PatientName": "Smith*"}, "B"),
        ({"PatientName": "Doe*", "StudyDate": "20220101-"}, "C"),
        ({"PatientID": "NOBODY"}, ""),
    ],
    ids=str,
)
def test_search_for_studies_matches(archive: Archive, filters: dict[str, str], expected: str) -> None:
    results = archive.client.search_for_studies(search_filters=filters)
    assert sorted(uids(results, STUDY_INSTANCE_UID)) == sorted(study_uids(archive, *expected))


def test_search_for_studies_by_uid_and_uid_list(archive: Archive) -> None:
    one = archive.client.search_for_studies(search_filters={"StudyInstanceUID": archive.study["B"]})
    assert uids(one, STUDY_INSTANCE_UID) == [archive.study["B"]]
    listed = archive.client.search_for_studies(
        search_filters={"StudyInstanceUID": f"{archive.study['A']},{archive.study['D']}"}
    )
    assert set(uids(listed, STUDY_INSTANCE_UID)) == study_uids(archive, "A", "D")


@pytest.mark.usefixtures("archive")
def test_no_match_is_200_with_an_empty_array(live_server: LiveServer) -> None:
    """PS3.18 10.6.3.2: an empty result is a success, not an error (dicomweb-client hides which)."""
    response = requests.get(
        f"{live_server.dicomweb}/studies",
        params={"PatientID": "NOBODY"},
        headers={"Accept": "application/dicom+json"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json() == []


def test_includefield_returns_the_attribute(archive: Archive) -> None:
    results = archive.client.search_for_studies(
        fields=["StudyDescription"], search_filters={"PatientID": "FOVEA-DWC-4"}
    )
    [item] = results
    assert value(item, STUDY_DESCRIPTION) == "MR of the knee"
    assert value(item, STUDY_INSTANCE_UID) == archive.study["D"]


def test_limit_and_offset_page_through_every_study(archive: Archive) -> None:
    first = archive.client.search_for_studies(limit=3)
    rest = archive.client.search_for_studies(limit=3, offset=3)
    beyond = archive.client.search_for_studies(limit=3, offset=4)

    assert len(first) == 3 and len(rest) == 1 and beyond == []
    paged = uids(first, STUDY_INSTANCE_UID) + uids(rest, STUDY_INSTANCE_UID)
    assert sorted(paged) == sorted(archive.study.values())
    one_by_one = archive.client.search_for_studies(limit=1, get_remaining=True)
    assert sorted(uids(one_by_one, STUDY_INSTANCE_UID)) == sorted(archive.study.values())


def test_fuzzymatching_still_finds_the_literal_match(archive: Archive) -> None:
    """Fuzzy semantic matching of names may find more (PS3.18 8.3.4.1), never fewer than literal."""
    results = archive.client.search_for_studies(
        fuzzymatching=True, search_filters={"PatientName": "Doe^John"}
    )
    found = set(uids(results, STUDY_INSTANCE_UID))
    assert archive.study["A"] in found
    assert archive.study["B"] not in found  # Smith^Anna is no fuzzy Doe^John


# --- QIDO-RS: series ----------------------------------------------------------------------------------


def test_search_for_series_everywhere_and_in_a_study(archive: Archive) -> None:
    everywhere = archive.client.search_for_series()
    in_a = archive.client.search_for_series(study_instance_uid=archive.study["A"])

    assert sorted(uids(everywhere, SERIES_INSTANCE_UID)) == sorted(archive.series.values())
    found = by_uid(in_a, SERIES_INSTANCE_UID)
    assert set(found) == {archive.series["A1"], archive.series["A2"]}
    for label, modality in (("A1", "CT"), ("A2", "MR")):
        item = found[archive.series[label]]
        assert value(item, MODALITY) == modality
        assert value(item, SERIES_RELATED_INSTANCES) == 2
        assert value(item, RETRIEVE_URL) == (
            f"{archive.base}/studies/{archive.study['A']}/series/{archive.series[label]}"
        )
    for item in everywhere:  # searched across studies: each series names its study
        series_label = next(k for k, v in archive.series.items() if v == value(item, SERIES_INSTANCE_UID))
        assert value(item, STUDY_INSTANCE_UID) == archive.study[series_label[0]]
        assert value(item, SERIES_RELATED_INSTANCES) == len(archive.sops(series_label))


@pytest.mark.parametrize(
    ("study", "filters", "expected"),
    [
        (None, {"Modality": "MR"}, ("A2", "B2", "D1")),
        ("A", {"Modality": "MR"}, ("A2",)),
        ("B", {"Modality": "CT"}, ()),
        (None, {"PatientID": "FOVEA-DWC-2"}, ("B1", "B2")),
        (None, {"SeriesNumber": "2"}, ("A2", "B2")),
        (None, {"StudyDate": "20200101-", "Modality": "CT"}, ("A1", "C1")),
    ],
    ids=str,
)
def test_search_for_series_matches(
    archive: Archive, study: str | None, filters: dict[str, str], expected: tuple[str, ...]
) -> None:
    results = archive.client.search_for_series(
        study_instance_uid=archive.study[study] if study else None, search_filters=filters
    )
    assert sorted(uids(results, SERIES_INSTANCE_UID)) == sorted(archive.series[s] for s in expected)


def test_search_for_series_by_series_uid(archive: Archive) -> None:
    results = archive.client.search_for_series(search_filters={"SeriesInstanceUID": archive.series["B1"]})
    [item] = results
    assert value(item, SERIES_INSTANCE_UID) == archive.series["B1"]
    assert value(item, MODALITY) == "RTDOSE"
    assert value(item, STUDY_INSTANCE_UID) == archive.study["B"]


def test_search_for_series_in_an_unknown_study_is_empty(archive: Archive) -> None:
    assert archive.client.search_for_series(study_instance_uid=generate_uid()) == []


# --- QIDO-RS: instances -------------------------------------------------------------------------------


def test_search_for_instances_at_every_scope(archive: Archive) -> None:
    everywhere = archive.client.search_for_instances()
    in_a = archive.client.search_for_instances(study_instance_uid=archive.study["A"])
    in_b1 = archive.client.search_for_instances(
        study_instance_uid=archive.study["B"], series_instance_uid=archive.series["B1"]
    )

    assert sorted(uids(everywhere, SOP_INSTANCE_UID)) == sorted(archive.sent)
    assert sorted(uids(in_a, SOP_INSTANCE_UID)) == sorted(archive.sops("A1") + archive.sops("A2"))
    [dose] = in_b1
    sop = archive.sop("B1", "rtdose.dcm")
    assert value(dose, SOP_INSTANCE_UID) == sop
    assert value(dose, RETRIEVE_URL) == (
        f"{archive.base}/studies/{archive.study['B']}/series/{archive.series['B1']}/instances/{sop}"
    )
    assert (value(dose, ROWS), value(dose, COLUMNS), value(dose, NUMBER_OF_FRAMES)) == (10, 10, 15)
    for item in everywhere:  # not scoped to a study or series: each instance names both
        ds = archive.sent[value(item, SOP_INSTANCE_UID)]
        assert value(item, STUDY_INSTANCE_UID) == ds.StudyInstanceUID
        assert value(item, SERIES_INSTANCE_UID) == ds.SeriesInstanceUID
        assert value(item, INSTANCE_NUMBER) == ds.InstanceNumber
    for item in in_a:
        assert (
            value(item, SERIES_INSTANCE_UID) == archive.sent[value(item, SOP_INSTANCE_UID)].SeriesInstanceUID
        )


@pytest.mark.parametrize(
    ("study", "filters", "expected"),
    [
        (None, {"Modality": "MR"}, ("A2", "B2", "D1")),
        (None, {"PatientName": "Doe*"}, ("A1", "A2", "C1")),
        ("A", {"SeriesInstanceUID": "A1"}, ("A1",)),
        (None, {"SOPClassUID": RTDoseStorage}, ("B1",)),  # RT Dose Storage
        ("A", {"InstanceNumber": "2"}, ("A1", "A2")),
    ],
    ids=str,
)
def test_search_for_instances_matches(
    archive: Archive, study: str | None, filters: dict[str, str], expected: tuple[str, ...]
) -> None:
    resolved = {k: archive.series.get(v, v) for k, v in filters.items()}
    results = archive.client.search_for_instances(
        study_instance_uid=archive.study[study] if study else None, search_filters=resolved
    )
    wanted = [
        sop
        for label in expected
        for sop in archive.sops(label)
        if "InstanceNumber" not in filters or archive.sent[sop].InstanceNumber == 2
    ]
    assert sorted(uids(results, SOP_INSTANCE_UID)) == sorted(wanted)


def test_search_for_instances_by_sop_uid_and_pages(archive: Archive) -> None:
    sop = archive.sop("D1", "MR_small_jpeg_ls_lossless.dcm")
    [item] = archive.client.search_for_instances(search_filters={"SOPInstanceUID": sop})
    assert value(item, SOP_INSTANCE_UID) == sop

    pages = [archive.client.search_for_instances(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [len(page) for page in pages] == [3, 3, 2, 0]
    assert sorted(uid for page in pages for uid in uids(page, SOP_INSTANCE_UID)) == sorted(archive.sent)


# --- WADO-RS: instances -------------------------------------------------------------------------------

MR_SOURCES = (
    "MR_small.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
)


def reference_pixels(source: str) -> np.ndarray:
    """What a lossless file decodes to: the MR files share MR_small.dcm's pixels."""
    reference = "MR_small.dcm" if source in MR_SOURCES else source
    return read_source(reference).pixel_array


def test_retrieve_study_gives_every_instance_with_its_pixels(archive: Archive) -> None:
    received = archive.client.retrieve_study(archive.study["A"])

    assert sorted(str(ds.SOPInstanceUID) for ds in received) == sorted(
        archive.sops("A1") + archive.sops("A2")
    )
    for ds in received:  # transcoded to Explicit VR Little Endian by default (PS3.18 8.7.3.5.2)
        sop = str(ds.SOPInstanceUID)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert np.array_equal(ds.pixel_array, reference_pixels(archive.source[sop])), archive.source[sop]
        assert ds.PatientName == "Doe^John" and ds.StudyDescription == "CT and MR of the chest"


def test_iter_study_streams_the_same_instances(archive: Archive) -> None:
    streamed = list(archive.client.iter_study(archive.study["B"]))
    assert sorted(str(ds.SOPInstanceUID) for ds in streamed) == sorted(
        archive.sops("B1") + archive.sops("B2")
    )
    for ds in streamed:
        assert np.array_equal(ds.pixel_array, reference_pixels(archive.source[str(ds.SOPInstanceUID)]))


def test_retrieve_series_as_stored_keeps_the_compressed_bytes(archive: Archive) -> None:
    received = archive.client.retrieve_series(
        archive.study["A"], archive.series["A2"], media_types=(("application/dicom", "*"),)
    )
    assert sorted(str(ds.SOPInstanceUID) for ds in received) == sorted(archive.sops("A2"))
    for ds in received:
        sent = archive.sent[str(ds.SOPInstanceUID)]
        assert ds.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
        assert ds.PixelData == sent.PixelData  # bit for bit, compressed or not


def test_iter_series_streams_every_instance(archive: Archive) -> None:
    streamed = list(archive.client.iter_series(archive.study["A"], archive.series["A1"]))
    assert sorted(str(ds.SOPInstanceUID) for ds in streamed) == sorted(archive.sops("A1"))
    for ds in streamed:
        assert ds.PixelData == archive.sent[str(ds.SOPInstanceUID)].PixelData


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, JPEGLSLossless, JPEG2000Lossless, RLELossless])
def test_retrieve_instance_in_a_lossless_syntax_is_bit_exact(archive: Archive, syntax: str) -> None:
    keys = archive.instance_keys("B2", "MR_small_RLE.dcm")
    ds = archive.client.retrieve_instance(*keys, media_types=(("application/dicom", syntax),))
    assert ds.SOPInstanceUID == keys[2]
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(ds.pixel_array, reference_pixels("MR_small.dcm"))


def test_retrieve_multiframe_instance(archive: Archive) -> None:
    keys = archive.instance_keys("B1", "rtdose.dcm")
    ds = archive.client.retrieve_instance(*keys)
    original = read_source("rtdose.dcm")
    assert int(ds.NumberOfFrames) == 15
    assert np.array_equal(ds.pixel_array, original.pixel_array)


# --- WADO-RS: metadata --------------------------------------------------------------------------------


def test_metadata_at_every_level(archive: Archive) -> None:
    study = archive.client.retrieve_study_metadata(archive.study["A"])
    series = archive.client.retrieve_series_metadata(archive.study["A"], archive.series["A1"])
    keys = archive.instance_keys("A2", "MR_small_jp2klossless.dcm")
    instance = archive.client.retrieve_instance_metadata(*keys)

    assert sorted(uids(study, SOP_INSTANCE_UID)) == sorted(archive.sops("A1") + archive.sops("A2"))
    assert sorted(uids(series, SOP_INSTANCE_UID)) == sorted(archive.sops("A1"))
    assert value(instance, SOP_INSTANCE_UID) == keys[2]
    for item in [*study, instance]:
        served = Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b"")
        sent = archive.sent[str(served.SOPInstanceUID)]
        for keyword in (
            "PatientName",
            "PatientID",
            "StudyDate",
            "Modality",
            "Rows",
            "Columns",
            "SeriesNumber",
        ):
            assert served[keyword].value == sent[keyword].value, keyword
    assert instance[PIXEL_DATA]["BulkDataURI"] == (
        f"{archive.base}/studies/{keys[0]}/series/{keys[1]}/instances/{keys[2]}/bulkdata/{PIXEL_DATA}"
    )


def test_retrieve_bulkdata_from_a_metadata_uri(archive: Archive) -> None:
    keys = archive.instance_keys("A1", "CT_small.dcm")
    item = archive.client.retrieve_instance_metadata(*keys)
    sent = archive.sent[keys[2]]
    pixel_uri, private_uri = item[PIXEL_DATA]["BulkDataURI"], item["00431029"]["BulkDataURI"]  # GE OB

    pixels = archive.client.retrieve_bulkdata(pixel_uri)
    streamed = b"".join(archive.client.iter_bulkdata(pixel_uri))
    private = archive.client.retrieve_bulkdata(private_uri)
    # A byte range of a value (206); the Pixel Data URI answers as pixeldata, whole frames (conformance 12)
    some_bytes = archive.client.retrieve_bulkdata(private_uri, byte_range=(2, 9))

    assert pixels == [sent.PixelData]
    assert streamed == sent.PixelData
    assert private == [sent[0x00431029].value]
    assert some_bytes == [sent[0x00431029].value[2:10]]


# --- WADO-RS: frames ----------------------------------------------------------------------------------


def native_frames(source: str) -> list[bytes]:
    """The frames of a file as uncompressed little-endian bytes."""
    pixels = reference_pixels(source)
    ds = read_source(source)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    frames = pixels.reshape(count, -1) if count > 1 else pixels.reshape(1, -1)
    return [frame.astype(frame.dtype.newbyteorder("<")).tobytes() for frame in frames]


def test_frames_of_a_multiframe_instance_in_the_asked_order(archive: Archive) -> None:
    keys = archive.instance_keys("B1", "rtdose.dcm")
    expected = native_frames("rtdose.dcm")

    frames = archive.client.retrieve_instance_frames(*keys, frame_numbers=[3, 1, 15], media_types=(OCTET,))
    streamed = list(archive.client.iter_instance_frames(*keys, frame_numbers=[15, 2], media_types=(OCTET,)))

    assert frames == [expected[2], expected[0], expected[14]]
    assert streamed == [expected[14], expected[1]]


@pytest.mark.parametrize(
    ("source", "media_type", "syntax"),
    [
        ("MR_small_jp2klossless.dcm", "image/jp2", JPEG2000Lossless),
        ("MR_small_jpeg_ls_lossless.dcm", "image/jls", JPEGLSLossless),
        ("MR_small_RLE.dcm", "image/dicom-rle", RLELossless),
    ],
    ids=["j2k", "jls", "rle"],
)
def test_compressed_frame_as_stored_and_native(
    archive: Archive, source: str, media_type: str, syntax: str
) -> None:
    series = next(s for s in archive.series if source in {archive.source[sop] for sop in archive.sops(s)})
    keys = archive.instance_keys(series, source)
    [stored_frame] = generate_frames(archive.sent[keys[2]].PixelData, number_of_frames=1)

    [as_stored] = archive.client.retrieve_instance_frames(
        *keys, frame_numbers=[1], media_types=((media_type, syntax),)
    )
    [native] = archive.client.retrieve_instance_frames(*keys, frame_numbers=[1], media_types=(OCTET,))
    [streamed] = archive.client.iter_instance_frames(*keys, frame_numbers=[1], media_types=(OCTET,))

    assert as_stored.rstrip(b"\x00") == stored_frame.rstrip(b"\x00")  # a fragment may carry one pad byte
    assert native == streamed == native_frames("MR_small.dcm")[0]


def test_uncompressed_frame_transcoded_on_request(archive: Archive) -> None:
    keys = archive.instance_keys("A1", "CT_small.dcm")
    [jls] = archive.client.retrieve_instance_frames(
        *keys, frame_numbers=[1], media_types=(("image/jls", JPEGLSLossless),)
    )
    ds = archive.sent[keys[2]]
    layout = {
        "rows": ds.Rows,
        "columns": ds.Columns,
        "samples_per_pixel": 1,
        "bits_allocated": 16,
        "bits_stored": ds.BitsStored,
        "pixel_representation": ds.PixelRepresentation,
        "photometric_interpretation": "MONOCHROME2",
        "number_of_frames": 1,
    }
    # a JPEG-LS codestream, decoded as the one frame of an encapsulated value
    decoded, _ = get_decoder(JPEGLSLossless).as_array(encapsulate([jls]), **layout)
    assert np.array_equal(decoded, ds.pixel_array)


# --- WADO-RS: rendered --------------------------------------------------------------------------------


def test_rendered_calls(archive: Archive) -> None:
    """Every rendered call dicomweb-client has, answered with the image type it asked for."""
    study, series, sop = archive.instance_keys("A1", "CT_small.dcm")
    source = archive.sent[sop]
    client = archive.client

    png = client.retrieve_instance_rendered(study, series, sop, media_types=("image/png",))
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (source.Columns, source.Rows))

    jpeg = client.retrieve_instance_frames_rendered(study, series, sop, [1], media_types=("image/jpeg",))
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"

    thumbnail = client.retrieve_series_rendered(study, series, params={"viewport": "64,64"})
    assert max(Image.open(io.BytesIO(thumbnail)).size) == 64
