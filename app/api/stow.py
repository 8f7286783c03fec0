"""STOW-RS (PS3.18 10.5): POST /studies and POST /studies/{StudyInstanceUID}.

Reads the multipart/related body part by part into files (api/multipart.py), checks the body is whole,
then has each part ingested in the worker pool (store/write/ingest.py) and answers with the Store Instances
Response module. A malformed body stores nothing; a bad part is one Failed SOP Sequence entry. A body of
DICOM JSON metadata and bulk data parts is first turned into one Part 10 file per instance
(api/stow_json.py), then ingested the same way.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep
from app.api.multipart import MultipartSpooler, SpooledPart, parse_multipart_content_type
from app.api.stow_json import instances_from_parts
from app.api.urls import dicomweb_base_url
from app.audit.notes import note_audited_rejections, note_audited_uids
from app.dicomweb.dicomjson import encode_dicom_json
from app.dicomweb.errors import PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from app.dicomweb.mediatypes import DICOM_JSON, DICOM_XML, STORE_METADATA_TYPES, STORE_PART10_TYPE
from app.dicomweb.negotiation import STORE_RESPONSE_XML, negotiate_store_response_type
from app.dicomweb.responses import (
    FailureReason,
    InstanceOutcome,
    WarningReason,
    dicom_json_to_xml,
    store_response_dataset,
    store_status,
)
from app.dicomweb.scope import STUDY_ROUTE, Scope
from app.dicomweb.uids import require_valid_uid
from app.metrics import STOW_BYTES, STOW_FAILURES, STOW_INSTANCES
from app.services import Services
from app.store.write.ingest import IngestResult, Outcome
from app.store.write.parse import Problem

router = APIRouter(tags=["STOW-RS"])

DICOM_PART_TYPE = STORE_PART10_TYPE
METADATA_TYPES = STORE_METADATA_TYPES  # metadata and bulk data parts (api/stow_json.py)

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


@router.post(STUDY_ROUTE, summary="Store instances of one study (STOW-RS)")
async def store_study_instances(study_instance_uid: str, request: Request, services: ServicesDep) -> Response:
    require_valid_uid(study_instance_uid, "Study Instance UID")
    return await _store(request, services, study_instance_uid=study_instance_uid)


async def _store(request: Request, services: Services, *, study_instance_uid: str | None) -> Response:
    response_type = negotiate_store_response_type(request.headers.get("accept"))
    content_type = parse_multipart_content_type(request.headers.get("content-type"))
    if content_type.part_type not in ("", DICOM_PART_TYPE, *METADATA_TYPES):
        raise UnsupportedMediaType(
            f"multipart/related parts of type {content_type.part_type!r} are not supported; "
            f'send type="{DICOM_PART_TYPE}", or type="{DICOM_JSON}" or "{DICOM_XML}" (metadata and bulk data)'
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

    try:
        instances = await _instances(services, parts, content_type.part_type)
        digests = {part.path: part.sha256 for part in parts if part.sha256}
        results = await _ingest_instances(services, instances, study_instance_uid, digests)
    finally:
        _remove(parts)  # ingest consumed the accepted ones; what is left is refused or was metadata
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
        base_url=base,
        study_instance_uid=study_instance_uid,
    )
    render = dicom_json_to_xml if response_type == STORE_RESPONSE_XML else encode_dicom_json
    body = render(dataset)
    response = Response(body, status_code=store_status(outcomes), media_type=response_type)
    if outage is not None:  # some were stored before the outage; the failed ones may be sent again
        response.headers["Retry-After"] = str(services.settings.retry_after_s)
    return response


async def _instances(
    services: Services, parts: list[SpooledPart], part_type: str
) -> list[Path | IngestResult]:
    """The Part 10 file of each instance in the body, or why an instance was refused before ingest."""
    max_bytes = services.settings.max_instance_bytes
    if part_type not in METADATA_TYPES:
        return [_refuse_part(part, max_bytes) or part.path for part in parts]
    instances = await run_in_threadpool(
        instances_from_parts, parts, services.blobs.spool_directory, max_bytes, part_type
    )
    _remove(parts)  # the files built from them are what ingest consumes
    return instances


async def _ingest_instances(
    services: Services,
    instances: list[Path | IngestResult],
    study_instance_uid: str | None,
    digests: dict[Path, str],
) -> list[IngestResult]:
    """Ingest every Part 10 file in the worker processes; the outcomes come back in request order.
    `digests`: the SHA-256 of the parts taken while they were spooled (a file built from metadata and
    bulk data parts has none and is hashed at ingest)."""
    batch_id = uuid.uuid4().hex  # a SOP Instance UID repeated within this request is refused
    accepted = [instance for instance in instances if isinstance(instance, Path)]
    sizes = {path: path.stat().st_size for path in accepted}
    try:
        stored = iter(
            await services.ingest.ingest(
                accepted, expected_study_uid=study_instance_uid, batch_id=batch_id, digests=digests
            )
        )
    finally:
        for path in accepted:  # ingest consumes its files; this removes them after any failure
            path.unlink(missing_ok=True)
    finished = [next(stored) if isinstance(instance, Path) else instance for instance in instances]
    _count(instances, finished, sizes)
    _forget_replaced_frame_tables(services, finished)
    _forget_rejected_frame_tables(services, finished)
    return finished


def _remove(parts: list[SpooledPart]) -> None:
    for part in parts:
        part.path.unlink(missing_ok=True)


_NEW_FILE_OUTCOMES = (Outcome.STORED, Outcome.REPLACED, Outcome.PATIENT_KEPT, Outcome.PATIENT_UPDATED)
# A patient-mismatch outcome is reported instead of REPLACED when an instance was replaced as well.
_MAY_HAVE_REPLACED = (Outcome.REPLACED, Outcome.PATIENT_KEPT, Outcome.PATIENT_UPDATED)


def _count(instances: list[Path | IngestResult], results: list[IngestResult], sizes: dict[Path, int]) -> None:
    for instance, result in zip(instances, results, strict=True):
        STOW_INSTANCES.labels(result.outcome.value).inc()
        if result.outcome in _NEW_FILE_OUTCOMES and isinstance(instance, Path):
            STOW_BYTES.inc(sizes[instance])
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
