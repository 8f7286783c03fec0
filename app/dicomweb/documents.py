"""Encapsulated documents (PS3.3 A.45, A.47): the SOP classes whose rendered resource is the document
itself, and the media type it is answered in (PS3.18 8.7.4, rendered media types of the text category).

Why a table: which SOP class holds which kind of document is a fact of the standard; the rendered
resource, the conformance statement and the tests all read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from app.dicomweb.errors import NotAcceptable
from app.dicomweb.negotiation import MediaRange
from app.dicomweb.rendered_params import range_specificity

ENCAPSULATED_DOCUMENT = "00420011"  # Encapsulated Document (OB)
ENCAPSULATED_DOCUMENT_LENGTH = "00420015"  # its length without the padding byte (UL)

# SOP Class UID -> the media type of the rendered resource (PS3.4 Annex B.5 for the UIDs).
RENDERED_DOCUMENT_MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "1.2.840.10008.5.1.4.1.1.104.1": "application/pdf",  # Encapsulated PDF Storage
        "1.2.840.10008.5.1.4.1.1.104.2": "text/xml",  # Encapsulated CDA Storage
    }
)


def negotiate_document_media_type(
    media_type: str, ranges_from_query: Sequence[MediaRange], ranges_from_header: Sequence[MediaRange]
) -> str:
    """`media_type` when the request accepts it (no Accept at all does too); else 406 naming it.

    As for rendered images: the `accept` parameter's list is tried first, then the header's (PS3.18
    8.3.3.1); the most specific range covering the type decides, and q=0 refuses (RFC 9110 12.5.1).
    """
    lists = [ranges for ranges in (ranges_from_query, ranges_from_header) if ranges]
    if not lists:
        return media_type
    for ranges in lists:
        covering = [(index, r) for index, r in enumerate(ranges) if r.matches(media_type)]
        if covering:
            _index, decisive = max(covering, key=lambda pair: (range_specificity(pair[1]), -pair[0]))
            if decisive.q > 0:
                return media_type
    raise NotAcceptable(f"no acceptable media type; this instance is rendered as {media_type} (the document)")
