"""Frames, pixeldata and bulkdata responses (PS3.18 10.4.1.1.3-5): the bulk-data category.

Why sync functions: each response is an index lookup then blob reads and maybe a decode, all blocking;
the route runs one of these in the thread pool in a single hop (a frame is the hot path, and every
hop costs more than the lookup). Multipart bodies are generators, read one part at a time.

What each response holds is planned in `app/retrieve/pixels.py`; here the request is read and the
plan shaped into a response (validators, URLs, content coding).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from fastapi import Response

from app.api.conditional import make_validators
from app.api.content_coding import Coding
from app.api.multipart import OutgoingPart
from app.api.wado_request import (
    WadoRequest,
    answered_again_if_changed,
    look_up_scope,
    multipart_response,
    single_part_response,
)
from app.dicomweb.byte_ranges import parse_byte_range
from app.dicomweb.errors import NotFound
from app.dicomweb.mediatypes import OCTET_STREAM
from app.dicomweb.negotiation import FrameSelection
from app.metrics import FRAMES_SERVED, syntax_label
from app.retrieve.pixels import (
    BulkValuePart,
    FramePart,
    FramesPlan,
    InstancePlan,
    bulk_value,
    is_pixel_data,
    look_up_bulk_value,
    look_up_frames,
    only_frame,
    pixel_parts,
    plan_frames,
    plan_pixel_parts,
    plan_scope_bulkdata,
    scope_bulkdata_parts,
    select_octet_stream,
)
from app.services import Services
from app.store.infra.blobs import BlobNotFound, InMemoryReads
from app.store.read.retrieval import StoredBulkData, StoredFrames, StoredInstance


def _gzip_frames(wado: WadoRequest, selection: FrameSelection) -> bool:
    """Uncompressed frames are worth compressing (unless the operator said not to); codestreams are not."""
    if not wado.gzip_frames or selection.media_type != OCTET_STREAM:
        return False
    return wado.coding(brotli_allowed=False) is Coding.GZIP


def frames_url(wado: WadoRequest, instance: StoredInstance) -> str:
    return f"{wado.instance_url(instance)}/frames"


# Frames made on the event loop up to this size: reading them from memory and framing them costs
# less than the hand-off to a retrieval thread and back (about 0.2 ms of a 1.4 ms request for a 512 kB
# frame); larger ones would hold the loop up.
IN_LOOP_BYTES = 2 * 1024 * 1024


def frames_answered_in_loop(services: Services, wado: WadoRequest, numbers: Sequence[int]) -> Response | None:
    """The frames response, when it can be made without waiting or decoding: the frame table cached, the
    frames sent as stored (or native pixels of a native file) without gzip, at most IN_LOOP_BYTES, and
    every byte of them already in memory. None otherwise: `retrieve_frames` answers, in a thread."""
    frames = services.frame_tables.get(wado.scope)
    if frames is None:
        return None
    try:
        plan = plan_frames(
            services, wado.accept_lists, frames, numbers, from_cache=True, blobs=InMemoryReads(services.blobs)
        )
        if (
            not plan.made_without_codecs
            or plan.stored_bytes > IN_LOOP_BYTES
            or _gzip_frames(wado, plan.selection)
        ):
            return None
        plan = plan.with_bodies_read()
    except Exception:  # not in memory, replaced, refused...: the thread path answers, errors included
        return None
    return _frames_response(services, wado, numbers, frames, plan=plan)


@answered_again_if_changed
def retrieve_frames(services: Services, wado: WadoRequest, numbers: Sequence[int]) -> Response:
    """The frames resource: the listed frames of one instance (PS3.18 10.4.1.1.4).

    The frame table comes from the per-process cache when it holds the instance (a viewer's next
    frame); a cached table whose blob has gone (the instance was replaced) is looked up again.
    """
    frames = services.frame_tables.get(wado.scope)
    if frames is None:
        return _frames_response(services, wado, numbers, look_up_frames(services, wado.scope))
    try:
        return _frames_response(services, wado, numbers, frames, from_cache=True)
    except (BlobNotFound, NotFound):  # replaced since: its frames (and their number) may differ
        services.frame_tables.forget(wado.scope)
        return _frames_response(services, wado, numbers, look_up_frames(services, wado.scope))


def _frames_response(
    services: Services,
    wado: WadoRequest,
    numbers: Sequence[int],
    frames: StoredFrames,
    *,
    from_cache: bool = False,
    plan: FramesPlan | None = None,
) -> Response:
    """The response for `plan` (made here when None): 304 when the client's copy is current."""
    if plan is None:
        plan = plan_frames(services, wado.accept_lists, frames, numbers, from_cache=from_cache)
    selection = plan.selection
    gzip = _gzip_frames(wado, selection)
    validators = make_validators(
        "frames",
        frames.data_blob_key,
        ",".join(map(str, numbers)),
        selection.content_type,
        wado.base_url,
        gzip,
        last_modified=frames.instance.updated_at,
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    served = syntax_label(selection.transfer_syntax)
    FRAMES_SERVED.labels(syntax_label(plan.source.syntax.uid), served).inc(len(numbers))
    url = frames_url(wado, frames.instance)
    if not selection.multipart:
        body = plan.body(numbers[0])
        return single_part_response(
            body, selection.part_content_type, f"{url}/{numbers[0]}", validators, gzip=gzip
        )
    parts = (
        OutgoingPart(selection.part_content_type, f"{url}/{number}", plan.body(number)) for number in numbers
    )
    return multipart_response(parts, selection.content_type, validators, gzip=gzip)


def _frame_parts(wado: WadoRequest, parts: Iterable[FramePart | BulkValuePart]) -> Iterator[OutgoingPart]:
    """Planned parts with the URL each came from."""
    for part in parts:
        if isinstance(part, FramePart):
            url = f"{frames_url(wado, part.instance)}/{part.number}"
        else:
            url = _bulk_url(wado, part.item)
        yield OutgoingPart(part.content_type, url, part.body)


@answered_again_if_changed
def retrieve_pixeldata(services: Services, wado: WadoRequest) -> Response:
    """The pixeldata resource: every frame of every instance in the scope (PS3.18 10.4.1.1.5)."""
    instances, version = look_up_scope(services, wado)
    plans = plan_pixel_parts(wado.accept_lists, wado.scope, instances)
    complete = len(plans) == sum(1 for i in instances if i.pixels is not None)
    return _pixel_response(
        services, wado, plans, version.fingerprint, version.last_modified, "pixeldata", complete=complete
    )


def _pixel_response(
    services: Services,
    wado: WadoRequest,
    plans: Sequence[InstancePlan],
    fingerprint: str,
    last_modified: object,
    kind: str,
    *,
    complete: bool = True,
) -> Response:
    first = plans[0].selection
    gzip = all(_gzip_frames(wado, plan.selection) for plan in plans)
    validators = make_validators(
        kind,
        fingerprint,
        *(plan.selection.part_content_type for plan in plans),
        first.multipart,
        wado.base_url,
        gzip,
        last_modified=last_modified,  # type: ignore[arg-type]
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    if not first.multipart:  # a single frame in all the scope
        plan = plans[0]
        body = only_frame(services, plan)
        url = f"{frames_url(wado, plan.instance)}/1"
        return single_part_response(body, first.part_content_type, url, validators, gzip=gzip)
    parts = _frame_parts(wado, pixel_parts(services, wado.accept_lists, plans))
    status = 200 if complete else 206  # PS3.18 10.4.3: only some of the targets could be returned
    return multipart_response(parts, first.content_type, validators, gzip=gzip, status_code=status)


def _bulk_url(wado: WadoRequest, item: StoredBulkData) -> str:
    return f"{wado.instance_url(item.instance)}/bulkdata/{item.path}"


@answered_again_if_changed
def retrieve_bulkdata_value(services: Services, wado: WadoRequest, path: str) -> Response:
    """One BulkDataURI of an instance (PS3.18 10.4.1.1.5). Pixel Data answers as the pixeldata resource;
    any other value as octet-stream, a `Range` of it as 206 Partial Content."""
    item = look_up_bulk_value(services, wado.scope, path)
    if is_pixel_data(item):
        plans = plan_pixel_parts(wado.accept_lists, wado.scope, [item.instance])
        fingerprint = item.instance.data_blob_key
        return _pixel_response(services, wado, plans, fingerprint, item.instance.updated_at, "bulkdata")
    selection = select_octet_stream(wado.accept_lists, single_part_allowed=True)
    byte_range = parse_byte_range(wado.request.headers.get("range"), item.length)
    gzip = byte_range is None and _gzip_frames(wado, selection)
    validators = make_validators(
        "bulkdata",
        item.instance.data_blob_key,
        path,
        selection.content_type,
        wado.base_url,
        gzip,
        last_modified=item.instance.updated_at,
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    url = _bulk_url(wado, item)
    status, extra = 200, {"Accept-Ranges": "bytes"}
    if byte_range is None:
        value = bulk_value(services, item)
    else:
        status = 206
        value = bulk_value(services, item, byte_range.start, byte_range.stop)
        extra["Content-Range"] = byte_range.content_range(item.length)
    if not selection.multipart:
        return single_part_response(
            value,
            selection.part_content_type,
            url,
            validators,
            gzip=gzip,
            status_code=status,
            extra_headers=extra,
        )
    headers = tuple(extra.items()) if byte_range is not None else ()
    parts = [OutgoingPart(selection.part_content_type, url, value, headers)]
    response = multipart_response(parts, selection.content_type, validators, gzip=gzip, status_code=status)
    response.headers.update(extra)
    return response


@answered_again_if_changed
def retrieve_scope_bulkdata(services: Services, wado: WadoRequest) -> Response:
    """The bulkdata resource of a study, series or instance: every bulk value of its instances.

    Octet-stream parts only carry the non-pixel values; Pixel Data comes as its frames, in the
    negotiated frame media type, each part's Content-Location naming where it came from.
    """
    instances, version = look_up_scope(services, wado)
    plan = plan_scope_bulkdata(services, wado.accept_lists, wado.scope, instances)
    gzip = all(_gzip_frames(wado, p.selection) for p in plan.plans) and (
        plan.octet is None or _gzip_frames(wado, plan.octet)
    )
    validators = make_validators(
        "scope-bulkdata",
        version.fingerprint,
        *(p.selection.part_content_type for p in plan.plans),
        wado.base_url,
        gzip,
        last_modified=version.last_modified,
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified
    parts = _frame_parts(wado, scope_bulkdata_parts(services, wado.accept_lists, plan))
    status = 200 if plan.complete else 206  # PS3.18 10.4.3: some of the bulk data could not be had
    return multipart_response(parts, plan.content_type, validators, gzip=gzip, status_code=status)
