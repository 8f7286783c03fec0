"""WADO-RS (PS3.18 10.4): the Retrieve transaction. So far the metadata and frames resources.

Metadata is served from the DICOM JSON stored at ingest (never by parsing DICOM again), as one JSON
array of instance objects whose BulkDataURIs are absolute under the base URL the client sees.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep
from app.api.multipart import OutgoingPart, iter_multipart_related, new_boundary
from app.api.urls import dicomweb_base_url
from app.dicomweb.errors import NotAcceptable, NotFound
from app.dicomweb.frames import check_frames_exist, parse_frame_list
from app.dicomweb.mediatypes import DICOM_JSON, OCTET_STREAM
from app.dicomweb.metadata import metadata_response_body
from app.dicomweb.negotiation import (
    MediaRange,
    negotiate_frame_media_type,
    negotiate_metadata_media_type,
    parse_accept,
)
from app.dicomweb.uids import require_valid_uid
from app.imaging.codecs.native import little_endian_frame
from app.imaging.frames import read_frame
from app.imaging.syntaxes import find_transfer_syntax
from app.services import Services
from app.store.retrieval import NoPixelData, Scope, StoredFrames, stored_frames, stored_metadata

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
        if value is not None:
            require_valid_uid(value, name)


def _accept_lists(request: Request) -> tuple[list[MediaRange], list[MediaRange]]:
    """The `accept` query parameter's media ranges (first choice, PS3.18 8.3.3.1), then the header's."""
    query = ",".join(request.query_params.getlist("accept"))
    return parse_accept(query), parse_accept(request.headers.get("accept"))


async def _retrieve_metadata(request: Request, services: Services, scope: Scope) -> Response:
    _check_uids(scope)
    # The multipart XML form of Table 10.4.4-1 is not offered yet: JSON is chosen when acceptable.
    negotiate_metadata_media_type(*_accept_lists(request), offered=(DICOM_JSON,))

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


@router.get(
    "/studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}/frames/{frame_list}",
    summary="Retrieve frames",
)
async def retrieve_instance_frames(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    frame_list: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    """Frames as stored, or native pixels as `application/octet-stream` (PS3.18 10.4.1.1.4).

    A frame is an index lookup and ranged reads of the stored blob; nothing is parsed. Transcoding into
    other syntaxes is not offered yet, so a compressed frame needs an Accept that allows its stored form.
    """
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    _check_uids(scope)
    numbers = parse_frame_list(frame_list)

    def lookup() -> StoredFrames | None:
        with services.engine.connect() as connection:
            return stored_frames(connection, scope, numbers)

    try:
        frames = await run_in_threadpool(lookup)
    except NoPixelData as exc:
        raise NotFound(f"instance {sop_instance_uid} has no pixel data, hence no frames") from exc
    if frames is None:
        raise NotFound(_not_found_message(scope))
    syntax = find_transfer_syntax(frames.transfer_syntax_uid)
    if syntax is None or syntax.is_video:
        raise NotAcceptable("the frames of a video are one stream and cannot be retrieved one by one")
    check_frames_exist(numbers, frames.layout.number_of_frames)
    selection = negotiate_frame_media_type(
        *_accept_lists(request),
        stored_syntax=syntax.uid,
        can_produce=lambda _uid: False,  # no codecs yet: as stored, or native as octet-stream
        single_part_allowed=len(numbers) == 1,
    )
    frame_url = (
        f"{dicomweb_base_url(request, services.settings.public_base_url)}/studies/{study_instance_uid}"
        f"/series/{series_instance_uid}/instances/{sop_instance_uid}/frames"
    )

    def frame_bytes(number: int) -> bytes:
        data = read_frame(
            lambda offset, length: services.blobs.read_range(frames.data_blob_key, offset, length),
            frames.fragments[number],
            frames.layout,
            encapsulated=syntax.encapsulated,
        )
        if selection.media_type == OCTET_STREAM:
            return little_endian_frame(
                data, bits_allocated=frames.layout.bits_allocated, big_endian=syntax.big_endian
            )
        return data

    if not selection.multipart:
        body = await run_in_threadpool(frame_bytes, numbers[0])
        return Response(
            body,
            media_type=selection.part_content_type,
            headers={"Content-Location": f"{frame_url}/{numbers[0]}"},
        )
    boundary = new_boundary()
    parts = (
        OutgoingPart(selection.part_content_type, f"{frame_url}/{number}", frame_bytes(number))
        for number in numbers
    )  # read lazily: one frame in memory at a time, in the thread pool that drains the generator
    return StreamingResponse(
        iter_multipart_related(parts, boundary), media_type=f"{selection.content_type}; boundary={boundary}"
    )
