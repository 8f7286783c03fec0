"""QIDO-RS (PS3.18 10.6): the six search routes.

Each route reads its parameters into a `SearchQuery` (400 naming what is wrong), negotiates DICOM
JSON or multipart XML (the `accept` parameter before the header), and runs the search and the encoding
in the retrieval threads. No match is 200 with `[]`. A page cut short by `limit` or by the server's
maximum says so in a `Warning` header, with the offset to ask for next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from fastapi import APIRouter, Request, Response

from app.api.content_coding import Coding, choose_coding, compress_json
from app.api.deps import get_services
from app.api.multipart import OutgoingPart
from app.api.urls import dicomweb_base_url
from app.api.wado_request import VARY, accept_lists_of, multipart_response
from app.audit.notes import AuditedUids, audited_uids
from app.dicomweb.errors import Forbidden
from app.dicomweb.mediatypes import DICOM_JSON, DICOM_XML
from app.dicomweb.metadata import with_absolute_bulkdata_uris
from app.dicomweb.negotiation import METADATA_XML, negotiate_metadata_media_type
from app.dicomweb.query import SearchQuery, parse_search
from app.dicomweb.query_keys import QueryLevel
from app.dicomweb.responses import dicom_json_to_xml
from app.dicomweb.scope import SERIES_ROUTE, STUDY_ROUTE, Scope
from app.dicomweb.search_results import result_to_dicom_json
from app.dicomweb.uids import require_valid_uid
from app.security.principal import Scope as TokenScope
from app.security.principal import anonymous, principal_of
from app.services import Services
from app.store.query_tags import ExtendedKey
from app.store.read.search import RETRIEVE_URL, SearchPage, SearchResult, search

router = APIRouter(tags=["QIDO-RS"])

_SEARCHES = (
    ("/studies", QueryLevel.STUDY, "Search for studies"),
    ("/series", QueryLevel.SERIES, "Search for series"),
    ("/instances", QueryLevel.INSTANCE, "Search for instances"),
    (STUDY_ROUTE + "/series", QueryLevel.SERIES, "Search for the study's series"),
    (STUDY_ROUTE + "/instances", QueryLevel.INSTANCE, "Search for the study's instances"),
    (
        SERIES_ROUTE + "/instances",
        QueryLevel.INSTANCE,
        "Search for the series' instances",
    ),
)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A search as read from its HTTP request: checked, parsed and negotiated before any SQL runs."""

    query: SearchQuery
    scope: Scope | None  # None: the whole archive
    extended: tuple[ExtendedKey, ...]  # the extended query tags it was parsed with
    media_type: str  # DICOM JSON, or multipart/related; type="application/dicom+xml"
    base_url: str
    coding: Coding | None

    @classmethod
    def read(
        cls, request: Request, services: Services, level: QueryLevel, extended: tuple[ExtendedKey, ...] = ()
    ) -> SearchRequest:
        params = request.path_params
        study, series = params.get("study_instance_uid"), params.get("series_instance_uid")
        if study is not None:
            require_valid_uid(study, "Study Instance UID")
        if series is not None:
            require_valid_uid(series, "Series Instance UID")
        scope = Scope(study, series) if study is not None else None
        query = parse_search(request.query_params.multi_items(), level, (key.key for key in extended))
        if query.include_rejected:
            _require_admin(request)
        media_type = negotiate_metadata_media_type(*accept_lists_of(request))
        coding = None
        if media_type == DICOM_JSON:
            coding = choose_coding(request.headers.get("accept-encoding"), brotli_allowed=True)
        base_url = dicomweb_base_url(request, services.settings.public_base_url)
        return cls(query, scope, extended, media_type, base_url, coding)


def _require_admin(request: Request) -> None:
    """`includerejected=true` shows what rejection notes hid: for administrators only."""
    principal = principal_of(request) or anonymous()  # no authentication layer: an open server
    if not principal.holds(TokenScope.ADMIN):
        raise Forbidden(f"includerejected=true needs the {TokenScope.ADMIN.value} scope")


def answer_search(
    services: Services, search_request: SearchRequest, audited: AuditedUids | None = None
) -> Response:
    """Run the search and encode its page (in the retrieval threads); note the studies it returns."""
    with services.engine.connect() as connection:
        page = search(
            connection,
            search_request.query,
            search_request.scope,
            max_results=services.settings.qido_max_results,
            extended=search_request.extended,
        )
    if audited is not None:
        audited.add(studies=(result.study_instance_uid for result in page.results))
    base_url = search_request.base_url
    # JSON bytes, BulkDataURIs (in attributes copied from stored metadata, at any depth) made absolute.
    encoded = [
        with_absolute_bulkdata_uris(orjson.dumps(_dataset(r, base_url)), base_url) for r in page.results
    ]
    headers = {"Vary": VARY}
    if page.has_more:
        headers["Warning"] = more_results_warning(page, search_request.query)
    if search_request.media_type == METADATA_XML:
        parts = (OutgoingPart(DICOM_XML, "", dicom_json_to_xml(orjson.loads(item))) for item in encoded)
        response = multipart_response(parts, METADATA_XML, None)
        response.headers.update(headers)
        return response
    body = b"[" + b",".join(encoded) + b"]"
    coding = search_request.coding
    if coding is not None and len(body) >= 1024:
        body = compress_json(body, coding)
        headers["Content-Encoding"] = coding.value
    return Response(body, media_type=DICOM_JSON, headers=headers)


def _dataset(result: SearchResult, base_url: str) -> dict[str, object]:
    """The result's DICOM JSON with its RetrieveURL."""
    return result_to_dicom_json({**result.attributes, RETRIEVE_URL: result.scope.url(base_url)})


def more_results_warning(page: SearchPage, query: SearchQuery) -> str:
    """PS3.18 8.3.4.4: a Warning (299) that the response holds only part of the matches."""
    next_offset = query.offset + len(page.results)
    return (
        f'299 fovea "There are more matches than this response holds (at most {page.limit}); '
        f'ask again with offset={next_offset} for the next ones"'
    )


def _search_endpoint(level: QueryLevel) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services = get_services(request)
        extended = services.query_tags.fresh()
        if extended is None:
            extended = await services.run_blocking(services.query_tags.load)
        search_request = SearchRequest.read(request, services, level, extended)
        return await services.run_blocking(answer_search, services, search_request, audited_uids(request))

    return endpoint


for _path, _level, _summary in _SEARCHES:
    router.add_api_route(
        _path,
        _search_endpoint(_level),
        methods=["GET"],
        summary=_summary,
        name="search_" + _path.strip("/").replace("/", "_").replace("{", "").replace("}", ""),
    )
