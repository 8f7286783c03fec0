"""Streaming multipart/related reading, fed in every chunking (RFC 2046 variations real clients send)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.api.multipart import MultipartError, MultipartSpooler, parse_multipart_content_type
from app.dicomweb.errors import UnsupportedMediaType

BODY = (
    b"--XyZ\r\nContent-Type: application/dicom\r\nContent-Location: a\r\n\r\nFIRST\r\n--partial"
    b"\r\n--XyZ\r\ncontent-type: application/dicom\r\n\r\n\r\nSECOND\r\n\r\n--XyZ--"
)


def spool(body: bytes, tmp_path: Path, chunk: int, max_part_bytes: int = 1 << 20) -> MultipartSpooler:
    spooler = MultipartSpooler(b"XyZ", tmp_path, max_part_bytes=max_part_bytes)
    for start in range(0, len(body), chunk):
        spooler.feed(body[start : start + chunk])
    return spooler


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 16])
@pytest.mark.parametrize("prefix", [b"", b"\r\n", b"a preamble line\r\n"], ids=["none", "crlf", "preamble"])
def test_parts_come_out_exactly_whatever_the_chunking(tmp_path: Path, chunk: int, prefix: bytes) -> None:
    parts = spool(prefix + BODY, tmp_path, chunk).finish()
    assert [p.path.read_bytes() for p in parts] == [b"FIRST\r\n--partial", b"\r\nSECOND\r\n"]
    # Each part is hashed as it is written: ingest records that digest without reading the file again.
    assert [p.sha256 for p in parts] == [hashlib.sha256(p.path.read_bytes()).hexdigest() for p in parts]
    assert parts[0].headers == {"content-type": "application/dicom", "content-location": "a"}
    assert [p.content_type for p in parts] == ["application/dicom", "application/dicom"]


@pytest.mark.parametrize("cut", [10, 40, len(BODY) - 3])
def test_incomplete_body_is_refused_and_files_can_be_discarded(tmp_path: Path, cut: int) -> None:
    spooler = spool(BODY[:cut], tmp_path, 5)
    with pytest.raises(MultipartError, match="incomplete"):
        spooler.finish()
    spooler.discard()
    assert list(tmp_path.iterdir()) == []


def test_part_over_the_limit_is_marked_and_its_content_dropped(tmp_path: Path) -> None:
    parts = spool(BODY, tmp_path, 4, max_part_bytes=6).finish()
    assert [p.too_large for p in parts] == [True, True]
    assert [p.path.read_bytes() for p in parts] == [b"", b""]
    assert [p.sha256 for p in parts] == ["", ""]  # no digest of content that was dropped


def test_body_that_never_shows_its_boundary_is_refused(tmp_path: Path) -> None:
    spooler = MultipartSpooler(b"XyZ", tmp_path, max_part_bytes=100)
    with pytest.raises(MultipartError, match="does not start with its boundary"):
        for _ in range(20):
            spooler.feed(b"x" * 8192)


def test_runaway_part_headers_are_refused_by_the_parser(tmp_path: Path) -> None:
    spooler = MultipartSpooler(b"XyZ", tmp_path, max_part_bytes=100)
    with pytest.raises(MultipartError, match="malformed multipart body"):
        spooler.feed(b"--XyZ\r\nX-Long: " + b"a" * 20_000)


@pytest.mark.parametrize(
    "header",
    [
        'multipart/related; type="application/dicom"; boundary="a b:c"',
        "multipart/related; type=application/dicom; boundary=a b:c",
        'Multipart/Related; boundary="a b:c"; type="application/dicom"',
    ],
)
def test_content_type_boundary_quoted_or_not(header: str) -> None:
    parsed = parse_multipart_content_type(header)
    assert parsed.boundary in (b"a b:c", b"a")  # unquoted values end at whitespace
    assert parsed.part_type == "application/dicom"


@pytest.mark.parametrize("header", [None, "application/dicom", "multipart/mixed; boundary=x"])
def test_other_content_types_are_415(header: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_multipart_content_type(header)


def test_missing_boundary_is_400() -> None:
    with pytest.raises(MultipartError, match="boundary"):
        parse_multipart_content_type('multipart/related; type="application/dicom"')


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
@pytest.mark.parametrize("padding", [b" ", b"\t", b" \t  "], ids=["space", "tab", "mixed"])
def test_transport_padding_after_any_delimiter_is_skipped(tmp_path: Path, chunk: int, padding: bytes) -> None:
    """RFC 2046 5.1.1 allows spaces and tabs between a delimiter and its CRLF, the first one included."""
    body = b"--XyZ" + padding + b"\r\n\r\nFIRST\r\n--XyZ" + padding + b"\r\n\r\nSECOND\r\n--XyZ--" + padding
    parts = spool(body, tmp_path, chunk).finish()
    assert [p.path.read_bytes() for p in parts] == [b"FIRST", b"SECOND"]


@pytest.mark.parametrize("body", [b"--XyZ--", b"preamble\r\n--XyZ--"])
def test_body_of_only_the_closing_delimiter_has_no_parts(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(MultipartError, match="has no parts"):
        spool(body, tmp_path, 2).finish()


def test_delimiter_followed_by_other_text_is_malformed(tmp_path: Path) -> None:
    with pytest.raises(MultipartError, match="malformed multipart body"):
        spool(b"--XyZ junk\r\n\r\nFIRST\r\n--XyZ--", tmp_path, 4).finish()
