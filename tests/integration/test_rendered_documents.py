"""The rendered resource of an Encapsulated PDF instance is the PDF (application/pdf), of an Encapsulated
CDA instance the CDA document (text/xml): byte for byte what was encapsulated, without padding."""

from __future__ import annotations

import io

import httpx
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    EncapsulatedCDAStorage,
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from app.dicomweb.documents import RENDERED_DOCUMENT_MEDIA_TYPES
from tests.conftest import Backend, LiveServer
from tests.integration.fixity_helpers import blob_key_of, remove
from tests.integration.stow_helpers import post_stow
from tests.integration.test_verify_wado import verify


def a_pdf() -> bytes:
    """A real one-page PDF (Pillow writes it), a few kilobytes: stored as bulk data."""
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((64, 64)).save(buffer, "PDF")
    return buffer.getvalue()


def a_cda(padding: int = 0) -> bytes:
    """A small HL7 CDA document; odd length, so the stored value carries a padding byte."""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Befund für Müller</title>'
        f"<component>{'x' * padding}</component></ClinicalDocument>"
    )
    data = text.encode()
    return data if len(data) % 2 else data + b" "


def encapsulated(document: bytes, sop_class: str, mime_type: str) -> tuple[bytes, Dataset]:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName = "FOVEA-DOC", "Doe^Jane"
    ds.StudyDate, ds.Modality = "20260101", "DOC"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "Report"
    ds.MIMETypeOfEncapsulatedDocument = mime_type
    ds.EncapsulatedDocumentLength = len(document)
    ds.EncapsulatedDocument = document  # pydicom pads an odd value to an even length
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), ds


def rendered_url(server: LiveServer, ds: Dataset) -> str:
    return (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/rendered"
    )


def test_the_table_names_the_pdf_and_cda_storage_classes() -> None:
    assert {
        EncapsulatedPDFStorage: "application/pdf",
        EncapsulatedCDAStorage: "text/xml",
    } == RENDERED_DOCUMENT_MEDIA_TYPES


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
@pytest.mark.parametrize(
    ("document", "sop_class", "mime_type"),
    [
        pytest.param(a_pdf(), EncapsulatedPDFStorage, "application/pdf", id="pdf"),
        pytest.param(a_cda(), EncapsulatedCDAStorage, "text/xml", id="small-cda-inline"),
        pytest.param(a_cda(padding=5_000_000), EncapsulatedCDAStorage, "text/xml", id="large-cda-streamed"),
    ],
)
def test_the_rendered_document_is_the_document_itself(
    live_server: LiveServer, document: bytes, sop_class: str, mime_type: str
) -> None:
    sent, ds = encapsulated(document, sop_class, mime_type)
    assert post_stow(live_server, [sent]).status_code == 200
    assert len(pydicom.dcmread(io.BytesIO(sent)).EncapsulatedDocument) % 2 == 0  # padded when stored

    response = httpx.get(rendered_url(live_server, ds), timeout=60)

    assert response.status_code == 200
    assert response.headers["content-type"] == mime_type  # no charset claimed for the XML
    assert response.content == document
    assert int(response.headers["content-length"]) == len(document)
    again = httpx.get(rendered_url(live_server, ds), headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_accept_header_is_honoured(live_server: LiveServer) -> None:
    sent, ds = encapsulated(a_pdf(), EncapsulatedPDFStorage, "application/pdf")
    assert post_stow(live_server, [sent]).status_code == 200
    url = rendered_url(live_server, ds)
    for accept in ("application/pdf", "application/*", "*/*", "image/jpeg, application/pdf;q=0.5"):
        assert httpx.get(url, headers={"Accept": accept}).status_code == 200, accept
    refused = httpx.get(url, headers={"Accept": "image/jpeg"})
    assert refused.status_code == 406
    assert refused.json()["error"] == (
        "no acceptable media type; this instance is rendered as application/pdf (the document)"
    )
    assert httpx.get(url, headers={"Accept": "*/*, application/pdf;q=0"}).status_code == 406
    by_parameter = httpx.get(url, params={"accept": "application/pdf"}, headers={"Accept": "image/png"})
    assert by_parameter.status_code == 200  # the parameter decides first (PS3.18 8.3.3.1)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_document_has_no_thumbnail_and_a_flagged_one_answers_410(
    live_server: LiveServer, backend: Backend
) -> None:
    sent, ds = encapsulated(a_pdf(), EncapsulatedPDFStorage, "application/pdf")
    assert post_stow(live_server, [sent]).status_code == 200
    thumbnail = httpx.get(rendered_url(live_server, ds).replace("/rendered", "/thumbnail"))
    assert thumbnail.status_code == 404  # nothing to render as an image

    remove(backend, blob_key_of(backend, ds.SOPInstanceUID))
    verify(backend)
    gone = httpx.get(rendered_url(live_server, ds))
    assert gone.status_code == 410
    assert "missing" in gone.json()["error"]
