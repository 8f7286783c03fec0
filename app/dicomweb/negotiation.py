"""Accept header parsing and media-type selection (PS3.18 8.7, RFC 9110 12.5.1), free of HTTP types.

Why pure functions: negotiation is where DICOMweb servers most often disagree with the standard; as data
in, choice out, it is tested against the rules without a server. The media-type tables live in
`app.dicomweb.mediatypes`; this module only decides which row a request gets.

Selection (PS3.18 8.7.8): the `accept` query parameter's ranges are tried before the header's. Within a
list, ranges go by q, then specificity; among ranges tied on both, the one that needs no transcoding
wins, then header order. A range with q=0 excludes what it covers from less specific ranges.
No Accept header and no query parameter count as `*/*`: a deliberate lenient choice (curl, browsers and
many viewers send none), where PS3.18 8.7.7 (2019e) would answer 406.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from itertools import groupby

from app.dicomweb.errors import NotAcceptable
from app.dicomweb.mediatypes import (
    ANY_TRANSFER_SYNTAX,
    CATEGORY_DEFAULTS,
    DICOM_JSON,
    DICOM_XML,
    MEDIA_TYPE_ROWS,
    MULTIPART_RELATED,
    OCTET_STREAM,
    MediaTypeRow,
    ResourceCategory,
    canonical_media_type,
    is_uncompressed,
    multipart_content_type,
    part_content_type,
    transfer_syntax_rows,
)


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
    if '"' not in text:  # nothing quoted: a plain split (most headers, and every viewer's)
        return text.split(separator)
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


# --- WADO-RS media-type selection (PS3.18 8.7.3, 8.7.7, 8.7.8; Table 10.4.4-1) ---

METADATA_XML = multipart_content_type(DICOM_XML)
_WILDCARD = "*/*"
_MULTIPART_RANGES = (MULTIPART_RELATED, "multipart/*")


@dataclass(frozen=True, slots=True)
class _Selection:
    multipart: bool  # a multipart/related body of `media_type` parts, else one bare body
    media_type: str  # of each part (or of the single-part body), spelled as the tables spell it
    transfer_syntax: str  # always a UID from the tables, never "*"
    transcode: bool  # a codec must make `transfer_syntax` from the stored syntax

    @property
    def part_content_type(self) -> str:
        """Content-Type of each part, or of the single-part body (PS3.18 8.7.9)."""
        return part_content_type(self.media_type, self.transfer_syntax)

    @property
    def content_type(self) -> str:
        """Content-Type of the response, less the multipart boundary."""
        return multipart_content_type(self.media_type) if self.multipart else self.part_content_type


@dataclass(frozen=True, slots=True)
class FrameSelection(_Selection):
    """What a frames, bulkdata or pixeldata response carries; `transcode` is also False for native or
    encapsulated-uncompressed stored frames sent as octet-stream (their bytes already are ELE frames)."""


@dataclass(frozen=True, slots=True)
class InstanceSelection(_Selection):
    """What a study, series or instance response carries; `category` BULKDATA when bulk-data parts were
    asked for, which Table 10.4.4-1 defines as the response of the matching Bulkdata resource."""

    category: ResourceCategory


@dataclass(frozen=True, slots=True)
class _Request:
    category: ResourceCategory  # whose rows wildcards and single parts may use
    stored_syntax: str
    can_produce: Callable[[str], bool]
    single_part_allowed: bool
    bulk_parts: bool  # multipart bulk-data parts allowed besides the category's own rows

    def allows(self, row: MediaTypeRow, *, multipart: bool) -> bool:
        if row.category is self.category:
            return multipart or self.single_part_allowed
        return multipart and self.bulk_parts and row.category is ResourceCategory.BULKDATA

    def transcode(self, row: MediaTypeRow) -> bool | None:
        """False: sent as stored; True: `can_produce` makes it; None: cannot be had."""
        stored = self.stored_syntax
        if row.transfer_syntax == stored or (row.media_type == OCTET_STREAM and is_uncompressed(stored)):
            return False
        return True if self.can_produce(row.transfer_syntax) else None


@dataclass(frozen=True, slots=True)
class _Offer:
    row: MediaTypeRow
    multipart: bool
    transcode: bool


def negotiate_frame_media_type(
    ranges_from_query: Sequence[MediaRange],
    ranges_from_header: Sequence[MediaRange],
    *,
    stored_syntax: str,
    can_produce: Callable[[str], bool],
    single_part_allowed: bool,
) -> FrameSelection:
    """The media type and syntax of a frames, bulkdata or pixeldata response (PS3.18 8.7.3.3, 8.7.8).

    `can_produce(uid)` says whether a codec can make that syntax from the stored one; the stored syntax
    itself needs none. `single_part_allowed` is True only for a target that yields exactly one item.
    Both range lists empty means `*/*` (lenient, see the module docstring). Raises NotAcceptable, naming
    what can be offered.
    """
    request = _Request(
        ResourceCategory.BULKDATA, stored_syntax, can_produce, single_part_allowed, bulk_parts=False
    )
    offer = _select(ranges_from_query, ranges_from_header, request)
    row = offer.row
    return FrameSelection(offer.multipart, row.media_type, row.transfer_syntax, offer.transcode)


def negotiate_instance_media_type(
    ranges_from_query: Sequence[MediaRange],
    ranges_from_header: Sequence[MediaRange],
    *,
    stored_syntax: str,
    can_produce: Callable[[str], bool],
    single_part_allowed: bool,
) -> InstanceSelection:
    """The media type and syntax of a study, series or instance response (PS3.18 8.7.3.2, 10.4.4).

    Default `multipart/related; type="application/dicom"` in Explicit VR LE; `transfer-syntax=*` keeps
    the stored syntax; single-part application/dicom only when `single_part_allowed`; bulk-data part
    types select BULKDATA semantics. Arguments and errors as `negotiate_frame_media_type`.
    """
    request = _Request(
        ResourceCategory.INSTANCE, stored_syntax, can_produce, single_part_allowed, bulk_parts=True
    )
    offer = _select(ranges_from_query, ranges_from_header, request)
    row = offer.row
    return InstanceSelection(
        offer.multipart, row.media_type, row.transfer_syntax, offer.transcode, row.category
    )


def negotiate_metadata_media_type(
    ranges_from_query: Sequence[MediaRange],
    ranges_from_header: Sequence[MediaRange],
    *,
    offered: Collection[str] = (DICOM_JSON, METADATA_XML),
) -> str:
    """`application/dicom+json` or `multipart/related; type="application/dicom+xml"` (Table 10.4.4-1).

    DICOM JSON is the default, also for `*/*`, `application/*` and `application/json`; metadata is never
    multipart JSON nor single-part XML. Both lists empty means `*/*` (lenient, see the module docstring).
    Only the forms in `offered` are chosen, so a client that accepts several gets one the server has.
    """
    for ranges in _accept_lists(ranges_from_query, ranges_from_header):
        zero = [r for r in ranges if r.q == 0]
        for media_range in ordered_by_preference(ranges):
            chosen = _metadata_choice(media_range)
            if chosen is None or chosen not in offered:
                continue
            multipart = chosen == METADATA_XML
            media_type = DICOM_XML if multipart else DICOM_JSON
            if not _excluded(media_type, None, _specificity(media_range), zero, multipart=multipart):
                return chosen
    raise NotAcceptable(f"no acceptable media type; metadata is available as {' or '.join(offered)}")


def _metadata_choice(media_range: MediaRange) -> str | None:
    if media_range.media_type in (DICOM_JSON, "application/json", _WILDCARD, "application/*"):
        return DICOM_JSON
    if media_range.media_type in _MULTIPART_RANGES and _part_pattern(media_range) == DICOM_XML:
        return METADATA_XML
    return None


def _accept_lists(
    ranges_from_query: Sequence[MediaRange], ranges_from_header: Sequence[MediaRange]
) -> tuple[Sequence[MediaRange], ...]:
    """The lists to try in turn: the query parameter's first (8.7.8.1); none at all counts as `*/*`."""
    if not ranges_from_query and not ranges_from_header:
        return ([MediaRange(_WILDCARD)],)
    return (ranges_from_query, ranges_from_header)


def _select(
    ranges_from_query: Sequence[MediaRange], ranges_from_header: Sequence[MediaRange], request: _Request
) -> _Offer:
    """The best offer of the first list that has one; at a tie, one needing no transcoding."""
    for ranges in _accept_lists(ranges_from_query, ranges_from_header):
        zero = [r for r in ranges if r.q == 0]
        for _, tied in groupby(ordered_by_preference(ranges), key=lambda r: (r.q, _specificity(r))):
            offers = [offer for r in tied if (offer := _best_offer(r, request, zero)) is not None]
            if offers:
                return min(offers, key=lambda offer: offer.transcode)  # first of the cheapest
    raise _not_acceptable(request)


def _best_offer(media_range: MediaRange, request: _Request, zero: Sequence[MediaRange]) -> _Offer | None:
    """The first row `media_range` asks for that the request allows, can have, and `zero` does not exclude."""
    syntax_params = [value for name, value in media_range.params if name == "transfer-syntax"]
    if len(syntax_params) > 1:  # a repeated transfer-syntax is invalid (8.7.3.5.2): ignore the range
        return None
    syntax = syntax_params[0] if syntax_params else None
    multipart = media_range.media_type.endswith("/*") or media_range.media_type == MULTIPART_RELATED
    pattern = _part_pattern(media_range)
    specificity = _specificity(media_range)
    if "*" in pattern:
        rows = _wildcard_rows(pattern, syntax, request)
    else:
        rows = transfer_syntax_rows(pattern, syntax, request.stored_syntax)
    for row in rows:
        if not request.allows(row, multipart=multipart):
            continue
        transcode = request.transcode(row)
        if transcode is None or _excluded(
            row.media_type, row.transfer_syntax, specificity, zero, multipart=multipart
        ):
            continue
        return _Offer(row, multipart, transcode)
    return None


def _part_pattern(media_range: MediaRange) -> str:
    """The media type, maybe a wildcard, of the parts (or single body) a range asks for.

    `multipart/related` without `type` means the category default, like `*/*` (conformance, section 9). A bare
    `type/*` is read as parts of that type in the default multipart body: a lenient reading, as PS3.18
    defines wildcards only through the category default (8.7.7).
    """
    if media_range.media_type in _MULTIPART_RANGES:
        return (media_range.param("type") or _WILDCARD).strip().lower()
    return media_range.media_type


def _wildcard_rows(pattern: str, syntax: str | None, request: _Request) -> list[MediaTypeRow]:
    """`*/*` or `type/*`: the category default, then the stored form, then each type's default (8.7.7).

    The stored form is the fallback when the default cannot be produced (lossy-only data, or no
    decoder). A transfer-syntax UID narrows the choice; `*` adds nothing here.
    """
    wildcard = MediaRange(pattern)
    own = [row for row in MEDIA_TYPE_ROWS if row.category is request.category]
    own = [row for row in own if wildcard.matches(row.media_type.lower())]
    default_type = CATEGORY_DEFAULTS[request.category].media_type
    first = [row for row in transfer_syntax_rows(default_type, None, request.stored_syntax) if row in own]
    stored = [row for row in own if row.transfer_syntax == request.stored_syntax]
    rows = list(dict.fromkeys([*first, *stored, *(row for row in own if row.default)]))
    if syntax is not None and syntax != ANY_TRANSFER_SYNTAX:
        rows = [row for row in rows if row.transfer_syntax == syntax]
    return rows


def _excluded(
    media_type: str, syntax: str | None, specificity: int, zero: Sequence[MediaRange], *, multipart: bool
) -> bool:
    """True when a q=0 range at least as specific as the chosen one covers this offer (RFC 9110 12.5.1)."""
    return any(
        _specificity(z) >= specificity and _covers(z, media_type, syntax, multipart=multipart) for z in zero
    )


def _covers(media_range: MediaRange, media_type: str, syntax: str | None, *, multipart: bool) -> bool:
    top = media_range.media_type
    if top in _MULTIPART_RANGES and not multipart:
        return False  # a multipart range never covers a bare body
    if top not in _MULTIPART_RANGES and not top.endswith("/*") and multipart:
        return False  # nor a single-part range the parts of a multipart body
    pattern = _part_pattern(media_range)
    if "*" in pattern:
        covered = MediaRange(pattern).matches(media_type.lower())
    else:
        covered = canonical_media_type(pattern) == media_type
    return covered and media_range.param("transfer-syntax") in (None, ANY_TRANSFER_SYNTAX, syntax)


def _not_acceptable(request: _Request) -> NotAcceptable:
    """406 naming every part type and syntax this resource can have (PS3.18 8.7.7)."""
    available: dict[str, list[str]] = {}
    for row in MEDIA_TYPE_ROWS:
        if request.allows(row, multipart=True) and request.transcode(row) is not None:
            available.setdefault(row.media_type, []).append(row.transfer_syntax)
    offers = "; ".join(
        f"{multipart_content_type(media_type)}; transfer-syntax={' or '.join(syntaxes)}"
        for media_type, syntaxes in available.items()
    )
    single = " (single part too)" if request.single_part_allowed else ""
    return NotAcceptable(
        f"no acceptable media type can be produced from transfer syntax {request.stored_syntax}; "
        f"available{single}: {offers or 'nothing'}"
    )
