"""Study, series and instance resources as application/dicom (PS3.18 10.4.1.1.1): which syntax each
instance goes out in, and its Part 10 bytes.

Each instance goes out as stored when the negotiated syntax is its stored one (a ranged read of the
blob as received); else rewritten (`part10_rewrite.iter_rewritten`) as Explicit VR Little Endian,
its pixels decoded or byte-swapped frame by frame (PS3.18 8.7.3.4: Implicit VR and Big Endian never
go on the wire); or, for `transfer-syntax=` an encapsulated syntax, re-encoded into it (one fragment
per frame, each sent as soon as it is encoded under an empty Basic Offset Table unless the encoding
is lossy, Photometric Interpretation and lossy bookkeeping made true), where
`can_rewrite_instance_in` says every frame can be.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from app.dicomweb.errors import NotAcceptable
from app.dicomweb.negotiation import InstanceSelection, negotiate_instance_media_type
from app.dicomweb.scope import Scope
from app.imaging.pixel_description import can_rewrite_instance_in, stored_syntax
from app.retrieve.pixels import AcceptLists, frame_source
from app.retrieve.scopes import CHANGED_SINCE_LOOKUP, refuse_if_unavailable
from app.services import Services
from app.store.conversion.part10_rewrite import iter_rewritten
from app.store.infra.blobs import open_blob
from app.store.read.frame_source import FRAME_CONVERSION_ERRORS
from app.store.read.retrieval import StoredInstance, frames_of, stored_instances


@dataclass(frozen=True, slots=True)
class Part10Plan:
    """One instance of a study, series or instance resource, in the syntax negotiated for it."""

    instance: StoredInstance
    selection: InstanceSelection


def plan_instances(
    accept: AcceptLists, scope: Scope, instances: Sequence[StoredInstance]
) -> list[Part10Plan]:
    """One selection per instance (parts may differ in syntax), leaving out those that cannot be had.

    PS3.18 10.4.3: 206 when only some instances can be returned, 406 when none can. Single-part
    `application/dicom` is only for the instance resource (conformance statement, section 11).
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
                    *accept,
                    stored_syntax=instance.transfer_syntax_uid,
                    can_produce=can_produce,
                    single_part_allowed=scope.sop_instance_uid is not None,
                )
            except NotAcceptable as refusal:
                chosen[key] = refusal
        selection = chosen[key]
        if isinstance(selection, InstanceSelection):
            plans.append(Part10Plan(instance, selection))
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


def instance_body(services: Services, accept: AcceptLists, plan: Part10Plan) -> Iterator[bytes]:
    """The Part 10 bytes of one instance in its selected syntax, in chunks.

    A frame that cannot be decoded or encoded after all (negotiation judges by the attributes, the
    codec by the codestream) is a 406 naming the instance when it happens before the first bytes go
    out; later, it can only cut the body short.
    """
    try:
        yield from _current_instance_chunks(services, accept, plan)
    except FRAME_CONVERSION_ERRORS as exc:
        raise NotAcceptable(
            f"instance {plan.instance.sop_instance_uid} cannot be converted to "
            f"{plan.selection.transfer_syntax} ({exc}); `transfer-syntax=*` gives it as stored"
        ) from exc


def _current_instance_chunks(services: Services, accept: AcceptLists, plan: Part10Plan) -> Iterator[bytes]:
    """The planned instance's chunks; when it was replaced since it was looked up and none of its bytes
    went out yet, its replacement's, provided they go out under the same part header."""
    started = False
    try:
        for chunk in _instance_chunks(services, plan):
            started = True
            yield chunk
    except CHANGED_SINCE_LOOKUP:
        replacement = None if started else _replanned(services, accept, plan)
        if replacement is None:
            raise
        yield from _instance_chunks(services, replacement)


def _replanned(services: Services, accept: AcceptLists, plan: Part10Plan) -> Part10Plan | None:
    with services.engine.connect() as connection:
        instances = stored_instances(connection, plan.instance.scope)
    if not instances:
        return None
    try:
        [replacement] = plan_instances(accept, plan.instance.scope, instances)
    except NotAcceptable:
        return None
    same_header = replacement.selection.part_content_type == plan.selection.part_content_type
    return replacement if same_header else None


def _instance_chunks(services: Services, plan: Part10Plan) -> Iterator[bytes]:
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
