"""Frames, pixeldata and bulkdata responses (PS3.18 10.4.1.1.3-5): the bulk-data category.

Why sync functions: each response is an index lookup then blob reads and maybe a decode, all blocking;
the route runs one of these in the thread pool in a single hop (a frame is the hot path, and every
hop costs more than the lookup). Multipart bodies are generators, read one part at a time.

Octet-stream frames are native little-endian pixels: the stored bytes for native syntaxes (Big
Endian swapped), decoded pixels for compressed ones (colour sample-interleaved, JPEG YCbCr as RGB,
as pydicom decodes). Compressed frames in their stored syntax go out as stored, never decoded; in
another (lossless) syntax they are decoded and encoded (`FrameSource.encoded`), which negotiation
offers only where `PixelDescription.can_make_frames_in` says an encoder can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from fastapi import Response

from app.api.conditional import Validators, make_validators
from app.api.content_coding import Coding
from app.api.multipart import OutgoingPart
from app.api.wado_request import (
    WadoRequest,
    answered_again_if_changed,
    look_up_scope,
    multipart_response,
    not_found_message,
    refuse_if_unavailable,
    scope_description,
    single_part_response,
)
from app.dicomweb.byte_ranges import parse_byte_range
from app.dicomweb.errors import DicomwebError, Gone, NotAcceptable, NotFound
from app.dicomweb.frames import check_frames_exist
from app.dicomweb.mediatypes import EXPLICIT_VR_LITTLE_ENDIAN, OCTET_STREAM, bulk_media_type_for
from app.dicomweb.negotiation import FrameSelection, negotiate_frame_media_type
from app.imaging.codecs.native import little_endian_value, word_bytes
from app.metrics import FRAMES_SERVED, syntax_label
from app.services import Services
from app.store.blobs import BlobNotFound
from app.store.frame_source import FRAME_CONVERSION_ERRORS, FrameSource
from app.store.retrieval import (
    InstanceChanged,
    NoPixelData,
    StoredBulkData,
    StoredFrames,
    StoredInstance,
    frames_of,
    stored_bulkdata,
    stored_frames,
    stored_instances,
)


def _select_frames(
    wado: WadoRequest, stored_syntax_uid: str, can_produce: Callable[[str], bool], single_part_allowed: bool
) -> FrameSelection:
    return negotiate_frame_media_type(
        *wado.accept_lists,
        stored_syntax=stored_syntax_uid,
        can_produce=can_produce,
        single_part_allowed=single_part_allowed,
    )


def frame_source(services: Services, frames: StoredFrames, *, may_be_stale: bool = False) -> FrameSource:
    """Frames read from the blob store, transcoded in the codec pool and kept in the frame cache;
    `may_be_stale` when the frame table came from the frame-table cache."""
    return FrameSource(
        services.blobs,
        frames.data_blob_key,
        frames.fragments,
        frames.pixels,
        pixel_vr=frames.pixel_vr,
        codecs=services.codecs,
        cache=services.transcoded_frames,
        may_be_stale=may_be_stale,
    )


def _nothing_else(_uid: str) -> bool:
    """Bulk data values other than pixels exist only as they are (octet-stream)."""
    return False


def _frame_body(source: FrameSource, selection: FrameSelection, number: int) -> bytes:
    """A frame as stored, as native pixels, or decoded and encoded into the selected syntax."""
    try:
        if selection.media_type == OCTET_STREAM:
            return source.native(number).data
        if selection.transcode:
            return source.encoded(number, selection.transfer_syntax)
        return source.stored(number)
    except FRAME_CONVERSION_ERRORS as exc:  # offer it as stored
        stored_type = bulk_media_type_for(source.syntax.uid)
        raise NotAcceptable(
            f"frame {number} cannot be converted ({exc}); it is available as stored: "
            f"{stored_type}; transfer-syntax={source.syntax.uid}"
        ) from exc


def _gzip_frames(wado: WadoRequest, selection: FrameSelection) -> bool:
    """Uncompressed frames are worth compressing (unless the operator said not to); codestreams are not."""
    if not wado.gzip_frames or selection.media_type != OCTET_STREAM:
        return False
    return wado.coding(brotli_allowed=False) is Coding.GZIP


def frames_url(wado: WadoRequest, instance: StoredInstance) -> str:
    return f"{wado.instance_url(instance)}/frames"


@answered_again_if_changed
def retrieve_frames(services: Services, wado: WadoRequest, numbers: Sequence[int]) -> Response:
    """The frames resource: the listed frames of one instance (PS3.18 10.4.1.1.4).

    The frame table comes from the per-process cache when it holds the instance (a viewer's next
    frame); a cached table whose blob has gone (the instance was replaced) is looked up again.
    """
    frames = services.frame_tables.get(wado.scope)
    if frames is None:
        return _frames_response(services, wado, numbers, _look_up_frames(services, wado))
    try:
        return _frames_response(services, wado, numbers, frames, from_cache=True)
    except (BlobNotFound, NotFound):  # replaced since: its frames (and their number) may differ
        services.frame_tables.forget(wado.scope)
        return _frames_response(services, wado, numbers, _look_up_frames(services, wado))


def _look_up_frames(services: Services, wado: WadoRequest) -> StoredFrames:
    started = services.frame_tables.now()  # before the snapshot: the entry is never older than its TTL
    with services.engine.connect() as connection:
        try:
            frames = stored_frames(connection, wado.scope)
        except NoPixelData as exc:
            raise NotFound(
                f"instance {wado.scope.sop_instance_uid} has no pixel data, hence no frames"
            ) from exc
    if frames is None:
        raise NotFound(not_found_message(wado.scope))
    services.frame_tables.put(wado.scope, frames, looked_up_at=started)
    return frames


def _frames_response(
    services: Services,
    wado: WadoRequest,
    numbers: Sequence[int],
    frames: StoredFrames,
    *,
    from_cache: bool = False,
) -> Response:
    if frames.instance.unavailable_reason is not None:
        raise Gone(frames.instance.unavailable_reason)
    source = frame_source(services, frames, may_be_stale=from_cache)
    if source.syntax.is_video:
        raise NotAcceptable("the frames of a video are one stream and cannot be retrieved one by one")
    check_frames_exist(tuple(numbers), frames.layout.number_of_frames)
    selection = _select_frames(wado, source.syntax.uid, frames.pixels.can_make_frames_in, len(numbers) == 1)
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
    FRAMES_SERVED.labels(syntax_label(source.syntax.uid), served).inc(len(numbers))
    url = frames_url(wado, frames.instance)
    if not selection.multipart:
        body = _frame_body(source, selection, numbers[0])
        return single_part_response(
            body, selection.part_content_type, f"{url}/{numbers[0]}", validators, gzip=gzip
        )
    parts = (
        OutgoingPart(selection.part_content_type, f"{url}/{number}", _frame_body(source, selection, number))
        for number in numbers
    )
    return multipart_response(parts, selection.content_type, validators, gzip=gzip)


@dataclass(frozen=True, slots=True)
class _InstancePlan:
    instance: StoredInstance
    selection: FrameSelection


def _plan_pixel_parts(wado: WadoRequest, instances: Sequence[StoredInstance]) -> list[_InstancePlan]:
    """One negotiated selection per instance with frames, leaving out those that cannot be had
    (a syntax they cannot be made into, a video): 206 when some are left out, 406 when all are.

    A single part is only for the instance resource holding one frame (PS3.18 8.7.3.3: one item).
    """
    with_frames = [i for i in instances if i.pixels is not None]
    if not with_frames:
        raise NotFound(f"nothing in {scope_description(wado.scope)} has pixel data")
    single = (
        wado.scope.sop_instance_uid is not None
        and sum(i.pixels.layout.number_of_frames for i in with_frames if i.pixels is not None) == 1
    )
    plans: list[_InstancePlan] = []
    refusals: list[DicomwebError] = []
    for instance in with_frames:
        if instance.unavailable_reason is not None:
            refusals.append(Gone(instance.unavailable_reason))
            continue
        assert instance.pixels is not None
        syntax = instance.pixels.syntax
        if syntax.is_video:
            refusals.append(
                NotAcceptable(f"instance {instance.sop_instance_uid} is a video: its frames are one stream")
            )
            continue
        try:
            selection = _select_frames(wado, syntax.uid, instance.pixels.can_make_frames_in, single)
        except NotAcceptable as refusal:
            refusals.append(refusal)
            continue
        plans.append(_InstancePlan(instance, selection))
    if not plans:
        raise refusals[0]
    return plans


def _pixel_parts(
    services: Services, wado: WadoRequest, plans: Sequence[_InstancePlan]
) -> Iterator[OutgoingPart]:
    """Every frame of every planned instance, one part each, read lazily."""
    for plan in plans:
        frames, selection = _current_frames(services, wado, plan)
        source = frame_source(services, frames)
        url = frames_url(wado, frames.instance)
        for number in range(1, frames.layout.number_of_frames + 1):
            body = _frame_body(source, selection, number)
            yield OutgoingPart(selection.part_content_type, f"{url}/{number}", body)


def _current_frames(
    services: Services, wado: WadoRequest, plan: _InstancePlan
) -> tuple[StoredFrames, FrameSelection]:
    """The frame table of the planned instance; when it was replaced since the plan was made (a long
    response reaches it late), its replacement's, with the frame media type negotiated again."""
    with services.engine.connect() as connection:
        try:
            return frames_of(connection, plan.instance), plan.selection
        except InstanceChanged:
            try:
                frames = stored_frames(connection, plan.instance.scope)
            except NoPixelData:
                frames = None
    if frames is None:
        raise NotFound(f"instance {plan.instance.sop_instance_uid} was removed while it was being retrieved")
    syntax = frames.pixels.syntax
    if syntax.is_video:
        raise NotAcceptable(f"instance {plan.instance.sop_instance_uid} was replaced by a video")
    return frames, _select_frames(wado, syntax.uid, frames.pixels.can_make_frames_in, False)


@answered_again_if_changed
def retrieve_pixeldata(services: Services, wado: WadoRequest) -> Response:
    """The pixeldata resource: every frame of every instance in the scope (PS3.18 10.4.1.1.5)."""
    instances, version = look_up_scope(services, wado)
    plans = _plan_pixel_parts(wado, instances)
    complete = len(plans) == sum(1 for i in instances if i.pixels is not None)
    return _pixel_response(
        services, wado, plans, version.fingerprint, version.last_modified, "pixeldata", complete=complete
    )


def _pixel_response(
    services: Services,
    wado: WadoRequest,
    plans: Sequence[_InstancePlan],
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
        with services.engine.connect() as connection:
            frames = frames_of(connection, plan.instance)
        body = _frame_body(frame_source(services, frames), first, 1)
        url = f"{frames_url(wado, plan.instance)}/1"
        return single_part_response(body, first.part_content_type, url, validators, gzip=gzip)
    parts = _pixel_parts(services, wado, plans)
    status = 200 if complete else 206  # PS3.18 10.4.3: only some of the targets could be returned
    return multipart_response(parts, first.content_type, validators, gzip=gzip, status_code=status)


def bulk_value(services: Services, item: StoredBulkData, start: int = 0, stop: int | None = None) -> bytes:
    """Bytes `start:stop` of a bulk data value, little-endian (PS3.18 8.7.3.3.1) whatever the stored
    byte order. Only those bytes are read, widened to whole words where a word must be swapped."""
    stop = item.length if stop is None else stop
    word = 1 if item.little_endian else word_bytes(item.vr)
    first, last = start - start % word, min(item.length, -(-stop // word) * word)
    data = services.blobs.read_range(item.instance.data_blob_key, item.offset + first, last - first)
    data = little_endian_value(data, item.vr, big_endian=not item.little_endian)
    return data[start - first : stop - first]


def _is_pixel_data(item: StoredBulkData) -> bool:
    return item.instance.pixel_data_tag is not None and item.path == f"{item.instance.pixel_data_tag:08X}"


def _bulk_url(wado: WadoRequest, item: StoredBulkData) -> str:
    return f"{wado.instance_url(item.instance)}/bulkdata/{item.path}"


@answered_again_if_changed
def retrieve_bulkdata_value(services: Services, wado: WadoRequest, path: str) -> Response:
    """One BulkDataURI of an instance (PS3.18 10.4.1.1.5). Pixel Data answers as the pixeldata resource;
    any other value as octet-stream, a `Range` of it as 206 Partial Content."""
    with services.engine.connect() as connection:
        instances = stored_instances(connection, wado.scope)
        items = stored_bulkdata(connection, instances, path)
    if not instances:
        raise NotFound(not_found_message(wado.scope))
    refuse_if_unavailable(instances)
    if not items:
        raise NotFound(f"instance {wado.scope.sop_instance_uid} has no bulk data at {path}")
    item = items[0]
    if _is_pixel_data(item):
        plans = _plan_pixel_parts(wado, [item.instance])
        fingerprint = item.instance.data_blob_key
        return _pixel_response(services, wado, plans, fingerprint, item.instance.updated_at, "bulkdata")
    selection = _select_frames(wado, EXPLICIT_VR_LITTLE_ENDIAN, _nothing_else, True)
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
    with services.engine.connect() as connection:
        items = stored_bulkdata(connection, instances)
    with_pixels = [i for i in instances if i.pixels is not None]
    others: dict[int, list[StoredBulkData]] = {}
    for item in items:
        if not _is_pixel_data(item) and item.instance.unavailable_reason is None:
            others.setdefault(item.instance.pk, []).append(item)
    left_out = any(item.instance.unavailable_reason for item in items)  # flagged files' values
    refusals: list[DicomwebError] = []
    plans: list[_InstancePlan] = []
    if with_pixels:
        try:
            plans = _plan_pixel_parts(wado, with_pixels)
        except (NotAcceptable, Gone) as refusal:
            refusals.append(refusal)
    octet: FrameSelection | None = None
    if others:  # non-pixel values only exist as octet-stream
        try:
            octet = _select_frames(wado, EXPLICIT_VR_LITTLE_ENDIAN, _nothing_else, False)
        except NotAcceptable as refusal:
            refusals.append(refusal)
    if not plans and octet is None:
        if refusals:
            raise refusals[0]
        raise NotFound(f"nothing in {scope_description(wado.scope)} has bulk data")
    gzip = all(_gzip_frames(wado, p.selection) for p in plans) and (
        octet is None or _gzip_frames(wado, octet)
    )
    content_type = (plans[0].selection if plans else octet).content_type  # type: ignore[union-attr]
    validators: Validators = make_validators(
        "scope-bulkdata",
        version.fingerprint,
        *(p.selection.part_content_type for p in plans),
        wado.base_url,
        gzip,
        last_modified=version.last_modified,
    )
    if (not_modified := wado.not_modified(validators)) is not None:
        return not_modified

    def parts() -> Iterator[OutgoingPart]:
        plan_of = {plan.instance.pk: plan for plan in plans}
        for instance in instances:
            if octet is not None:
                for item in others.get(instance.pk, ()):
                    body = bulk_value(services, item)
                    yield OutgoingPart(octet.part_content_type, _bulk_url(wado, item), body)
            if instance.pk in plan_of:
                yield from _pixel_parts(services, wado, [plan_of[instance.pk]])

    complete = len(plans) == len(with_pixels) and (octet is not None or not others) and not left_out
    status = 200 if complete else 206  # PS3.18 10.4.3: some of the bulk data could not be had
    return multipart_response(parts(), content_type, validators, gzip=gzip, status_code=status)
