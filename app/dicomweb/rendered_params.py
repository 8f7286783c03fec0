"""The query parameters and media types of the rendered and thumbnail resources (PS3.18 8.3.5, 10.4.1.1.3).

Why here: `window=40,400,linear&viewport=512,512&quality=80` means the same whatever renders it; parsing
it once into `RenderOptions` lets the HTTP layer answer every malformed value with one 400 that says what
is wrong. Unknown parameters are ignored, as PS3.18 8.3.5 requires.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from app.dicomweb.errors import BadRequest, NotAcceptable
from app.dicomweb.negotiation import MediaRange
from app.imaging.display import (
    DEFAULT_JPEG_QUALITY,
    ImageFormat,
    RenderOptions,
    Viewport,
    Window,
    WindowShape,
)

_SHAPES = {
    "linear": WindowShape.LINEAR,
    "linear-exact": WindowShape.LINEAR_EXACT,
    "sigmoid": WindowShape.SIGMOID,
}
_ANNOTATIONS = frozenset({"patient", "technique"})
_ICC_PROFILES = frozenset({"no", "yes", "srgb"})
_UNAVAILABLE_ICC_PROFILES = frozenset({"adobergb", "rommrgb"})
MAX_VIEWPORT = 16384
RENDER_PARAMETERS = ("window", "viewport", "quality", "annotation", "iccprofile")  # PS3.18 8.3.5.1


def parse_render_options(
    parameters: Sequence[tuple[str, str]], *, thumbnail: bool, image_format: ImageFormat
) -> RenderOptions:
    """The rendering a request asks for; BadRequest naming the faulty parameter."""
    values: dict[str, str] = {}
    for name, value in parameters:
        if name in RENDER_PARAMETERS:
            if name in values:
                raise BadRequest(f"{name} is given more than once")
            values[name] = value
    window = _window(values["window"]) if "window" in values else None
    viewport = _viewport(values["viewport"], thumbnail=thumbnail) if "viewport" in values else None
    quality = _quality(values["quality"]) if "quality" in values else DEFAULT_JPEG_QUALITY
    annotations = _annotations(values["annotation"]) if "annotation" in values else ()
    icc_profile = _icc_profile(values["iccprofile"]) if "iccprofile" in values else "no"
    return RenderOptions(image_format, window, viewport, quality, annotations, icc_profile, thumbnail)


def _numbers(name: str, text: str) -> list[float]:
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise BadRequest(f"{name}={text}: comma-separated numbers expected") from None
    if not all(math.isfinite(n) for n in numbers):
        raise BadRequest(f"{name}={text}: numbers must be finite")
    return numbers


def _window(text: str) -> Window:
    parts = text.split(",")
    if len(parts) != 3:
        raise BadRequest(f"window={text}: center,width,shape expected (shape: linear, linear-exact, sigmoid)")
    center, width = _numbers("window", ",".join(parts[:2]))
    shape = _SHAPES.get(parts[2].strip().lower())
    if shape is None:
        raise BadRequest(f"window={text}: the shape is linear, linear-exact or sigmoid")
    if width <= 0 or (shape is WindowShape.LINEAR and width < 1):
        raise BadRequest(f"window={text}: the width must be positive (at least 1 for linear)")
    return Window(center, width, shape)


def _viewport(text: str, *, thumbnail: bool) -> Viewport:
    numbers = _numbers("viewport", text)
    if len(numbers) not in (2, 6) or (thumbnail and len(numbers) != 2):
        expected = "vw,vh" if thumbnail else "vw,vh or vw,vh,sx,sy,sw,sh"
        raise BadRequest(f"viewport={text}: {expected} expected")
    width, height = numbers[:2]
    if not (
        width.is_integer()
        and height.is_integer()
        and 1 <= width <= MAX_VIEWPORT
        and 1 <= height <= MAX_VIEWPORT
    ):
        raise BadRequest(f"viewport={text}: vw and vh are whole numbers from 1 to {MAX_VIEWPORT}")
    region = None
    if len(numbers) == 6:
        sx, sy, sw, sh = numbers[2:]
        if sx < 0 or sy < 0 or sw == 0 or sh == 0:
            raise BadRequest(f"viewport={text}: sx and sy are not negative, sw and sh not zero")
        region = (sx, sy, sw, sh)
    return Viewport(int(width), int(height), region)


def _quality(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise BadRequest(f"quality={text}: a whole number from 1 to 100")
    return int(text)


def _annotations(text: str) -> tuple[str, ...]:
    items = tuple(item.strip().lower() for item in text.split(",") if item.strip())
    unknown = [item for item in items if item not in _ANNOTATIONS]
    if unknown or not items:
        raise BadRequest(f"annotation={text}: patient, technique or both")
    return tuple(sorted(set(items)))


def _icc_profile(text: str) -> str:
    value = text.strip().lower()
    if value in _UNAVAILABLE_ICC_PROFILES:
        raise BadRequest(f"iccprofile={text}: only no, yes and srgb are offered")
    if value not in _ICC_PROFILES:
        raise BadRequest(f"iccprofile={text}: no, yes, srgb, adobergb or rommrgb")
    return value


def negotiate_rendered_media_type(
    ranges_from_query: Sequence[MediaRange], ranges_from_header: Sequence[MediaRange]
) -> ImageFormat:
    """image/jpeg (the default, also for `*/*` and `image/*`), image/png or image/gif.

    The `accept` parameter's list is tried first, then the header's (PS3.18 8.3.3.1): a viewer asking
    `?accept=image/jpeg` with a multipart Accept header gets a JPEG. Each type takes the q of the most
    specific range that covers it (RFC 9110 12.5.1), so `image/*;q=0` refuses every image; the highest q
    wins, then the range listed first. Neither list given: JPEG.
    """
    lists = [ranges for ranges in (ranges_from_query, ranges_from_header) if ranges]
    if not lists:
        return ImageFormat.JPEG
    for ranges in lists:
        best: tuple[float, int, int] | None = None
        chosen = None
        for preference, fmt in enumerate(ImageFormat):
            covering = [(index, r) for index, r in enumerate(ranges) if r.matches(fmt.value)]
            if not covering:
                continue
            index, most_specific = max(covering, key=lambda pair: (range_specificity(pair[1]), -pair[0]))
            if most_specific.q <= 0:
                continue
            rank = (most_specific.q, -index, -preference)
            if best is None or rank > best:
                best, chosen = rank, fmt
        if chosen is not None:
            return chosen
    offered = ", ".join(fmt.value for fmt in ImageFormat)
    raise NotAcceptable(f"no acceptable media type; rendered images are {offered}")


def range_specificity(media_range: MediaRange) -> int:
    if media_range.media_type == "*/*":
        return 0
    return 1 if media_range.media_type.endswith("/*") else 2
