"""What a rendered or thumbnail resource shows (PS3.18 10.4.1.1.3), and rendering it.

Which image a resource shows:
- a study: the middle instance (by Instance Number) of its first series (by Series Number) that has
  pixel data; a series: its middle instance; an instance: itself;
- of a multi-frame instance, its middle frame, except `/rendered` as `image/gif`, which animates
  every frame (at most 500, evenly spaced); `/frames/{list}/rendered` shows the listed frames
  (several only as an animated GIF).
Only the frames shown are read and decoded, so a thumbnail of a 2,000-frame instance costs one frame.

Rendering (decode, display pipeline, viewport, encoding) runs in the codec pool's threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydicom.dataset import Dataset
from sqlalchemy import Connection

from app.dicomweb.errors import BadRequest, Gone, NotAcceptable, NotFound
from app.dicomweb.frame_numbers import check_frames_exist
from app.dicomweb.scope import Scope
from app.imaging.codecs.decode import FrameFormat
from app.imaging.display import (
    AUTO_WINDOW_PERCENTILES,
    ImageFormat,
    Rendered,
    RenderError,
    RenderOptions,
    encode_image,
    frame_samples,
    render_frame,
    render_memory_bytes,
    srgb_profile,
)
from app.retrieve.pixels import bulk_value, frame_source
from app.retrieve.scopes import not_found_message, scope_description
from app.services import RenderedImage, Services
from app.store.read.frame_source import FRAME_CONVERSION_ERRORS
from app.store.read.retrieval import (
    StoredInstance,
    frames_of,
    scope_exists,
    shown_instance,
    stored_bulkdata,
    stored_metadata,
)

MAX_ANIMATED_FRAMES = 500  # an instance's animated GIF shows at most this many frames, evenly spaced

# The attributes the display pipeline and the annotations read (PS3.3 C.7.6.3, C.11); nothing else of
# the stored metadata is turned back into a data set.
_DISPLAY_TAGS = frozenset(
    {
        "00080020",  # StudyDate
        "00080060",  # Modality
        "00100010",  # PatientName
        "00100020",  # PatientID
        "00280004",  # PhotometricInterpretation
        "00280100",  # BitsAllocated
        "00280101",  # BitsStored
        "00280103",  # PixelRepresentation
        "00280120",  # PixelPaddingValue
        "00281050",  # WindowCenter
        "00281051",  # WindowWidth
        "00281052",  # RescaleIntercept
        "00281053",  # RescaleSlope
        "00281054",  # RescaleType
        "00281056",  # VOILUTFunction
        "00281101",  # Red, Green, Blue Palette Color Lookup Table Descriptors
        "00281102",
        "00281103",
        "00281201",  # ... their data
        "00281202",
        "00281203",
        "00281221",  # ... segmented
        "00281222",
        "00281223",
        "00282000",  # ICCProfile
        "00283000",  # ModalityLUTSequence
        "00283010",  # VOILUTSequence
        "52009229",  # SharedFunctionalGroupsSequence
        "52009230",  # PerFrameFunctionalGroupsSequence
    }
)
_PER_FRAME_GROUPS = "52009230"


def shown_frames(
    instance: StoredInstance, options: RenderOptions, numbers: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The frames of `instance` to show: `numbers` when listed (404 for one it lacks), else the middle
    one, or every one (evenly sampled) for an animated GIF; several only as an animated GIF (400)."""
    assert instance.pixels is not None
    count = instance.pixels.layout.number_of_frames
    if numbers is not None:
        check_frames_exist(numbers, count)
    else:
        every_frame = options.image_format is ImageFormat.GIF and not options.thumbnail
        step = -(-count // MAX_ANIMATED_FRAMES)  # a long cine is sampled evenly
        numbers = tuple(range(1, count + 1, step)) if every_frame else ((count + 1) // 2,)
    if len(numbers) > 1 and options.image_format is not ImageFormat.GIF:
        raise BadRequest("several frames are rendered only as image/gif (animated); ask for one frame")
    return numbers


def instance_shown(connection: Connection, scope: Scope) -> StoredInstance:
    """The instance a study, series or instance resource shows (see the module docstring)."""
    instance = shown_instance(connection, scope)
    if instance is not None:
        if instance.unavailable_reason is not None:
            raise Gone(instance.unavailable_reason)
        return instance
    if not scope_exists(connection, scope):
        raise NotFound(not_found_message(scope))
    raise NotFound(f"nothing to render: {scope_description(scope)} has no pixel data")


def render(
    services: Services,
    connection: Connection,
    instance: StoredInstance,
    numbers: Sequence[int],
    options: RenderOptions,
) -> RenderedImage:
    """Frames `numbers` of `instance` rendered with `options` and encoded, with its window header."""
    frames = frames_of(connection, instance)
    source = frame_source(services, frames)
    if source.syntax.is_video:  # one stream holds every frame: there is no frame to decode alone
        raise NotAcceptable(f"instance {instance.sop_instance_uid} is a video: it cannot be rendered")
    fmt = frames.pixels.native_format
    (stored,) = stored_metadata(connection, instance.scope)
    metadata = orjson.loads(stored)
    display = {tag: value for tag, value in metadata.items() if tag in _DISPLAY_TAGS}

    def bulk(_tag: str, _vr: str, uri: str) -> bytes:
        path = uri.split("/bulkdata/", 1)[1]
        items = stored_bulkdata(connection, [instance], path)
        return bulk_value(services, items[0]) if items else b""

    profile = _icc_profile(options, display, bulk)
    try:
        needed = render_memory_bytes(fmt.rows, fmt.columns, fmt.samples_per_pixel, options)
        services.codecs.check_budget(needed, "rendering a frame")
        if len(numbers) == 1:  # the common case (thumbnails, a frame): one hand-off to the codec pool
            ds = Dataset.from_json(frame_display_json(display, numbers[0]), bulk_data_uri_handler=bulk)
            native = source.native(numbers[0])
            job = (native.data, native.photometric_interpretation, ds, numbers[0])
            return services.codecs.run(False, _render_and_encode, job, fmt, options, profile)  # noqa: FBT003 (False: in a thread)
        images: list[Rendered] = []
        for number in numbers:  # an animated GIF: one frame's samples in memory at a time
            ds = Dataset.from_json(frame_display_json(display, number), bulk_data_uri_handler=bulk)
            native = source.native(number, cached=False)
            job = (native.data, native.photometric_interpretation, ds, number)
            images.append(services.codecs.run(False, _render_one, job, fmt, options))  # noqa: FBT003 (False: in a thread)
    except (*FRAME_CONVERSION_ERRORS, RenderError) as exc:
        raise NotAcceptable(f"instance {instance.sop_instance_uid} cannot be rendered: {exc}") from exc
    body = services.codecs.run(False, encode_image, [image.image for image in images], options, profile)  # noqa: FBT003 (False: in a thread)
    return body, _window_header(images[0])


def frame_display_json(display: dict[str, Any], number: int) -> dict[str, Any]:
    """The display attributes of frame `number`: of the per-frame functional groups only its own item."""
    items = display.get(_PER_FRAME_GROUPS, {}).get("Value")
    if not items:
        return display
    return {**display, _PER_FRAME_GROUPS: {"vr": "SQ", "Value": items[number - 1 : number]}}


RenderJob = tuple[bytes, str, Dataset, int]  # native frame bytes, their photometric, display data set, number


def _render_one(job: RenderJob, fmt: FrameFormat, options: RenderOptions) -> Rendered:
    data, photometric, ds, number = job
    frame = frame_samples(
        data,
        rows=fmt.rows,
        columns=fmt.columns,
        samples_per_pixel=fmt.samples_per_pixel,
        bits_allocated=fmt.bits_allocated,
        bits_stored=fmt.bits_stored,
        pixel_representation=fmt.pixel_representation,
        planar_configuration=fmt.planar_configuration if photometric == fmt.photometric_interpretation else 0,
        photometric_interpretation=photometric,
    )
    return render_frame(frame, ds, options, frame_number=number)


def _render_and_encode(
    job: RenderJob, fmt: FrameFormat, options: RenderOptions, profile: bytes | None
) -> RenderedImage:
    rendered = _render_one(job, fmt, options)
    return encode_image([rendered.image], options, profile), _window_header(rendered)


def _icc_profile(
    options: RenderOptions, display: dict[str, Any], bulk: Callable[[str, str, str], bytes]
) -> bytes | None:
    """`iccprofile=yes`: the instance's own profile (else sRGB); `srgb`: sRGB; `no`: none (colour only)."""
    if options.icc_profile == "srgb":
        return srgb_profile()
    if options.icc_profile == "yes":
        element = display.get("00282000")
        if element is not None:
            own = Dataset.from_json({"00282000": element}, bulk_data_uri_handler=bulk).get("ICCProfile")
            if own:
                return bytes(own)
        return srgb_profile()
    return None


def _window_header(rendered: Rendered) -> str:
    """`dataset; center=40; width=400; function=LINEAR`, `automatic; percentiles=0.5-99.5; ...`,
    `request; ...`, `voi-lut`, or `none` (colour images)."""
    window = rendered.window
    if window is None:
        return rendered.window_source
    source = rendered.window_source
    if source == "automatic":
        low, high = AUTO_WINDOW_PERCENTILES
        source += f"; percentiles={low:g}-{high:g}"
    return f"{source}; center={window.center:.6g}; width={window.width:.6g}; function={window.shape.value}"
