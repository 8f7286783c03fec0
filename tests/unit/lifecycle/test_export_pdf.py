"""The PDF report: key slices by position, and what PDF/A-2b asks of the document."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pypdf import PdfReader

from app.lifecycle.export_pdf import SliceSpecError, parse_slices, pick_key_slices, report_page, report_pdf
from tests.dicom_files import make_instance


def header(number: int, z: float | None) -> Dataset:
    ds = Dataset()
    ds.InstanceNumber = number
    if z is not None:
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, z]
    return ds


def test_slices_parse_as_fractions_and_bad_ones_are_refused() -> None:
    assert parse_slices("25%,50%, 75%") == (0.25, 0.5, 0.75)
    assert parse_slices("0,100") == (0.0, 1.0)
    for bad in ("half", "120%", "-5%"):
        with pytest.raises(SliceSpecError):
            parse_slices(bad)


def test_key_slices_follow_image_position_not_storage_order() -> None:
    # Stored out of order: instance numbers say nothing of where each slice lies.
    headers = [header(1, 30.0), header(2, 10.0), header(3, 50.0), header(4, 20.0), header(5, 40.0)]
    assert pick_key_slices(headers, (0.0, 0.5, 1.0)) == [(1, 1), (0, 3), (2, 5)]  # z 10, 30, 50
    assert pick_key_slices(headers, (0.5, 0.5)) == [(0, 3)]  # the same slice once


def test_without_positions_instance_numbers_order_the_series() -> None:
    headers = [header(3, None), header(1, None), header(2, None)]
    assert pick_key_slices(headers, (0.0, 1.0)) == [(1, 1), (0, 3)]


def test_the_report_is_marked_pdf_a_2b_with_an_srgb_output_intent() -> None:
    ds = pydicom.dcmread(io.BytesIO(make_instance(rows=16, columns=16)))
    ds.WindowCenter, ds.WindowWidth = 40, 400
    pages = [report_page(ds, 1, 2), report_page(ds, 2, 2)]
    assert pages[0].caption.startswith("Study Date 2026-01-01   Modality CT")
    moment = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    reader = PdfReader(io.BytesIO(report_pdf(pages, "Key images", now=moment)))
    assert len(reader.pages) == 2
    xmp = reader.xmp_metadata
    assert xmp is not None
    trailer: Any = reader.trailer  # pypdf types every object in the tree as PdfObject
    raw = trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>2</pdfaid:part>" in raw and "<pdfaid:conformance>B</pdfaid:conformance>" in raw
    assert reader.metadata is not None and reader.metadata.title == "Key images"
    [intent] = trailer["/Root"]["/OutputIntents"]
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"].get_object()["/N"] == 3
    assert len(trailer["/ID"]) == 2
    assert b"Doe" not in report_pdf(pages, "Key images", now=moment)  # nothing of the patient in the file
