"""Choosing and applying content codings (RFC 9110 12.5.3), and conditional requests (13.1)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import brotli
import pytest
from starlette.requests import Request

from app.api.conditional import is_not_modified, make_validators
from app.api.content_coding import Coding, choose_coding, compress_frame, compress_json, iter_gzip


@pytest.mark.parametrize(
    ("header", "brotli_allowed", "expected"),
    [
        (None, True, None),
        ("", True, None),
        ("identity", True, None),
        ("gzip", True, Coding.GZIP),
        ("gzip, deflate, br", True, Coding.BROTLI),
        ("gzip, deflate, br", False, Coding.GZIP),
        ("br;q=0.5, gzip", True, Coding.GZIP),  # higher q wins
        ("gzip;q=0, br;q=0", True, None),
        ("*", True, Coding.BROTLI),
        ("*;q=0.1, gzip;q=0", False, None),
        ("GZIP;Q=1", False, Coding.GZIP),
        ("gzip;q=abc", False, None),  # a malformed q is not acceptable
    ],
)
def test_choose_coding(header: str | None, brotli_allowed: bool, expected: Coding | None) -> None:
    assert choose_coding(header, brotli_allowed=brotli_allowed) == expected


def test_codings_round_trip() -> None:
    body = b'[{"00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^Jane"}]}}]' * 100
    assert gzip.decompress(compress_json(body, Coding.GZIP)) == body
    assert brotli.decompress(compress_json(body, Coding.BROTLI)) == body
    assert gzip.decompress(compress_frame(body)) == body
    assert gzip.decompress(b"".join(iter_gzip([body[:10], b"", body[10:]]))) == body


def request_with(**headers: str) -> Request:
    raw = [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


MODIFIED = datetime(2026, 11, 21, 10, 30, 15, 123456, tzinfo=UTC)


def test_validators_depend_on_every_fact() -> None:
    first = make_validators("frames", "blob-a", "1", "image/jls", last_modified=MODIFIED)
    assert first == make_validators("frames", "blob-a", "1", "image/jls", last_modified=MODIFIED)
    assert first.etag != make_validators("frames", "blob-b", "1", "image/jls", last_modified=MODIFIED).etag
    assert first.etag != make_validators("frames", "blob-a", "2", "image/jls", last_modified=MODIFIED).etag
    assert first.headers["Last-Modified"] == "Sat, 21 Nov 2026 10:30:15 GMT"
    assert first.etag.startswith('"') and first.etag.endswith('"')


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"If-None-Match": "ETAG"}, True),
        ({"If-None-Match": "W/ETAG"}, True),  # weak comparison
        ({"If-None-Match": '"other", ETAG'}, True),
        ({"If-None-Match": "*"}, True),
        ({"If-None-Match": '"other"'}, False),
        ({"If-None-Match": '"other"', "If-Modified-Since": "Sat, 21 Nov 2026 10:30:15 GMT"}, False),
        ({"If-Modified-Since": "Sat, 21 Nov 2026 10:30:15 GMT"}, True),  # second precision
        ({"If-Modified-Since": "Sat, 21 Nov 2026 10:30:14 GMT"}, False),
        ({"If-Modified-Since": "not a date"}, False),
    ],
)
def test_is_not_modified(headers: dict[str, str], expected: bool) -> None:
    validators = make_validators("x", last_modified=MODIFIED)
    headers = {name: value.replace("ETAG", validators.etag) for name, value in headers.items()}
    assert is_not_modified(request_with(**headers), validators) is expected
