"""The facts a codestream header states about its image, and the errors of reading one.

Why a module of its own: every family's header reader returns the same value, and the check that
compares it with the data set (`frame_header`) reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


class HeaderError(ValueError):
    """The frame does not start with a well-formed header of its codec family."""


class HeaderTruncated(HeaderError):
    """The header runs past the bytes given: read more of the frame (or it is cut short)."""


@dataclass(frozen=True, slots=True)
class CodestreamHeader:
    """What a header says; None where the family's header does not say it."""

    kind: str  # the header's name, for messages: "JPEG SOF", "JPEG 2000 SIZ", ...
    columns: int | None = None
    rows: int | None = None
    components: int | None = None
    precision: int | None = None  # bits per sample, the largest of the components'
    segments: int | None = None  # RLE only
    contradiction: str | None = None  # values that cannot all be right (RLE offsets past the frame)


def need(data: bytes, end: int) -> None:
    """Raise `HeaderTruncated` unless `data` holds at least `end` bytes."""
    if len(data) < end:
        raise HeaderTruncated(f"the header needs {end} bytes, {len(data)} given")
