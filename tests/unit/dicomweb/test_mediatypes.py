"""DICOMweb media-type tables (PS3.18 Tables 8.7.3-2, 8.7.3-4, 8.7.3-5, 10.4.4-1)."""

from __future__ import annotations

import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from app.dicomweb.mediatypes import (
    CATEGORY_DEFAULTS,
    COMPRESSED_BULK_MEDIA_TYPES,
    DICOM_MEDIA_TYPES,
    MEDIA_TYPE_ROWS,
    UNCOMPRESSED_BULK_MEDIA_TYPES,
    DefaultMediaType,
    ResourceCategory,
    bulk_media_type_for,
    canonical_media_type,
    default_transfer_syntax,
    is_lossy,
    is_uncompressed,
    multipart_content_type,
    part_content_type,
    rows_for_media_type,
    transfer_syntax_rows,
    transfer_syntaxes_for,
)
from app.imaging.syntaxes import find_transfer_syntax

ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
TS = "1.2.840.10008.1.2.4."


@pytest.mark.parametrize(
    ("media_type", "syntaxes"),
    [
        ("application/octet-stream", (ExplicitVRLittleEndian,)),
        ("image/jpeg", (TS + "70", TS + "50", TS + "51", TS + "57")),
        ("image/dicom-rle", (RLELossless,)),
        ("image/jls", (TS + "80", TS + "81")),
        ("image/jp2", (TS + "90", TS + "91")),
        ("image/jpx", (TS + "92", TS + "93")),
        ("image/jphc", (TS + "201", TS + "202", TS + "203")),
        ("image/jxl", (TS + "110", TS + "111", TS + "112")),
        ("application/x-deflate", (DEFLATED_FRAMES,)),
        ("video/mpeg", (TS + "100", TS + "101", TS + "100.1", TS + "101.1")),
        (
            "video/mp4",
            (
                *(TS + n for n in ("102", "103", "104", "105", "106")),
                *(TS + n + ".1" for n in ("102", "103", "104", "105", "106")),
            ),
        ),
        ("video/H265", (TS + "107", TS + "108")),
    ],
)
def test_bulk_media_types_carry_their_table_syntaxes_default_first(
    media_type: str, syntaxes: tuple[str, ...]
) -> None:
    assert transfer_syntaxes_for(media_type) == syntaxes
    assert default_transfer_syntax(media_type) == syntaxes[0]


def test_application_dicom_defaults_to_explicit_vr_le_and_carries_every_compressed_syntax() -> None:
    assert default_transfer_syntax("application/dicom") == ExplicitVRLittleEndian
    carried = set(transfer_syntaxes_for("application/dicom"))
    assert {DeflatedExplicitVRLittleEndian, ENCAPSULATED_UNCOMPRESSED} <= carried
    assert {row.transfer_syntax for row in COMPRESSED_BULK_MEDIA_TYPES} <= carried


@pytest.mark.parametrize("forbidden", [ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_implicit_vr_and_big_endian_are_never_offered(forbidden: str) -> None:
    assert all(row.transfer_syntax != forbidden for row in MEDIA_TYPE_ROWS)


def test_every_row_names_a_syntax_of_the_registry() -> None:
    assert all(find_transfer_syntax(row.transfer_syntax) is not None for row in MEDIA_TYPE_ROWS)


def test_each_media_type_has_exactly_one_default_row_and_it_comes_first() -> None:
    for media_type in {row.media_type for row in MEDIA_TYPE_ROWS}:
        rows = rows_for_media_type(media_type)
        assert [row.default for row in rows] == [True] + [False] * (len(rows) - 1), media_type


def test_syntax_to_media_type_is_the_inverse_of_the_bulk_rows() -> None:
    bulk_rows = (*UNCOMPRESSED_BULK_MEDIA_TYPES, *COMPRESSED_BULK_MEDIA_TYPES)
    assert len({row.transfer_syntax for row in bulk_rows}) == len(bulk_rows)  # one media type per syntax
    for row in bulk_rows:
        assert bulk_media_type_for(row.transfer_syntax) == row.media_type
        assert row.transfer_syntax in transfer_syntaxes_for(row.media_type)


def test_syntaxes_without_a_bulk_media_type() -> None:
    assert bulk_media_type_for(ImplicitVRLittleEndian) is None
    assert bulk_media_type_for(ENCAPSULATED_UNCOMPRESSED) is None
    assert bulk_media_type_for("1.2.3") is None


def test_rows_belong_to_the_category_their_table_serves() -> None:
    assert {row.category for row in DICOM_MEDIA_TYPES} == {ResourceCategory.INSTANCE}
    bulk_rows = (*UNCOMPRESSED_BULK_MEDIA_TYPES, *COMPRESSED_BULK_MEDIA_TYPES)
    assert {row.category for row in bulk_rows} == {ResourceCategory.BULKDATA}


def test_deflated_frames_are_labelled_x_deflate_and_the_draft_name_is_an_input_alias() -> None:
    assert bulk_media_type_for(DEFLATED_FRAMES) == "application/x-deflate"
    assert canonical_media_type("application/vnd.dicom-deflate") == "application/x-deflate"
    assert transfer_syntaxes_for("Application/VND.dicom-deflate") == (DEFLATED_FRAMES,)


def test_media_type_lookup_ignores_case_and_answers_in_the_table_spelling() -> None:
    assert canonical_media_type("VIDEO/h265") == "video/H265"
    assert default_transfer_syntax("Image/JLS") == TS + "80"
    assert rows_for_media_type("image/png") == ()
    assert canonical_media_type("Image/PNG") == "image/png"


@pytest.mark.parametrize(
    ("syntax", "uncompressed"),
    [
        (ExplicitVRLittleEndian, True),
        (ImplicitVRLittleEndian, True),
        (ExplicitVRBigEndian, True),
        (DeflatedExplicitVRLittleEndian, True),
        (ENCAPSULATED_UNCOMPRESSED, True),
        (DEFLATED_FRAMES, False),
        (TS + "80", False),
        ("1.2.3", False),
    ],
)
def test_encapsulated_uncompressed_counts_as_uncompressed(syntax: str, uncompressed: bool) -> None:
    assert is_uncompressed(syntax) is uncompressed


@pytest.mark.parametrize(
    ("syntax", "lossy"),
    [
        (TS + "80", False),
        (TS + "81", True),
        (TS + "91", True),
        (TS + "50", True),
        (ExplicitVRLittleEndian, False),
    ],
)
def test_either_syntaxes_count_as_lossy(syntax: str, lossy: bool) -> None:
    assert is_lossy(syntax) is lossy


@pytest.mark.parametrize(
    ("category", "default"),
    [
        (ResourceCategory.INSTANCE, DefaultMediaType("application/dicom", multipart=True)),
        (ResourceCategory.METADATA, DefaultMediaType("application/dicom+json", multipart=False)),
        (ResourceCategory.BULKDATA, DefaultMediaType("application/octet-stream", multipart=True)),
        (ResourceCategory.RENDERED, DefaultMediaType("image/jpeg", multipart=False)),
        (ResourceCategory.THUMBNAIL, DefaultMediaType("image/jpeg", multipart=False)),
    ],
)
def test_category_default_media_types(category: ResourceCategory, default: DefaultMediaType) -> None:
    assert CATEGORY_DEFAULTS[category] == default


def test_content_types_name_the_part_type_and_syntax() -> None:
    assert part_content_type("image/jls", TS + "80") == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert multipart_content_type("image/jls") == 'multipart/related; type="image/jls"'


@pytest.mark.parametrize(
    ("media_type", "parameter", "stored", "expected"),
    [
        ("image/jls", None, ExplicitVRLittleEndian, [TS + "80"]),
        ("image/jls", None, TS + "81", [TS + "81", TS + "80"]),  # lossy stored first: never relabelled
        # lossy data may come back as stored
        ("application/dicom", None, TS + "50", [ExplicitVRLittleEndian, TS + "50"]),
        ("application/octet-stream", None, TS + "50", [ExplicitVRLittleEndian]),
        ("image/jp2", "*", TS + "91", [TS + "91", TS + "90"]),
        ("image/jp2", "*", ExplicitVRLittleEndian, [TS + "90", TS + "91"]),
        ("application/octet-stream", "*", TS + "80", [ExplicitVRLittleEndian]),
        ("image/jls", TS + "81", ExplicitVRLittleEndian, [TS + "81"]),
        ("image/jls", TS + "90", ExplicitVRLittleEndian, []),
        ("image/png", None, ExplicitVRLittleEndian, []),
    ],
)
def test_transfer_syntax_parameter_names_rows_best_first(
    media_type: str, parameter: str | None, stored: str, expected: list[str]
) -> None:
    rows = transfer_syntax_rows(media_type, parameter, stored)
    assert [row.transfer_syntax for row in rows] == expected
