"""Frames, pixeldata and bulkdata planning (PS3.18 10.4.1.1.3-5): which frames and values a request
gets, in which media type, and their bytes, as typed results the HTTP layer shapes into responses.

Octet-stream frames are native little-endian pixels: the stored bytes for native syntaxes (Big
Endian swapped), decoded pixels for compressed ones (colour sample-interleaved, JPEG YCbCr as RGB,
as pydicom decodes). Compressed frames in their stored syntax go out as stored, never decoded; in
another (lossless) syntax they are decoded and encoded (`FrameSource.encoded`), which negotiation
offers only where `PixelDescription.can_make_frames_in` says an encoder can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from pydicom.uid import ExplicitVRLittleEndian

from app.dicomweb.errors import DicomwebError, Gone, NotAcceptable, NotFound
from app.dicomweb.frame_numbers import check_frames_exist
from app.dicomweb.mediatypes import OCTET_STREAM, bulk_media_type_for
from app.dicomweb.negotiation import FrameSelection, MediaRange, negotiate_frame_media_type
from app.dicomweb.scope import Scope
from app.imaging.codecs.native import little_endian_value, word_bytes
from app.retrieve.scopes import not_found_message, refuse_if_unavailable, scope_description
from app.services import Services
from app.store.read.frame_source import FRAME_CONVERSION_ERRORS, FrameSource, RangeReader
from app.store.read.retrieval import (
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

AcceptLists = tuple[list[MediaRange], list[MediaRange]]  # the `accept` parameter's, then the header's


def select_frames(
    accept: AcceptLists,
    stored_syntax_uid: str,
    can_produce: Callable[[str], bool],
    *,
    single_part_allowed: bool,
) -> FrameSelection:
    return negotiate_frame_media_type(
        *accept,
        stored_syntax=stored_syntax_uid,
        can_produce=can_produce,
        single_part_allowed=single_part_allowed,
    )


def _nothing_else(_uid: str) -> bool:
    """Bulk data values other than pixels exist only as they are (octet-stream)."""
    return False


def select_octet_stream(accept: AcceptLists, *, single_part_allowed: bool) -> FrameSelection:
    """The media type of bulk data values other than pixels: octet-stream only."""
    return select_frames(
        accept, ExplicitVRLittleEndian, _nothing_else, single_part_allowed=single_part_allowed
    )


def frame_source(
    services: Services, frames: StoredFrames, *, may_be_stale: bool = False, blobs: RangeReader | None = None
) -> FrameSource:
    """Frames read from the blob store (through `blobs` when given), transcoded in the codec pool and kept
    in the frame cache; `may_be_stale` when the frame table came from the frame-table cache."""
    return FrameSource(
        blobs or services.blobs,
        frames.data_blob_key,
        frames.fragments,
        frames.pixels,
        pixel_vr=frames.pixel_vr,
        codecs=services.codecs,
        cache=services.transcoded_frames,
        may_be_stale=may_be_stale,
    )


def frame_body(source: FrameSource, selection: FrameSelection, number: int) -> bytes:
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


# --- the frames resource -----------------------------------------------------------------------------


def look_up_frames(services: Services, scope: Scope) -> StoredFrames:
    """The whole frame table of the instance of `scope`, kept in the frame-table cache; 404 when there
    is no such instance or it has no pixel data."""
    started = services.frame_tables.now()  # before the snapshot: the entry is never older than its TTL
    with services.engine.connect() as connection:
        try:
            frames = stored_frames(connection, scope)
        except NoPixelData as exc:
            raise NotFound(f"instance {scope.sop_instance_uid} has no pixel data, hence no frames") from exc
    if frames is None:
        raise NotFound(not_found_message(scope))
    services.frame_tables.put(scope, frames, looked_up_at=started)
    return frames


@dataclass(frozen=True, slots=True)
class FramesPlan:
    """The listed frames of one instance: where they are, how they are read, in which media type."""

    frames: StoredFrames
    source: FrameSource
    selection: FrameSelection
    numbers: Sequence[int]
    bodies: Mapping[int, bytes] | None = None  # the frames, when read already (`with_bodies_read`)

    def body(self, number: int) -> bytes:
        if self.bodies is not None:
            return self.bodies[number]
        return frame_body(self.source, self.selection, number)

    @property
    def made_without_codecs(self) -> bool:
        """Whether the bodies are the stored bytes, at most reordered (no decoding or encoding)."""
        if self.selection.media_type == OCTET_STREAM:
            return not self.source.syntax.encapsulated
        return not self.selection.transcode

    @property
    def stored_bytes(self) -> int:
        """The stored size of the listed frames."""
        fragments = self.frames.fragments
        return sum(part.length for number in set(self.numbers) for part in fragments[number])

    def with_bodies_read(self) -> FramesPlan:
        """This plan with every listed frame read now (each once)."""
        return replace(self, bodies={number: self.body(number) for number in dict.fromkeys(self.numbers)})


def plan_frames(
    services: Services,
    accept: AcceptLists,
    frames: StoredFrames,
    numbers: Sequence[int],
    *,
    from_cache: bool = False,
    blobs: RangeReader | None = None,
) -> FramesPlan:
    """Frames `numbers` of the instance of `frames` (read through `blobs` when given): 410 for a flagged
    file, 406 for a video or a media type they cannot be had in, 404 for a frame the instance lacks."""
    if frames.instance.unavailable_reason is not None:
        raise Gone(frames.instance.unavailable_reason)
    source = frame_source(services, frames, may_be_stale=from_cache, blobs=blobs)
    if source.syntax.is_video:
        raise NotAcceptable("the frames of a video are one stream and cannot be retrieved one by one")
    check_frames_exist(tuple(numbers), frames.layout.number_of_frames)
    selection = select_frames(
        accept, source.syntax.uid, frames.pixels.can_make_frames_in, single_part_allowed=len(numbers) == 1
    )
    return FramesPlan(frames, source, selection, numbers)


# --- every frame of several instances (pixeldata, bulkdata) --------------------------------------------


@dataclass(frozen=True, slots=True)
class InstancePlan:
    """One instance whose frames go out, in the media type negotiated for it."""

    instance: StoredInstance
    selection: FrameSelection


@dataclass(frozen=True, slots=True)
class FramePart:
    """One frame of a multipart response."""

    instance: StoredInstance
    number: int
    content_type: str
    body: bytes


def plan_pixel_parts(
    accept: AcceptLists, scope: Scope, instances: Sequence[StoredInstance]
) -> list[InstancePlan]:
    """One negotiated selection per instance with frames, leaving out those that cannot be had
    (a syntax they cannot be made into, a video): 206 when some are left out, 406 when all are.

    A single part is only for the instance resource holding one frame (PS3.18 8.7.3.3: one item).
    """
    with_frames = [i for i in instances if i.pixels is not None]
    if not with_frames:
        raise NotFound(f"nothing in {scope_description(scope)} has pixel data")
    single = (
        scope.sop_instance_uid is not None
        and sum(i.pixels.layout.number_of_frames for i in with_frames if i.pixels is not None) == 1
    )
    plans: list[InstancePlan] = []
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
            selection = select_frames(
                accept, syntax.uid, instance.pixels.can_make_frames_in, single_part_allowed=single
            )
        except NotAcceptable as refusal:
            refusals.append(refusal)
            continue
        plans.append(InstancePlan(instance, selection))
    if not plans:
        raise refusals[0]
    return plans


def pixel_parts(
    services: Services, accept: AcceptLists, plans: Sequence[InstancePlan]
) -> Iterator[FramePart]:
    """Every frame of every planned instance, one part each, read lazily."""
    for plan in plans:
        frames, selection = _current_frames(services, accept, plan)
        source = frame_source(services, frames)
        for number in range(1, frames.layout.number_of_frames + 1):
            body = frame_body(source, selection, number)
            yield FramePart(frames.instance, number, selection.part_content_type, body)


def only_frame(services: Services, plan: InstancePlan) -> bytes:
    """The one frame of the planned instance (a single-part response)."""
    with services.engine.connect() as connection:
        frames = frames_of(connection, plan.instance)
    return frame_body(frame_source(services, frames), plan.selection, 1)


def _current_frames(
    services: Services, accept: AcceptLists, plan: InstancePlan
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
    return frames, select_frames(
        accept, syntax.uid, frames.pixels.can_make_frames_in, single_part_allowed=False
    )


# --- bulk data values ----------------------------------------------------------------------------------


def bulk_value(services: Services, item: StoredBulkData, start: int = 0, stop: int | None = None) -> bytes:
    """Bytes `start:stop` of a bulk data value, little-endian (PS3.18 8.7.3.3.1) whatever the stored
    byte order. Only those bytes are read, widened to whole words where a word must be swapped."""
    stop = item.length if stop is None else stop
    word = 1 if item.little_endian else word_bytes(item.vr)
    first, last = start - start % word, min(item.length, -(-stop // word) * word)
    data = services.blobs.read_range(item.instance.data_blob_key, item.offset + first, last - first)
    data = little_endian_value(data, item.vr, big_endian=not item.little_endian)
    return data[start - first : stop - first]


def is_pixel_data(item: StoredBulkData) -> bool:
    return item.instance.pixel_data_tag is not None and item.path == f"{item.instance.pixel_data_tag:08X}"


def look_up_bulk_value(services: Services, scope: Scope, path: str) -> StoredBulkData:
    """The bulk data value at `path` of the instance of `scope`: 404 when either is missing, 410 when
    the instance's file is flagged."""
    with services.engine.connect() as connection:
        instances = stored_instances(connection, scope)
        items = stored_bulkdata(connection, instances, path)
    if not instances:
        raise NotFound(not_found_message(scope))
    refuse_if_unavailable(instances)
    if not items:
        raise NotFound(f"instance {scope.sop_instance_uid} has no bulk data at {path}")
    return items[0]


@dataclass(frozen=True, slots=True)
class BulkValuePart:
    """One bulk data value other than pixels, of a multipart response."""

    item: StoredBulkData
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class ScopeBulkDataPlan:
    """Every bulk value of a scope's instances: pixels as frames (`plans`), the rest as octet-stream."""

    instances: Sequence[StoredInstance]
    plans: list[InstancePlan]
    others: dict[int, list[StoredBulkData]]  # instance pk -> its values other than pixels
    octet: FrameSelection | None  # None: the values other than pixels are not sent
    complete: bool  # False: some could not be had (206)

    @property
    def content_type(self) -> str:
        selection = self.plans[0].selection if self.plans else self.octet
        assert selection is not None
        return selection.content_type


def plan_scope_bulkdata(
    services: Services, accept: AcceptLists, scope: Scope, instances: Sequence[StoredInstance]
) -> ScopeBulkDataPlan:
    """The bulkdata resource of a study, series or instance: 404 when nothing in it has bulk data, the
    first refusal when none of it can be had."""
    with services.engine.connect() as connection:
        items = stored_bulkdata(connection, instances)
    with_pixels = [i for i in instances if i.pixels is not None]
    others: dict[int, list[StoredBulkData]] = {}
    for item in items:
        if not is_pixel_data(item) and item.instance.unavailable_reason is None:
            others.setdefault(item.instance.pk, []).append(item)
    left_out = any(item.instance.unavailable_reason for item in items)  # flagged files' values
    refusals: list[DicomwebError] = []
    plans: list[InstancePlan] = []
    if with_pixels:
        try:
            plans = plan_pixel_parts(accept, scope, with_pixels)
        except (NotAcceptable, Gone) as refusal:
            refusals.append(refusal)
    octet: FrameSelection | None = None
    if others:  # non-pixel values only exist as octet-stream
        try:
            octet = select_octet_stream(accept, single_part_allowed=False)
        except NotAcceptable as refusal:
            refusals.append(refusal)
    if not plans and octet is None:
        if refusals:
            raise refusals[0]
        raise NotFound(f"nothing in {scope_description(scope)} has bulk data")
    complete = len(plans) == len(with_pixels) and (octet is not None or not others) and not left_out
    return ScopeBulkDataPlan(instances, plans, others, octet, complete)


def scope_bulkdata_parts(
    services: Services, accept: AcceptLists, plan: ScopeBulkDataPlan
) -> Iterator[BulkValuePart | FramePart]:
    """The parts of a scope's bulkdata, instance by instance: its other values, then its frames."""
    plan_of = {instance_plan.instance.pk: instance_plan for instance_plan in plan.plans}
    for instance in plan.instances:
        if plan.octet is not None:
            for item in plan.others.get(instance.pk, ()):
                yield BulkValuePart(item, plan.octet.part_content_type, bulk_value(services, item))
        if instance.pk in plan_of:
            yield from pixel_parts(services, accept, [plan_of[instance.pk]])
