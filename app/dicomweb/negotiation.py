"""Accept header parsing and media-type selection (PS3.18 8.7, RFC 9110 12.5.1), free of HTTP types.

Why pure functions: negotiation is where DICOMweb servers most often disagree with the standard; as data
in, choice out, it is tested against the rules without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.dicomweb.errors import NotAcceptable


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header: `type/subtype` plus parameters (lower-case names) and q."""

    media_type: str
    params: tuple[tuple[str, str], ...] = ()
    q: float = 1.0

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)

    def matches(self, media_type: str) -> bool:
        """True when this range covers `media_type` (wildcards `*/*` and `type/*` included)."""
        if self.media_type == "*/*":
            return True
        major, _, minor = self.media_type.partition("/")
        other_major, _, _ = media_type.partition("/")
        if minor == "*":
            return major == other_major
        return self.media_type == media_type


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    pieces, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, in header order; malformed entries are ignored (8.7)."""
    ranges = []
    for entry in _split_outside_quotes(header or "", ","):
        pieces = _split_outside_quotes(entry, ";")
        media_type = pieces[0].strip().lower()
        if media_type.count("/") != 1 or " " in media_type:
            continue
        params: list[tuple[str, str]] = []
        q = 1.0
        for piece in pieces[1:]:
            name, sep, value = piece.partition("=")
            name = name.strip().lower()
            if not sep or not name:
                continue
            if name == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 1.0
                break  # parameters after q are accept-extensions (RFC 9110): ignore them
            params.append((name, _unquote(value)))
        ranges.append(MediaRange(media_type, tuple(params), q))
    return ranges


def _specificity(media_range: MediaRange) -> int:
    if media_range.media_type == "*/*":
        return 0
    if media_range.media_type.endswith("/*"):
        return 1
    return 2 + len(media_range.params)


def ordered_by_preference(ranges: Sequence[MediaRange]) -> list[MediaRange]:
    """Ranges by q (highest first), then specificity; q=0 ranges dropped (not acceptable)."""
    indexed = [(r, i) for i, r in enumerate(ranges) if r.q > 0]
    indexed.sort(key=lambda pair: (-pair[0].q, -_specificity(pair[0]), pair[1]))
    return [r for r, _ in indexed]


STORE_RESPONSE_JSON = "application/dicom+json"
STORE_RESPONSE_XML = "application/dicom+xml"


def negotiate_store_response_type(header: str | None) -> str:
    """The STOW-RS response media type: DICOM JSON by default, XML when preferred (PS3.18 10.5.3).

    No Accept header means the default, as dicomweb-client and most tools send none for STOW.
    """
    if not header or not header.strip():
        return STORE_RESPONSE_JSON
    for media_range in ordered_by_preference(parse_accept(header)):
        if media_range.media_type in (STORE_RESPONSE_JSON, "application/json"):
            return STORE_RESPONSE_JSON
        if media_range.media_type == STORE_RESPONSE_XML:
            return STORE_RESPONSE_XML
        if media_range.media_type == "multipart/related":
            if (media_range.param("type") or "").lower() == STORE_RESPONSE_XML:
                return STORE_RESPONSE_XML
            continue
        if media_range.matches(STORE_RESPONSE_JSON):
            return STORE_RESPONSE_JSON
    raise NotAcceptable(
        f"none of the acceptable media types ({header}) can be produced; a store response is "
        f"available as {STORE_RESPONSE_JSON} or {STORE_RESPONSE_XML}"
    )
