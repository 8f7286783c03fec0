"""STOW-RS (PS3.18 10.5): POST /studies and POST /studies/{StudyInstanceUID}.

Reads the multipart/related body part by part into files (api/multipart.py), checks the body is whole,
then has each part ingested in the worker pool (store/ingest.py) and answers with the Store Instances
Response module. A malformed body stores nothing; a bad part is one Failed SOP Sequence entry.
"""

from __future__ import annotations

import uuid
from functools import partial

from fastapi import APIRouter, Request, Response

from app.api.deps import ServicesDep
from app.api.multipart import MultipartSpooler, SpooledPart, parse_multipart_content_type
from app.api.urls import dicomweb_base_url, instance_url, study_url
from app.audit.notes import note_audited_rejections, note_audited_uids
from app.dicomweb.dicomjson import encode_dicom_json
from app.dicomweb.errors import PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from app.dicomweb.negotiation import STORE_RESPONSE_XML, negotiate_store_response_type
from app.dicomweb.responses import (
    FailureReason,
    InstanceOutcome,
    WarningReason,
    dicom_json_to_xml,
    store_response_dataset,
    store_status,
)
from app.dicomweb.uids import require_valid_uid
from app.metrics import STOW_BYTES, STOW_FAILURES, STOW_INSTANCES
from app.services import Services
from app.store.ingest import IngestResult, Outcome
from app.store.parse import Problem
from app.store.retrieval import Scope

router = APIRouter(tags=["STOW-RS"])

DICOM_PART_TYPE = "application/dicom"

FAILURE_FOR_PROBLEM = {
    Problem.NOT_DICOM: FailureReason.CANNOT_UNDERSTAND,
    Problem.INVALID: FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    Problem.UNSUPPORTED_SYNTAX: FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
    Problem.STUDY_MISMATCH: FailureReason.STUDY_INSTANCE_UID_MISMATCH,
    Problem.CONFLICT: FailureReason.STUDY_INSTANCE_UID_MISMATCH,
    Problem.DUPLICATE: FailureReason.DUPLICATE_SOP_INSTANCE,
    Problem.PATIENT_MISMATCH: FailureReason.PATIENT_IDENTITY_CONFLICT,
    Problem.REJECTED: FailureReason.REJECTED_INSTANCE,
    Problem.TOO_LARGE: FailureReason.OUT_OF_RESOURCES,
    Problem.STORAGE_FAILURE: FailureReason.PROCESSING_FAILURE,
    Problem.UNAVAILABLE: FailureReason.PROCESSING_FAILURE,
}
WARNING_FOR_OUTCOME = {
    Outcome.REPLACED: WarningReason.REPLACED_STORED_INSTANCE,
    Outcome.KEPT_EXISTING: WarningReason.DUPLICATE_DISCARDED,
    Outcome.PATIENT_KEPT: WarningReason.PATIENT_IDENTITY_KEPT,
    Outcome.PATIENT_UPDATED: WarningReason.PATIENT_IDENTITY_UPDATED,
}


@router.post("/studies", summary="Store instances (STOW-RS)")
async def store_instances(request: Request, services: ServicesDep) -> Response:
    return await _store(request, services, study_instance_uid=None)


@router.post("/studies/{study_instance_uid}", summary="Store instances of one study (STOW-RS)")
async def store_study_instances(study_instance_uid: str, request: Request, services: ServicesDep) -> Response:
    require_valid_uid(study_instance_uid, "Study Instance UID")
    return await _store(request, services, study_instance_uid=study_instance_uid)


async def _store(request: Request, services: Services, *, study_instance_uid: str | None) -> Response:
    response_type = negotiate_store_response_type(request.headers.get("accept"))
    content_type = parse_multipart_content_type(request.headers.get("content-type"))
    if content_type.part_type not in ("", DICOM_PART_TYPE):
        raise UnsupportedMediaType(
            f"multipart/related parts of type {content_type.part_type!r} are not supported; "
            f'send type="{DICOM_PART_TYPE}"'
        )
    limit = services.settings.max_request_bytes
    declared = request.headers.get("content-length")
    too_many_digits = declared is not None and len(declared) > 19  # int() refuses thousands of them
    if declared and declared.isascii() and declared.isdigit() and (too_many_digits or int(declared) > limit):
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit}")

    spooler = MultipartSpooler(
        content_type.boundary,
        services.blobs.spool_directory,
        max_part_bytes=services.settings.max_instance_bytes,
    )
    try:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            spooler.feed(chunk)
        parts = spooler.finish()
    except BaseException:
        spooler.discard()
        raise

    results = await _ingest_parts(services, parts, study_instance_uid)
    outage = next((r.message for r in results if r.problem is Problem.UNAVAILABLE), None)
    if outage is not None and not any(r.stored for r in results):
        # The store is down: the request as a whole is answered 503 (nothing of it was stored).
        raise ServiceUnavailable(f"nothing stored: {outage}")
    outcomes = [_outcome(result) for result in results]
    stored = [outcome for outcome in outcomes if outcome.failure is None]
    note_audited_rejections(
        request,
        (
            (ref.study_instance_uid, ref.series_instance_uid, ref.sop_instance_uid)
            for result in results
            for ref in result.rejected
        ),
    )
    note_audited_uids(
        request,
        studies=(o.study_instance_uid for o in stored),
        series=(o.series_instance_uid for o in stored),
        instances=(o.sop_instance_uid for o in stored),
    )
    base = dicomweb_base_url(request, services.settings.public_base_url)
    dataset = store_response_dataset(
        outcomes,
        study_url=partial(study_url, base),
        instance_url=partial(instance_url, base),
        study_instance_uid=study_instance_uid,
    )
    render = dicom_json_to_xml if response_type == STORE_RESPONSE_XML else encode_dicom_json
    body = render(dataset)
    response = Response(body, status_code=store_status(outcomes), media_type=response_type)
    if outage is not None:  # some were stored before the outage; the failed ones may be sent again
        response.headers["Retry-After"] = str(services.settings.retry_after_s)
    return response


async def _ingest_parts(
    services: Services, parts: list[SpooledPart], study_instance_uid: str | None
) -> list[IngestResult]:
    """Ingest every acceptable part in the worker processes; the outcomes come back in part order."""
    batch_id = uuid.uuid4().hex  # a SOP Instance UID repeated within this request is refused
    results = [_refuse_part(part, services.settings.max_instance_bytes) for part in parts]
    accepted = [part.path for part, result in zip(parts, results, strict=True) if result is None]
    try:
        stored = iter(
            await services.ingest.ingest(accepted, expected_study_uid=study_instance_uid, batch_id=batch_id)
        )
    finally:
        for part in parts:  # ingest consumes its files; what is left is a refused part's
            part.path.unlink(missing_ok=True)
    finished = [result if result is not None else next(stored) for result in results]
    _count(parts, finished)
    _forget_replaced_frame_tables(services, finished)
    _forget_rejected_frame_tables(services, finished)
    return finished


_NEW_FILE_OUTCOMES = (Outcome.STORED, Outcome.REPLACED, Outcome.PATIENT_KEPT, Outcome.PATIENT_UPDATED)
# A patient-mismatch outcome is reported instead of REPLACED when an instance was replaced as well.
_MAY_HAVE_REPLACED = (Outcome.REPLACED, Outcome.PATIENT_KEPT, Outcome.PATIENT_UPDATED)


def _count(parts: list[SpooledPart], results: list[IngestResult]) -> None:
    for part, result in zip(parts, results, strict=True):
        STOW_INSTANCES.labels(result.outcome.value).inc()
        if result.outcome in _NEW_FILE_OUTCOMES:
            STOW_BYTES.inc(part.size)
        elif result.problem is not None:
            STOW_FAILURES.labels(f"0x{FAILURE_FOR_PROBLEM[result.problem]:04X}").inc()


def _forget_replaced_frame_tables(services: Services, results: list[IngestResult]) -> None:
    """A client that replaced an instance reads the new one at once from this process; the old blob
    stays readable for a while, so other processes' cached tables serve the old one until they expire."""
    for result in results:
        if result.outcome in _MAY_HAVE_REPLACED:
            scope = Scope(result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid)
            services.frame_tables.forget(scope)


def _forget_rejected_frame_tables(services: Services, results: list[IngestResult]) -> None:
    """Rejected instances are hidden at once from this process; other processes' cached frame tables
    serve them until they expire (seconds, FrameTableCache's time to live)."""
    for result in results:
        for ref in result.rejected:
            services.frame_tables.forget(
                Scope(ref.study_instance_uid, ref.series_instance_uid, ref.sop_instance_uid)
            )


def _refuse_part(part: SpooledPart, max_instance_bytes: int) -> IngestResult | None:
    if part.too_large:
        return IngestResult(
            Outcome.FAILED,
            problem=Problem.TOO_LARGE,
            message=f"part {part.index + 1} exceeds the instance size limit of {max_instance_bytes} bytes",
        )
    part_type = part.content_type
    if part_type and part_type != DICOM_PART_TYPE:
        return IngestResult(
            Outcome.FAILED,
            problem=Problem.NOT_DICOM,
            message=f"part {part.index + 1} has Content-Type {part_type!r}, not {DICOM_PART_TYPE}",
        )
    return None


def _outcome(result: IngestResult) -> InstanceOutcome:
    return InstanceOutcome(
        sop_class_uid=result.sop_class_uid,
        sop_instance_uid=result.sop_instance_uid,
        study_instance_uid=result.study_instance_uid,
        series_instance_uid=result.series_instance_uid,
        failure=FAILURE_FOR_PROBLEM[result.problem] if result.problem else None,
        warning=WARNING_FOR_OUTCOME.get(result.outcome),
        comment=result.message,
    )
