"""Study, series and instance resources (PS3.18 10.4.1.1.1): whole instances as application/dicom.

Which syntax each instance goes out in, and its Part 10 bytes, are planned in
`app/retrieve/instances.py`; here the request is read and the response shaped (one part per
instance, or a single part for one instance). Bulk-data part types
(`type="application/octet-stream"`) answer as the scope's bulkdata resource (Table 10.4.4-1).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from fastapi import Response

from app.api.conditional import make_validators
from app.api.multipart import OutgoingPart
from app.api.wado_pixels import retrieve_scope_bulkdata
from app.api.wado_request import (
    VARY,
    StreamedResponse,
    WadoRequest,
    answered_again_if_changed,
    look_up_scope,
    multipart_response,
)
from app.dicomweb.mediatypes import ResourceCategory
from app.retrieve.instances import instance_body, plan_instances
from app.services import Services


@answered_again_if_changed
def retrieve_instances(services: Services, wado: WadoRequest) -> Response:
    """Every instance of the scope, multipart/related or (one instance) single part."""
    instances, version = look_up_scope(services, wado)
    plans = plan_instances(wado.accept_lists, wado.scope, instances)
    if any(plan.selection.category is ResourceCategory.BULKDATA for plan in plans):
        return retrieve_scope_bulkdata(services, wado)
    status = 200 if len(plans) == len(instances) else 206  # some could not be had in any acceptable form
    validators = make_validators(
        "instances",
        version.fingerprint,
        *(plan.selection.part_content_type for plan in plans),
        plans[0].selection.multipart,
        wado.base_url,
        last_modified=version.last_modified,
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    first = plans[0].selection
    if not first.multipart:
        headers = {
            **validators.headers,
            "Vary": VARY,
            "Content-Location": wado.instance_url(plans[0].instance),
        }
        body = instance_body(services, wado.accept_lists, plans[0])
        head = next(body)  # made here, in the thread pool: a failure is still an error response
        return StreamedResponse(
            itertools.chain((head,), body), media_type=first.part_content_type, headers=headers
        )
    parts: Iterable[OutgoingPart] = (
        OutgoingPart(
            plan.selection.part_content_type,
            wado.instance_url(plan.instance),
            instance_body(services, wado.accept_lists, plan),
        )
        for plan in plans
    )
    return multipart_response(parts, first.content_type, validators, status_code=status)
