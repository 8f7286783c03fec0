"""WADO-RS (PS3.18 10.4): the routes of the Retrieve transaction.

Each route reads its request once (`WadoRequest`) and hands it to the function that answers that
kind of resource, in the thread pool, in one hop: the lookup, the negotiation and the first bytes all
happen there. Metadata is served from the DICOM JSON stored at ingest, never by parsing DICOM again.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request, Response

from app.api.conditional import make_validators
from app.api.content_coding import compress_json
from app.api.deps import ServicesDep, get_services
from app.api.multipart import OutgoingPart
from app.api.wado_instances import retrieve_instances
from app.api.wado_pixels import (
    retrieve_bulkdata_value,
    retrieve_frames,
    retrieve_pixeldata,
    retrieve_scope_bulkdata,
)
from app.api.wado_request import VARY, WadoRequest, multipart_response, not_found_message
from app.dicomweb.errors import NotFound
from app.dicomweb.frames import parse_frame_list
from app.dicomweb.mediatypes import DICOM_JSON, DICOM_XML
from app.dicomweb.metadata import metadata_response_body, with_absolute_bulkdata_uris
from app.dicomweb.negotiation import METADATA_XML, negotiate_metadata_media_type
from app.dicomweb.responses import dicom_json_to_xml
from app.services import Services
from app.store.retrieval import Scope, stored_metadata_with_version

router = APIRouter(tags=["WADO-RS"])

STUDY = "/studies/{study_instance_uid}"
SERIES = STUDY + "/series/{series_instance_uid}"
INSTANCE = SERIES + "/instances/{sop_instance_uid}"


async def _answer(
    request: Request, services: Services, scope: Scope, answer: Callable[[Services, WadoRequest], Response]
) -> Response:
    wado = WadoRequest.read(request, services.settings, scope)
    return await services.run_blocking(answer, services, wado)


# --- Frames first: the most requested resource ---


@router.get(INSTANCE + "/frames/{frame_list}", summary="Retrieve frames")
async def retrieve_instance_frames(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    frame_list: str,
    request: Request,
) -> Response:
    """Frames as stored, or as native pixels in `application/octet-stream` (PS3.18 10.4.1.1.4).

    The hot path of every viewer: declared first (routes are matched in order) and without
    dependency injection (`get_services` is called directly), each worth a share of a millisecond.
    """
    services = get_services(request)
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    wado = WadoRequest.read(request, services.settings, scope)
    numbers = parse_frame_list(frame_list)
    return await services.run_blocking(retrieve_frames, services, wado, numbers)


# --- Study, series and instance resources: application/dicom ---


@router.get(STUDY, summary="Retrieve a study's instances")
async def retrieve_study(study_instance_uid: str, request: Request, services: ServicesDep) -> Response:
    return await _answer(request, services, Scope(study_instance_uid), retrieve_instances)


@router.get(SERIES, summary="Retrieve a series' instances")
async def retrieve_series(
    study_instance_uid: str, series_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid)
    return await _answer(request, services, scope, retrieve_instances)


@router.get(INSTANCE, summary="Retrieve an instance")
async def retrieve_instance(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    return await _answer(request, services, scope, retrieve_instances)


# --- Metadata: DICOM JSON, or multipart Native DICOM Model XML ---


@router.get(STUDY + "/metadata", summary="Retrieve study metadata")
async def retrieve_study_metadata(
    study_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    return await _answer(request, services, Scope(study_instance_uid), _metadata)


@router.get(SERIES + "/metadata", summary="Retrieve series metadata")
async def retrieve_series_metadata(
    study_instance_uid: str, series_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid)
    return await _answer(request, services, scope, _metadata)


@router.get(INSTANCE + "/metadata", summary="Retrieve instance metadata")
async def retrieve_instance_metadata(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    return await _answer(request, services, scope, _metadata)


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
            OutgoingPart(
                DICOM_XML,
                wado.url_of(wado.scope) + "/metadata",
                dicom_json_to_xml(orjson.loads(with_absolute_bulkdata_uris(item, wado.base_url))),
            )
            for item in stored
        )
        return multipart_response(parts, METADATA_XML, validators)
    body = metadata_response_body(stored, wado.base_url)
    headers = {**validators.headers, "Vary": VARY}
    if coding is not None and len(body) >= 1024:
        body = compress_json(body, coding)
        headers["Content-Encoding"] = coding.value
    return Response(body, media_type=DICOM_JSON, headers=headers)


# --- Frames, pixel data and bulk data: the bulk-data category ---


@router.get(STUDY + "/pixeldata", summary="Retrieve a study's pixel data")
async def retrieve_study_pixeldata(
    study_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    return await _answer(request, services, Scope(study_instance_uid), retrieve_pixeldata)


@router.get(SERIES + "/pixeldata", summary="Retrieve a series' pixel data")
async def retrieve_series_pixeldata(
    study_instance_uid: str, series_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid)
    return await _answer(request, services, scope, retrieve_pixeldata)


@router.get(INSTANCE + "/pixeldata", summary="Retrieve an instance's pixel data")
async def retrieve_instance_pixeldata(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    return await _answer(request, services, scope, retrieve_pixeldata)


@router.get(STUDY + "/bulkdata", summary="Retrieve a study's bulk data")
async def retrieve_study_bulkdata(
    study_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    return await _answer(request, services, Scope(study_instance_uid), retrieve_scope_bulkdata)


@router.get(SERIES + "/bulkdata", summary="Retrieve a series' bulk data")
async def retrieve_series_bulkdata(
    study_instance_uid: str, series_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid)
    return await _answer(request, services, scope, retrieve_scope_bulkdata)


@router.get(INSTANCE + "/bulkdata", summary="Retrieve an instance's bulk data")
async def retrieve_instance_bulkdata(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    return await _answer(request, services, scope, retrieve_scope_bulkdata)


@router.get(INSTANCE + "/bulkdata/{bulkdata_path:path}", summary="Retrieve one bulk data value")
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
