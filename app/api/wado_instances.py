"""Study, series and instance resources (PS3.18 10.4.1.1.1): whole instances as application/dicom.

Each instance goes out as stored when the negotiated syntax is its stored one (a ranged read of the
blob as received), else rewritten as Explicit VR Little Endian, streamed, its pixels decoded or
byte-swapped frame by frame (PS3.18 8.7.3.4: Implicit VR and Big Endian never go on the wire).
Other target syntaxes need the transcoder (not yet), so such Accepts get 406 unless something else
in them fits. Bulk-data part types (`type="application/octet-stream"`) answer as the scope's bulkdata
resource (Table 10.4.4-1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fastapi import Response
from fastapi.responses import StreamingResponse

from app.api.conditional import make_validators
from app.api.multipart import OutgoingPart
from app.api.wado_pixels import retrieve_scope_bulkdata
from app.api.wado_request import VARY, WadoRequest, look_up_scope, multipart_response
from app.dicomweb.errors import NotAcceptable
from app.dicomweb.mediatypes import EXPLICIT_VR_LITTLE_ENDIAN, ResourceCategory
from app.dicomweb.negotiation import InstanceSelection, negotiate_instance_media_type
from app.imaging.transcode import iter_explicit_vr_little_endian
from app.services import Services
from app.store.blobs import open_blob
from app.store.frame_source import FrameSource, fits_explicit_vr_little_endian, stored_syntax
from app.store.retrieval import StoredInstance, frames_of


@dataclass(frozen=True, slots=True)
class _Plan:
    instance: StoredInstance
    selection: InstanceSelection


def _negotiate(wado: WadoRequest, instances: list[StoredInstance]) -> list[_Plan]:
    """One selection per instance (parts may differ in syntax), leaving out those that cannot be had.

    PS3.18 10.4.3: 206 when only some instances can be returned, 406 when none can. Single-part
    `application/dicom` is only for the instance resource (digest example d).
    """
    chosen: dict[tuple[str, bool], InstanceSelection | NotAcceptable] = {}
    plans = []
    for instance in instances:
        syntax = stored_syntax(instance.transfer_syntax_uid)
        producible = fits_explicit_vr_little_endian(instance.pixels, syntax)
        key = (syntax.uid, producible)
        if key not in chosen:
            try:
                chosen[key] = negotiate_instance_media_type(
                    *wado.accept_lists,
                    stored_syntax=syntax.uid,
                    can_produce=lambda uid, ok=producible: uid == EXPLICIT_VR_LITTLE_ENDIAN and ok,  # type: ignore[misc]
                    single_part_allowed=wado.scope.sop_instance_uid is not None,
                )
            except NotAcceptable as refusal:
                chosen[key] = refusal
        selection = chosen[key]
        if isinstance(selection, InstanceSelection):
            plans.append(_Plan(instance, selection))
    if not plans:
        raise next(value for value in chosen.values() if isinstance(value, NotAcceptable))
    return plans


def _instance_body(services: Services, plan: _Plan) -> Iterator[bytes]:
    """The Part 10 bytes of one instance in its selected syntax, in chunks."""
    instance = plan.instance
    if not plan.selection.transcode:
        yield from services.blobs.iter_range(instance.blob_key, 0, instance.blob_size)
        return
    syntax = stored_syntax(instance.transfer_syntax_uid)
    pixels = None
    if instance.pixels is not None and instance.pixel_data_tag is not None:
        with services.engine.connect() as connection:
            frames = frames_of(connection, instance)
        pixels = FrameSource(services.blobs, frames).native_pixels(instance.pixel_data_tag)
    key = instance.data_blob_key
    with open_blob(services.blobs, key, services.blobs.size(key)) as source:
        yield from iter_explicit_vr_little_endian(source, big_endian=syntax.big_endian, pixels=pixels)


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
        return StreamingResponse(
            _instance_body(services, plans[0]), media_type=first.part_content_type, headers=headers
        )  # one instance in scope: 200, or the 406 above
    parts: Iterable[OutgoingPart] = (
        OutgoingPart(
            plan.selection.part_content_type,
            wado.instance_url(plan.instance),
            _instance_body(services, plan),
        )
        for plan in plans
    )
    return multipart_response(parts, first.content_type, validators, status_code=status)
