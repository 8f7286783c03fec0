"""WADO-RS (PS3.18 10.4): the routes of the Retrieve transaction.

Each route reads its request once (`WadoRequest`) and hands it to the function that answers that
kind of resource, in the thread pool, in one hop: the lookup, the negotiation and the first bytes all
happen there. Metadata is served from the DICOM JSON stored at ingest, never by parsing DICOM again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.routing import Route

from app.api.conditional import make_validators
from app.api.content_coding import compress_json
from app.api.deps import ServicesDep, get_services
from app.api.multipart import OutgoingPart
from app.api.wado_instances import retrieve_instances
from app.api.wado_pixels import (
    frames_answered_in_loop,
    retrieve_bulkdata_value,
    retrieve_frames,
    retrieve_pixeldata,
    retrieve_scope_bulkdata,
)
from app.api.wado_request import VARY, WadoRequest, multipart_response, not_found_message
from app.dicomweb.errors import NotFound
from app.dicomweb.frame_numbers import parse_frame_list
from app.dicomweb.mediatypes import DICOM_JSON, DICOM_XML
from app.dicomweb.metadata import metadata_response_body, with_absolute_bulkdata_uris
from app.dicomweb.negotiation import METADATA_XML, negotiate_metadata_media_type
from app.dicomweb.responses import dicom_json_to_xml
from app.dicomweb.scope import INSTANCE_ROUTE, SERIES_ROUTE, STUDY_ROUTE, Scope
from app.services import Services
from app.store.read.retrieval import stored_metadata_with_version

router = APIRouter(tags=["WADO-RS"])


Answer = Callable[[Services, WadoRequest], Response]


def _scope_of(request: Request) -> Scope:
    """The study, series and instance UIDs of the path, as far as the route names them."""
    params = request.path_params
    return Scope(
        params["study_instance_uid"], params.get("series_instance_uid"), params.get("sop_instance_uid")
    )


def _endpoint(answer: Answer) -> Callable[[Request], Awaitable[Response]]:
    """A route endpoint that reads the request and runs `answer` in the retrieval threads."""

    async def endpoint(request: Request) -> Response:
        services = get_services(request)
        wado = WadoRequest.read(request, services.settings, _scope_of(request))
        return await services.run_blocking(answer, services, wado)

    return endpoint


# --- Frames first: the most requested resource ---


async def retrieve_instance_frames(request: Request) -> Response:
    """Frames as stored, or as native pixels in `application/octet-stream` (PS3.18 10.4.1.1.4).

    The hot path of every viewer: a plain Starlette route, declared first (routes are matched in
    order), so no FastAPI parameter validation or dependency solving runs; together about half a
    millisecond of a 3 ms budget.
    """
    services = get_services(request)
    wado = WadoRequest.read(request, services.settings, _scope_of(request))
    numbers = parse_frame_list(request.path_params["frame_list"])
    answered = frames_answered_in_loop(services, wado, numbers)
    if answered is not None:
        return answered
    return await services.run_blocking(retrieve_frames, services, wado, numbers)


FRAMES_ROUTE = Route(
    INSTANCE_ROUTE + "/frames/{frame_list}", retrieve_instance_frames, methods=["GET"], name="retrieve_frames"
)
router.routes.append(FRAMES_ROUTE)


# --- Metadata: DICOM JSON, or multipart Native DICOM Model XML ---


def _metadata(services: Services, wado: WadoRequest) -> Response:
    """One JSON array of instance objects, or one XML part per instance (Table 10.4.4-1)."""
    media_type = negotiate_metadata_media_type(*wado.accept_lists)
    with services.engine.connect() as connection:
        stored, version = stored_metadata_with_version(connection, wado.scope)
    if not stored:
        raise NotFound(not_found_message(wado.scope))
    coding = wado.coding(brotli_allowed=True) if media_type == DICOM_JSON else None
    validators = make_validators(
        "metadata",
        version.fingerprint,
        media_type,
        wado.base_url,
        coding,
        last_modified=version.last_modified,
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    if media_type == METADATA_XML:
        parts = (
            _xml_part(wado, orjson.loads(with_absolute_bulkdata_uris(item, wado.base_url))) for item in stored
        )
        return multipart_response(parts, METADATA_XML, validators)
    body = metadata_response_body(stored, wado.base_url)
    headers = {**validators.headers, "Vary": VARY}
    if coding is not None and len(body) >= 1024:
        body = compress_json(body, coding)
        headers["Content-Encoding"] = coding.value
    return Response(body, media_type=DICOM_JSON, headers=headers)


def _xml_part(wado: WadoRequest, dataset: dict[str, Any]) -> OutgoingPart:
    """One instance's metadata as a Native DICOM Model part, located at its instance metadata URL."""

    def uid(tag: str) -> str | None:
        values = dataset.get(tag, {}).get("Value") or [None]
        return str(values[0]) if values[0] is not None else None

    study, series, sop = uid("0020000D"), uid("0020000E"), uid("00080018")
    scope = Scope(study or wado.scope.study_instance_uid, series, sop if series else None)
    return OutgoingPart(DICOM_XML, f"{wado.url_of(scope)}/metadata", dicom_json_to_xml(dataset))


# --- Frames, pixel data and bulk data: the bulk-data category ---


@router.get(INSTANCE_ROUTE + "/bulkdata/{bulkdata_path:path}", summary="Retrieve one bulk data value")
async def retrieve_bulkdata_uri(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    bulkdata_path: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    """The value behind a BulkDataURI of the metadata; `Range` gives 206 (PS3.18 10.4.1.1.5)."""
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    wado = WadoRequest.read(request, services.settings, scope)
    return await services.run_blocking(retrieve_bulkdata_value, services, wado, bulkdata_path)


# --- The resources that exist at study, series and instance level alike (PS3.18 10.4.1.1) ---

_LEVELS = (("study", STUDY_ROUTE), ("series", SERIES_ROUTE), ("instance", INSTANCE_ROUTE))
_SCOPED_RESOURCES: tuple[tuple[str, str, Answer], ...] = (
    ("", "Retrieve the {level}'s instances", retrieve_instances),
    ("/metadata", "Retrieve {level} metadata", _metadata),
    ("/pixeldata", "Retrieve the {level}'s pixel data", retrieve_pixeldata),
    ("/bulkdata", "Retrieve the {level}'s bulk data", retrieve_scope_bulkdata),
)
for _suffix, _summary, _answer in _SCOPED_RESOURCES:
    for _level, _path in _LEVELS:
        router.add_api_route(
            _path + _suffix,
            _endpoint(_answer),
            methods=["GET"],
            summary=_summary.format(level=_level),
            name=f"{_answer.__name__.strip('_')}_{_level}",
        )
