"""Study, series and instance resources (PS3.18 10.4.1.1.1): whole instances as application/dicom.

Each instance goes out as stored when the negotiated syntax is its stored one (a ranged read of the
blob as received); else rewritten as Explicit VR Little Endian, streamed, its pixels decoded or
byte-swapped frame by frame (PS3.18 8.7.3.4: Implicit VR and Big Endian never go on the wire); or,
for `transfer-syntax=` an encapsulated syntax, re-encoded into it (`iter_rewritten`: one fragment
per frame, each sent as soon as it is encoded under an empty Basic Offset Table unless the encoding
is lossy, Photometric Interpretation and lossy bookkeeping made true), where
`can_rewrite_instance_in` says every frame can be. Bulk-data part types
(`type="application/octet-stream"`) answer as the scope's bulkdata resource (Table 10.4.4-1).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from fastapi import Response
from fastapi.responses import StreamingResponse

from app.api.conditional import make_validators
from app.api.multipart import OutgoingPart
from app.api.wado_pixels import retrieve_scope_bulkdata
from app.api.wado_request import (
    CHANGED_SINCE_LOOKUP,
    VARY,
    WadoRequest,
    answered_again_if_changed,
    look_up_scope,
    multipart_response,
    refuse_if_unavailable,
)
from app.dicomweb.errors import NotAcceptable
from app.dicomweb.mediatypes import ResourceCategory
from app.dicomweb.negotiation import InstanceSelection, negotiate_instance_media_type
from app.imaging.pixel_description import can_rewrite_instance_in, stored_syntax
from app.retrieve.pixels import frame_source
from app.services import Services
from app.store.blobs import open_blob
from app.store.frame_source import FRAME_CONVERSION_ERRORS
from app.store.part10_rewrite import iter_rewritten
from app.store.retrieval import StoredInstance, frames_of, stored_instances


@dataclass(frozen=True, slots=True)
class _Plan:
    instance: StoredInstance
    selection: InstanceSelection


def _negotiate(wado: WadoRequest, instances: list[StoredInstance]) -> list[_Plan]:
    """One selection per instance (parts may differ in syntax), leaving out those that cannot be had.

    PS3.18 10.4.3: 206 when only some instances can be returned, 406 when none can. Single-part
    `application/dicom` is only for the instance resource (digest example d).
    """
    chosen: dict[tuple[object, ...], InstanceSelection | NotAcceptable] = {}
    plans = []
    for instance in instances:
        if instance.unavailable_reason is not None:  # a flagged file: left out, as one not acceptable
            continue
        can_produce = partial(can_rewrite_instance_in, instance.pixels)
        key = _production_key(instance)
        if key not in chosen:
            try:
                chosen[key] = negotiate_instance_media_type(
                    *wado.accept_lists,
                    stored_syntax=instance.transfer_syntax_uid,
                    can_produce=can_produce,
                    single_part_allowed=wado.scope.sop_instance_uid is not None,
                )
            except NotAcceptable as refusal:
                chosen[key] = refusal
        selection = chosen[key]
        if isinstance(selection, InstanceSelection):
            plans.append(_Plan(instance, selection))
    if not plans:
        refuse_if_unavailable(instances)
        raise next(value for value in chosen.values() if isinstance(value, NotAcceptable))
    return plans


def _production_key(instance: StoredInstance) -> tuple[object, ...]:
    """Instances alike in all that `can_rewrite_instance_in` reads negotiate alike (a series: one or two)."""
    return (
        instance.transfer_syntax_uid,
        instance.pixels,
        instance.lossy_image_compression,
    )


def _instance_body(services: Services, wado: WadoRequest, plan: _Plan) -> Iterator[bytes]:
    """The Part 10 bytes of one instance in its selected syntax, in chunks.

    A frame that cannot be decoded or encoded after all (negotiation judges by the attributes, the
    codec by the codestream) is a 406 naming the instance when it happens before the first bytes go
    out; later, it can only cut the body short.
    """
    try:
        yield from _current_instance_chunks(services, wado, plan)
    except FRAME_CONVERSION_ERRORS as exc:
        raise NotAcceptable(
            f"instance {plan.instance.sop_instance_uid} cannot be converted to "
            f"{plan.selection.transfer_syntax} ({exc}); `transfer-syntax=*` gives it as stored"
        ) from exc


def _current_instance_chunks(services: Services, wado: WadoRequest, plan: _Plan) -> Iterator[bytes]:
    """The planned instance's chunks; when it was replaced since it was looked up and none of its bytes
    went out yet, its replacement's, provided they go out under the same part header."""
    started = False
    try:
        for chunk in _instance_chunks(services, plan):
            started = True
            yield chunk
    except CHANGED_SINCE_LOOKUP:
        replacement = None if started else _replanned(services, wado, plan)
        if replacement is None:
            raise
        yield from _instance_chunks(services, replacement)


def _replanned(services: Services, wado: WadoRequest, plan: _Plan) -> _Plan | None:
    with services.engine.connect() as connection:
        instances = stored_instances(connection, plan.instance.scope)
    if not instances:
        return None
    try:
        [replacement] = _negotiate(wado, instances)
    except NotAcceptable:
        return None
    same_header = replacement.selection.part_content_type == plan.selection.part_content_type
    return replacement if same_header else None


def _instance_chunks(services: Services, plan: _Plan) -> Iterator[bytes]:
    instance = plan.instance
    if not plan.selection.transcode:
        yield from services.blobs.iter_range(instance.blob_key, 0, instance.blob_size)
        return
    syntax = stored_syntax(instance.transfer_syntax_uid)
    target = plan.selection.transfer_syntax
    source = None
    if instance.pixels is not None and instance.pixel_data_tag is not None:
        with services.engine.connect() as connection:
            source = frame_source(services, frames_of(connection, instance))
    key = instance.data_blob_key
    with open_blob(services.blobs, key, services.blobs.size(key)) as stored:
        yield from iter_rewritten(
            stored,
            syntax,
            target,
            source,
            instance.pixel_data_tag or 0,
            spool_directory=str(services.blobs.spool_directory),
            streamed=True,
        )


@answered_again_if_changed
def retrieve_instances(services: Services, wado: WadoRequest) -> Response:
    """Every instance of the scope, multipart/related or (one instance) single part."""
    instances, version = look_up_scope(services, wado)
    plans = _negotiate(wado, instances)
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
        body = _instance_body(services, wado, plans[0])
        head = next(body)  # made here, in the thread pool: a failure is still an error response
        return StreamingResponse(
            itertools.chain((head,), body), media_type=first.part_content_type, headers=headers
        )
    parts: Iterable[OutgoingPart] = (
        OutgoingPart(
            plan.selection.part_content_type,
            wado.instance_url(plan.instance),
            _instance_body(services, wado, plan),
        )
        for plan in plans
    )
    return multipart_response(parts, first.content_type, validators, status_code=status)
