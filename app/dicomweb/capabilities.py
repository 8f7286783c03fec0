"""The Capabilities Description (PS3.18 8.9 and Annex H): what each served resource and method offers.

Why generated: the resources and methods come from the routes the app serves, the media types and
transfer syntaxes from the tables negotiation uses (app/dicomweb/mediatypes.py), the query keys from
the ones search matches on (app/dicomweb/query.py), the rendering parameters from rendering.py. So the
description cannot promise what the server does not do, nor leave out what it does.

A resource is named by its route template below the DICOMweb base (`studies/{study_instance_uid}`). A
method offers representations: media types with their `transfer-syntax` values, the default first.
Rendered as JSON (`application/json`) or as WADL (`application/vnd.sun.wadl+xml`, Annex H's form).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from pydicom.datadict import keyword_for_tag

from app.dicomweb.errors import NotAcceptable
from app.dicomweb.mediatypes import (
    COMPRESSED_BULK_MEDIA_TYPES,
    DICOM_JSON,
    DICOM_MEDIA_TYPES,
    DICOM_XML,
    STORE_METADATA_TYPES,
    STORE_PART10_TYPE,
    UNCOMPRESSED_BULK_MEDIA_TYPES,
    MediaTypeRow,
    multipart_content_type,
)
from app.dicomweb.negotiation import (
    STORE_RESPONSE_JSON,
    STORE_RESPONSE_XML,
    ordered_by_preference,
    parse_accept,
)
from app.dicomweb.query import SEARCH_PARAMETERS, searchable_paths
from app.dicomweb.query_keys import QueryLevel
from app.dicomweb.rendered_params import RENDER_PARAMETERS
from app.imaging.display import ImageFormat

WADL = "application/vnd.sun.wadl+xml"
JSON = "application/json"
WADL_NAMESPACE = "http://wadl.dev.java.net/2009/02"
DESCRIBED_METHODS = ("GET", "POST", "PUT", "DELETE")  # HEAD mirrors GET; OPTIONS is this description


@dataclass(frozen=True, slots=True)
class Representation:
    """One media type a method takes or returns, with the transfer syntaxes it may carry."""

    media_type: str
    transfer_syntaxes: tuple[str, ...] = ()  # default first; empty: the type names no syntax
    multipart: bool = False  # the parts of a multipart/related body, `type=` this media type


@dataclass(frozen=True, slots=True)
class QueryKey:
    path: str  # tags, dotted for sequences: "00100010", "0040A730.00080100"
    name: str  # keywords, dotted the same way
    vr: str


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    transaction: str
    requests: tuple[Representation, ...] = ()
    responses: tuple[Representation, ...] = ()
    query_parameters: tuple[str, ...] = ()
    query_keys: tuple[QueryKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Resource:
    path: str  # the route template below the base, "" for the base itself
    methods: tuple[Method, ...]


_SEARCH_LEVELS = {"studies": QueryLevel.STUDY, "series": QueryLevel.SERIES, "instances": QueryLevel.INSTANCE}
_RETRIEVALS = {"studies": "Retrieve Study", "series": "Retrieve Series", "instances": "Retrieve Instance"}
_BULK_RETRIEVALS = {
    "frames": "Retrieve Frames",
    "bulkdata": "Retrieve Bulk Data",
    "pixeldata": "Retrieve Pixel Data",
}
_RENDERED_RETRIEVALS = {"rendered": "Retrieve Rendered", "thumbnail": "Retrieve Thumbnail"}


def resource(path: str, methods: Iterable[str]) -> Resource:
    """The description of the route `path` (below the base) and the methods it serves."""
    served = [name for name in DESCRIBED_METHODS if name in set(methods)]
    return Resource(path, tuple(_method(path, name) for name in served))


def _method(path: str, name: str) -> Method:
    segments = [segment for segment in path.split("/") if segment]
    literals = [segment for segment in segments if not segment.startswith("{")]
    last = literals[-1] if literals else ""
    ends_with_literal = bool(segments) and not segments[-1].startswith("{")
    if name == "POST" and last == "studies":
        return Method(name, "Store Instances", _STORE_REQUESTS, _STORE_RESPONSES)
    if name != "GET":
        return Method(name, f"{name.capitalize()} {last}".strip())  # e.g. "Delete studies"
    if last == "metadata":
        return Method(name, "Retrieve Metadata", responses=_METADATA)
    if last in _BULK_RETRIEVALS:
        return Method(name, _BULK_RETRIEVALS[last], responses=_BULK_DATA)
    if last in _RENDERED_RETRIEVALS:
        return Method(
            name,
            _RENDERED_RETRIEVALS[last],
            responses=_RENDERED,
            query_parameters=("accept", *RENDER_PARAMETERS),
        )
    if ends_with_literal and last in _SEARCH_LEVELS:
        level = _SEARCH_LEVELS[last]
        return Method(
            name,
            f"Search for {last.capitalize()}",
            responses=_METADATA,
            query_parameters=SEARCH_PARAMETERS,
            query_keys=_query_keys(level),
        )
    if last in _RETRIEVALS:
        return Method(name, _RETRIEVALS[last], responses=_INSTANCES)
    return Method(name, "Retrieve")


def _query_keys(level: QueryLevel) -> tuple[QueryKey, ...]:
    keys = []
    for path, vr in searchable_paths(level).items():
        name = ".".join(keyword_for_tag(tag) or f"{tag:08X}" for tag in path)
        keys.append(QueryKey(".".join(f"{tag:08X}" for tag in path), name, vr))
    return tuple(keys)


def _grouped(rows: Sequence[MediaTypeRow], *, multipart: bool) -> tuple[Representation, ...]:
    """One representation per media type of `rows`, its syntaxes in table order, the default first."""
    syntaxes: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda row: not row.default):
        syntaxes.setdefault(row.media_type, []).append(row.transfer_syntax)
    ordered = dict.fromkeys(row.media_type for row in rows)
    return tuple(Representation(media_type, tuple(syntaxes[media_type]), multipart) for media_type in ordered)


_STORE_REQUESTS = tuple(
    Representation(media_type, multipart=True) for media_type in (STORE_PART10_TYPE, *STORE_METADATA_TYPES)
)
_STORE_RESPONSES = (Representation(STORE_RESPONSE_JSON), Representation(STORE_RESPONSE_XML))
_METADATA = (Representation(DICOM_JSON), Representation(DICOM_XML, multipart=True))
_INSTANCES = (
    *_grouped(DICOM_MEDIA_TYPES, multipart=True),
    *_grouped(DICOM_MEDIA_TYPES, multipart=False),  # a scope of one instance
)
_BULK_DATA = _grouped((*UNCOMPRESSED_BULK_MEDIA_TYPES, *COMPRESSED_BULK_MEDIA_TYPES), multipart=True)
_RENDERED = tuple(Representation(image_format.value) for image_format in ImageFormat)


def negotiate_capabilities_type(header: str | None) -> str:
    """WADL, Annex H's form, unless JSON is preferred; no Accept header means WADL too."""
    if not header or not header.strip():
        return WADL
    for media_range in ordered_by_preference(parse_accept(header)):
        if media_range.q <= 0:
            continue
        if media_range.media_type in (JSON, "application/dicom+json"):
            return JSON
        if media_range.matches(WADL) or media_range.media_type in ("application/xml", "text/xml"):
            return WADL
        if media_range.matches(JSON):
            return JSON
    raise NotAcceptable(f"the capabilities description is available as {WADL} or {JSON}")


def capabilities_json(base_url: str, resources: Sequence[Resource]) -> dict[str, object]:
    return {
        "base": base_url,
        "resources": [
            {"path": item.path, "methods": [_method_json(method) for method in item.methods]}
            for item in resources
        ],
    }


def _method_json(method: Method) -> dict[str, object]:
    described: dict[str, object] = {"name": method.name, "transaction": method.transaction}
    if method.requests:
        described["requests"] = [_representation_json(r) for r in method.requests]
    if method.responses:
        described["responses"] = [_representation_json(r) for r in method.responses]
    if method.query_parameters:
        described["queryParameters"] = list(method.query_parameters)
    if method.query_keys:
        described["queryKeys"] = [{"path": k.path, "keyword": k.name, "vr": k.vr} for k in method.query_keys]
    return described


def _representation_json(representation: Representation) -> dict[str, object]:
    described: dict[str, object] = {"mediaType": representation.media_type}
    if representation.multipart:
        described["multipart"] = True
    if representation.transfer_syntaxes:
        described["transferSyntaxes"] = list(representation.transfer_syntaxes)
    return described


def capabilities_wadl(base_url: str, resources: Sequence[Resource]) -> bytes:
    """The same description as a WADL document (PS3.18 Annex H)."""
    ElementTree.register_namespace("", WADL_NAMESPACE)
    application = ElementTree.Element(_wadl("application"))
    root = ElementTree.SubElement(application, _wadl("resources"), base=base_url.rstrip("/") + "/")
    for item in resources:
        element = ElementTree.SubElement(root, _wadl("resource"), path=item.path)
        for method in item.methods:
            _wadl_method(element, method)
    document: bytes = ElementTree.tostring(application, encoding="utf-8", xml_declaration=True)
    return document


def _wadl_method(parent: ElementTree.Element, method: Method) -> None:
    element = ElementTree.SubElement(parent, _wadl("method"), name=method.name)
    ElementTree.SubElement(element, _wadl("doc"), title=method.transaction)
    request = ElementTree.SubElement(element, _wadl("request"))
    if method.responses:
        accept = ElementTree.SubElement(request, _wadl("param"), name="Accept", style="header")
        for value in _header_values(method.responses):
            ElementTree.SubElement(accept, _wadl("option"), value=value)
    for name in method.query_parameters:
        ElementTree.SubElement(request, _wadl("param"), name=name, style="query")
    for key in method.query_keys:
        ElementTree.SubElement(request, _wadl("param"), name=key.name, style="query", type=key.vr)
    for representation in method.requests:
        for value in _header_values((representation,)):
            ElementTree.SubElement(request, _wadl("representation"), mediaType=value)
    response = ElementTree.SubElement(element, _wadl("response"))
    for representation in method.responses:
        for value in _header_values((representation,)):
            ElementTree.SubElement(response, _wadl("representation"), mediaType=value)


def _header_values(representations: Iterable[Representation]) -> list[str]:
    """Each representation as the media types a client would send (one per transfer syntax)."""
    values: list[str] = []
    for representation in representations:
        base = representation.media_type
        if representation.multipart:
            base = multipart_content_type(base)
        syntaxes = representation.transfer_syntaxes or ("",)
        values.extend(f"{base}; transfer-syntax={syntax}" if syntax else base for syntax in syntaxes)
    return values


def _wadl(tag: str) -> str:
    return f"{{{WADL_NAMESPACE}}}{tag}"
