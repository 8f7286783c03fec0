"""DELETE on a study, a series or an instance: a Fovea extension, as PS3.18 defines no delete transaction.

204 once no server process can serve anything of the scope any more, 404 when nothing matched. The
index commit alone does not ensure that: each process keeps frame tables for a few seconds
(store/caches/frame_tables.py), so the answer waits out that lifetime after the commit (without holding a
thread), rather than every cached frame paying an index round trip. The blobs go after the deletion
grace period (store/upkeep/deletion.py), so reads already under way finish.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from app.api.deps import ServicesDep
from app.api.wado_request import not_found_message
from app.audit.notes import note_audited_uids
from app.dicomweb.errors import NotFound
from app.dicomweb.scope import INSTANCE_ROUTE, SERIES_ROUTE, STUDY_ROUTE, Scope
from app.dicomweb.uids import require_valid_uid
from app.metrics import INSTANCES_DELETED
from app.services import Services
from app.store.upkeep.deletion import Deletion, delete_scope

router = APIRouter(tags=["Delete (extension)"])


@router.delete(STUDY_ROUTE, status_code=204, summary="Delete a study (extension)")
async def delete_study(study_instance_uid: str, request: Request, services: ServicesDep) -> Response:
    return await _delete(request, services, Scope(study_instance_uid))


@router.delete(SERIES_ROUTE, status_code=204, summary="Delete a series (extension)")
async def delete_series(
    study_instance_uid: str, series_instance_uid: str, request: Request, services: ServicesDep
) -> Response:
    return await _delete(request, services, Scope(study_instance_uid, series_instance_uid))


@router.delete(INSTANCE_ROUTE, status_code=204, summary="Delete an instance (extension)")
async def delete_instance(
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    scope = Scope(study_instance_uid, series_instance_uid, sop_instance_uid)
    return await _delete(request, services, scope)


async def _delete(request: Request, services: Services, scope: Scope) -> Response:
    require_valid_uid(scope.study_instance_uid, "Study Instance UID")
    if scope.series_instance_uid is not None:
        require_valid_uid(scope.series_instance_uid, "Series Instance UID")
    if scope.sop_instance_uid is not None:
        require_valid_uid(scope.sop_instance_uid, "SOP Instance UID")
    grace_s = services.settings.blob_deletion_grace_s
    deletion = await services.run_blocking(delete_scope, services.engine, scope, grace_s=grace_s)
    if not deletion:
        raise NotFound(not_found_message(scope))
    _after_deletion(request, services, deletion)
    await asyncio.sleep(services.frame_tables.ttl_s)  # every process's cached frame tables expired
    return Response(status_code=204)


def _after_deletion(request: Request, services: Services, deletion: Deletion) -> None:
    """Record what went (audit trail, metrics) and drop this process's cached frame tables of it."""
    note_audited_uids(
        request,
        studies=deletion.studies,
        series=deletion.series,
        instances=(item.sop_instance_uid for item in deletion.instances),
    )
    INSTANCES_DELETED.inc(len(deletion.instances))
    for item in deletion.instances:
        services.frame_tables.forget(item.scope)
