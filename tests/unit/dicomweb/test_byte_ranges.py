"""The Range header of a bulk data request (RFC 9110 14.1.2): one range, or the whole value."""

from __future__ import annotations

import pytest

from app.dicomweb.byte_ranges import ByteRange, parse_byte_range
from app.dicomweb.errors import RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=10-", ByteRange(10, 100)),
        ("bytes=-7", ByteRange(93, 100)),
        ("bytes=-1000", ByteRange(0, 100)),  # a suffix longer than the value is the whole value
        ("bytes=90-1000", ByteRange(90, 100)),  # a last byte past the end is the end
        (" bytes = 5 - 6 ", ByteRange(5, 7)),
        (None, None),
        ("", None),
        ("bytes=0-1,5-6", None),  # several ranges: ignored, the whole value
        ("items=0-1", None),  # another unit: ignored
        ("bytes=9-3", None),  # last before first: invalid, ignored
        ("bytes=-", None),
        ("bytes=abc", None),
        ("bytes=" + "9" * 5000 + "-", None),  # beyond what int() converts: ignored, not a 500
        ("bytes=0-" + "9" * 19, None),
        ("bytes=0-" + "9" * 18, ByteRange(0, 100)),
    ],
)
def test_parse_byte_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=250-300", "bytes=-0"])
def test_ranges_selecting_no_byte_are_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_byte_range(header, 100)
    assert raised.value.status == 416 and raised.value.length == 100


def test_content_range_names_first_and_last_byte() -> None:
    assert ByteRange(10, 20).content_range(100) == "bytes 10-19/100"
