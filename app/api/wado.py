"""WADO-RS (PS3.18 10.4): the Retrieve transaction. So far the metadata resources.

Metadata is served from the DICOM JSON stored at ingest (never by parsing DICOM again), as one JSON
array of instance objects whose BulkDataURIs are absolute under the base URL the client sees.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep
from app.api.urls import dicomweb_base_url
from app.dicomweb.errors import BadRequest, NotFound
from app.dicomweb.mediatypes import DICOM_JSON
from app.dicomweb.metadata import metadata_response_body
from app.dicomweb.negotiation import negotiate_metadata_media_type, parse_accept
from app.dicomweb.uids import is_valid_uid
from app.services import Services
from app.store.retrieval import Scope, stored_metadata

router = APIRouter(tags=["WADO-RS"])


@router.get("/studies/{study_instance_uid}/metadata", summary="Retrieve study metadata")
async def retrieve_study_metadata(
    study_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    return await _retrieve_metadata(request, services, Scope(study_instance_uid))


@router.get(
    "/studies/{study_instance_uid}/series/{series_instance_uid}/metadata",
    summary="Retrieve series metadata",
)
async def retrieve_series_metadata(
    study_instance_uid: str, series_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    return await _retrieve_metadata(request, services, Scope(study_instance_uid, series_instance_uid))


@router.get(
    "/studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}/metadata",
    summary="Retrieve instance metadata",
)
async def retrieve_instance_metadata(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    return await _retrieve_metadata(request, services, scope)


def _check_uids(scope: Scope) -> None:
    for name, value in (
        ("Study Instance UID", scope.study_instance_uid),
        ("Series Instance UID", scope.series_instance_uid),
        ("SOP Instance UID", scope.sop_instance_uid),
    ):
        if value is not None and not is_valid_uid(value):
            raise BadRequest(f"{value[:80]!r} is not a valid {name}")


async def _retrieve_metadata(request: Request, services: Services, scope: Scope) -> Response:
    _check_uids(scope)
    query_accept = ",".join(request.query_params.getlist("accept"))
    # The multipart XML form of Table 10.4.4-1 is not offered yet: JSON is chosen when acceptable.
    negotiate_metadata_media_type(
        parse_accept(query_accept), parse_accept(request.headers.get("accept")), offered=(DICOM_JSON,)
    )

    def read() -> list[bytes]:
        with services.engine.connect() as connection:
            return stored_metadata(connection, scope)

    stored = await run_in_threadpool(read)
    if not stored:
        raise NotFound(_not_found_message(scope))
    base = dicomweb_base_url(request, services.settings.public_base_url)
    return Response(metadata_response_body(stored, base), media_type=DICOM_JSON)


def _not_found_message(scope: Scope) -> str:
    if scope.sop_instance_uid is not None:
        return f"no instance {scope.sop_instance_uid} in series {scope.series_instance_uid}"
    if scope.series_instance_uid is not None:
        return f"no series {scope.series_instance_uid} in study {scope.study_instance_uid}"
    return f"no study {scope.study_instance_uid}"
