"""Accept parsing and STOW-RS response-type selection (PS3.18 8.7, RFC 9110 12.5.1)."""

from __future__ import annotations

import pytest

from app.dicomweb.errors import NotAcceptable
from app.dicomweb.negotiation import (
    MediaRange,
    negotiate_store_response_type,
    ordered_by_preference,
    parse_accept,
)


def test_parse_accept_reads_quoted_and_unquoted_parameters() -> None:
    ranges = parse_accept(
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1, '
        "multipart/related; type=application/octet-stream; q=0.5"
    )
    assert ranges == [
        MediaRange(
            "multipart/related", (("type", "application/dicom"), ("transfer-syntax", "1.2.840.10008.1.2.1"))
        ),
        MediaRange("multipart/related", (("type", "application/octet-stream"),), 0.5),
    ]


def test_comma_inside_quotes_does_not_split_ranges() -> None:
    [only] = parse_accept('application/x; note="a, b"')
    assert only.param("note") == "a, b"


def test_parameters_after_q_are_accept_extensions() -> None:
    [only] = parse_accept("application/dicom+json; q=0.3; type=ignored")
    assert only.q == 0.3 and only.params == ()


@pytest.mark.parametrize("header", ["", "garbage", "a/b/c", ";q=1", "text /html"])
def test_malformed_entries_are_ignored(header: str) -> None:
    assert parse_accept(header) == []


def test_bad_q_value_counts_as_one_and_out_of_range_is_clamped() -> None:
    assert [r.q for r in parse_accept("a/b; q=x, c/d; q=7, e/f; q=-1")] == [1.0, 1.0, 0.0]


def test_q_zero_excludes_range() -> None:
    ordered = ordered_by_preference(parse_accept("application/dicom+json; q=0, */*"))
    assert [r.media_type for r in ordered] == ["*/*"]


def test_more_specific_range_wins_at_equal_q() -> None:
    ordered = ordered_by_preference(parse_accept("*/*, application/*, application/dicom+xml"))
    assert [r.media_type for r in ordered] == ["application/dicom+xml", "application/*", "*/*"]


def test_wildcards_match() -> None:
    assert MediaRange("*/*").matches("application/dicom+json")
    assert MediaRange("application/*").matches("application/dicom+json")
    assert not MediaRange("image/*").matches("application/dicom+json")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/dicom+json"),
        ("", "application/dicom+json"),
        ("*/*", "application/dicom+json"),
        ("application/*", "application/dicom+json"),
        ("application/json", "application/dicom+json"),
        ("application/dicom+xml", "application/dicom+xml"),
        ('multipart/related; type="application/dicom+xml"', "application/dicom+xml"),
        ("application/dicom+json; q=0.4, application/dicom+xml", "application/dicom+xml"),
        ("application/dicom+xml; q=0.4, application/dicom+json", "application/dicom+json"),
        ("text/html, */*; q=0.1", "application/dicom+json"),
    ],
)
def test_store_response_type(accept: str | None, chosen: str) -> None:
    assert negotiate_store_response_type(accept) == chosen


@pytest.mark.parametrize(
    "accept",
    ["text/html", "image/*", "application/dicom+json; q=0", 'multipart/related; type="application/dicom"'],
)
def test_store_response_not_acceptable_says_what_is_offered(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="application/dicom\\+json or application/dicom\\+xml"):
        negotiate_store_response_type(accept)
