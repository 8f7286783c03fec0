"""The `Range` header of a bulk data request (RFC 9110 14.1.2, PS3.18 10.4.1.1.5: Range -> 206).

Why only one range: a viewer or script asks for one slice of a value; several ranges would need a
multipart/byteranges body, so a request naming more than one is answered with the whole value (RFC
9110 allows ignoring Range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.dicomweb.errors import RangeNotSatisfiable

# At most 18 digits a position (below 2**63, beyond any stored value): a longer number does not match,
# so the range is ignored rather than fed to int(), which refuses thousands of digits.
_ONE_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]{0,18})\s*-\s*([0-9]{0,18})\s*")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    stop: int  # exclusive

    def content_range(self, length: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{length}"


def parse_byte_range(header: str | None, length: int) -> ByteRange | None:
    """The one satisfiable range of a value of `length` bytes; None: serve the whole value.

    Raises RangeNotSatisfiable (416) for a well-formed range that selects no byte.
    """
    if not header:
        return None
    match = _ONE_RANGE.fullmatch(header)
    if match is None:
        return None  # several ranges, another unit, or malformed: ignored
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiable("an empty suffix range selects no byte", length)
        return ByteRange(max(0, length - count), length)
    start = int(first)
    stop = length if not last else min(int(last) + 1, length)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= length:
        raise RangeNotSatisfiable(f"range starts at byte {start} of a {length}-byte value", length)
    return ByteRange(start, stop)
