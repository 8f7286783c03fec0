"""Rendering a frame for people: the display pipeline, the viewport, and JPEG, PNG or GIF bytes.

Why this order (PS3.4 N.2, PS3.3 C.11): stored values -> Modality LUT (Rescale Slope/Intercept or a
Modality LUT Sequence: real-world values such as Hounsfield units) -> VOI LUT (a window, or a VOI LUT
Sequence: which values are worth seeing) -> MONOCHROME1 inversion (low values bright) -> display.
Colour images skip the grey stages: PALETTE COLOR indices go through their lookup tables (segmented
ones included), YBR samples are converted to RGB. Then the source region is cut, the image scaled to
the viewport (aspect kept), and annotations burned in only when asked for.

pydicom's processing functions do the lookups that DICOM defines by tables (Modality and VOI LUT
Sequences, palettes with segmented data); the window functions are PS3.3 C.11.2.1.2's formulas, done
here in float32 so every shape and bit depth goes the same way.

With no window in the data set (and none asked for), the window spans the 0.5th to 99.5th percentile of
the frame's values (pixel padding left out): outliers such as the air around a CT or a burned-in marker
do not wash the image out as a min/max window would.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageDraw
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut, convert_color_space

AUTO_WINDOW_PERCENTILES = (0.5, 99.5)
DEFAULT_JPEG_QUALITY = 90
THUMBNAIL_SIZE = 128  # longest side, when the request names no viewport


class WindowShape(StrEnum):
    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"


class ImageFormat(StrEnum):
    JPEG = "image/jpeg"
    PNG = "image/png"
    GIF = "image/gif"


class RenderError(ValueError):
    """A frame that cannot be rendered (a layout or colour model the pipeline does not know)."""


@dataclass(frozen=True, slots=True)
class Window:
    center: float
    width: float
    shape: WindowShape = WindowShape.LINEAR


@dataclass(frozen=True, slots=True)
class Viewport:
    """`viewport=vw,vh[,sx,sy,sw,sh]`: the output size, and the source region (negative: flipped)."""

    width: int
    height: int
    region: tuple[float, float, float, float] | None = None  # sx, sy, sw, sh in source pixels


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What a request asks of a rendering (PS3.18 Table 8.3.5-1), already checked."""

    image_format: ImageFormat = ImageFormat.JPEG
    window: Window | None = None  # None: the data set's, else automatic
    viewport: Viewport | None = None
    quality: int = DEFAULT_JPEG_QUALITY
    annotations: tuple[str, ...] = ()  # "patient", "technique"
    icc_profile: str = "no"  # no | yes | srgb
    thumbnail: bool = False

    def cache_key(self) -> tuple[Any, ...]:
        return (
            self.image_format,
            self.window,
            self.viewport,
            self.quality,
            self.annotations,
            self.icc_profile,
            self.thumbnail,
        )


@dataclass(frozen=True, slots=True)
class FramePixels:
    """One decoded frame's samples and what describes them (of the frame as decoded, not as stored)."""

    samples: np.ndarray  # (rows, columns) or (rows, columns, samples), sign-extended, Bits Stored masked
    photometric_interpretation: str
    bits_stored: int


@dataclass(slots=True)
class Rendered:
    """A displayable image and how its grey levels were chosen (for the response header)."""

    image: Image.Image
    window_source: str  # "dataset", "request", "voi-lut", "automatic", "none"
    window: Window | None = None


# Bytes the display pipeline holds per sample at its peak: float64 colour conversion or LUT output,
# the float32 window, the 8-bit image and the stored samples.
RENDER_BYTES_PER_SAMPLE = 16


# Bytes per output pixel: the RGB image scaled to the viewport, and the resampler's intermediate.
VIEWPORT_BYTES_PER_PIXEL = 8


def render_memory_bytes(rows: int, columns: int, samples_per_pixel: int, options: RenderOptions) -> int:
    """About how much memory rendering one frame of this size takes (its budget is checked first):
    the display pipeline on the frame, then the image scaled to the viewport (up to 16384 square)."""
    frame = rows * columns * samples_per_pixel * RENDER_BYTES_PER_SAMPLE
    viewport = options.viewport
    scaled = viewport.width * viewport.height * VIEWPORT_BYTES_PER_PIXEL if viewport else 0
    return frame + scaled


# --- From native bytes to samples ---


def frame_samples(
    data: bytes,
    *,
    rows: int,
    columns: int,
    samples_per_pixel: int,
    bits_allocated: int,
    bits_stored: int,
    pixel_representation: int,
    planar_configuration: int,
    photometric_interpretation: str,
) -> FramePixels:
    """Native little-endian frame bytes as an array of their values (1-bit frames unpacked)."""
    pixels = rows * columns
    if bits_allocated == 1:
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[:pixels]
        return FramePixels(bits.reshape(rows, columns), photometric_interpretation, 1)
    if photometric_interpretation == "YBR_FULL_422" and samples_per_pixel == 3:
        return FramePixels(_expand_422(data, rows, columns), "YBR_FULL", bits_stored)
    dtype = np.dtype(f"<{'i' if pixel_representation else 'u'}{bits_allocated // 8}")
    count = pixels * samples_per_pixel
    values = np.frombuffer(data, dtype, count=count)
    if samples_per_pixel > 1:
        values = (
            values.reshape(samples_per_pixel, rows, columns).transpose(1, 2, 0)
            if planar_configuration
            else values.reshape(rows, columns, samples_per_pixel)
        )
    else:
        values = values.reshape(rows, columns)
    if bits_stored < bits_allocated:  # unused high bits may hold anything (PS3.5 8.1.1)
        shift = bits_allocated - bits_stored
        # signed: sign extension from Bits Stored; unsigned: the high bits cleared
        values = (values << shift) >> shift if pixel_representation else values & ((1 << bits_stored) - 1)
    return FramePixels(values, photometric_interpretation, bits_stored)


def _expand_422(data: bytes, rows: int, columns: int) -> np.ndarray:
    """YBR_FULL_422 (Y Y Cb Cr per pixel pair) to full YBR_FULL samples, chroma repeated."""
    groups = np.frombuffer(data, np.uint8, count=rows * ((columns + 1) // 2) * 4).reshape(rows, -1, 4)
    out = np.empty((rows, groups.shape[1] * 2, 3), np.uint8)
    out[:, 0::2, 0], out[:, 1::2, 0] = groups[..., 0], groups[..., 1]
    out[:, :, 1] = np.repeat(groups[..., 2], 2, axis=1)
    out[:, :, 2] = np.repeat(groups[..., 3], 2, axis=1)
    return out[:, :columns]


# --- The display pipeline ---


def render_frame(
    frame: FramePixels, ds: Dataset, options: RenderOptions, *, frame_number: int = 1
) -> Rendered:
    """The frame as a person should see it, scaled to the viewport, annotated when asked for.

    `ds` holds the display attributes; of an enhanced multi-frame's Per-Frame Functional Groups it needs
    only this frame's item (the caller narrows the sequence to it: `frame_display_json`).
    """
    photometric = frame.photometric_interpretation
    if ds.original_encoding == (None, None):  # built from DICOM JSON, whose binary values are little-endian
        ds.set_original_encoding(is_implicit_vr=False, is_little_endian=True)
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        rendered = _render_grey(frame, ds, options)
    elif photometric == "PALETTE COLOR":
        descriptor = ds.get("RedPaletteColorLookupTableDescriptor") or [0, 0, 16]
        colours = _to_8_bits(apply_color_lut(frame.samples, ds), int(descriptor[2]))
        rendered = Rendered(Image.fromarray(colours, "RGB"), "none")
    elif photometric == "RGB" or photometric.startswith("YBR"):
        samples = frame.samples
        if photometric != "RGB":
            samples = convert_color_space(samples, _ybr_source(photometric), "RGB")
        rendered = Rendered(Image.fromarray(_to_8_bits(samples, frame.bits_stored), "RGB"), "none")
    else:
        raise RenderError(f"cannot render Photometric Interpretation {photometric!r}")
    rendered.image = _fit_viewport(rendered.image, options)
    if options.annotations:
        _annotate(rendered, ds, options.annotations, frame_number)
    return rendered


def _ybr_source(photometric: str) -> str:
    # pydicom converts YBR_FULL; the irreversible/reversible transforms of J2K arrive as RGB already.
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        return "YBR_FULL"
    raise RenderError(f"cannot render Photometric Interpretation {photometric!r}")


def _render_grey(frame: FramePixels, ds: Dataset, options: RenderOptions) -> Rendered:
    display = _display_attributes(ds)
    values = frame.samples
    tables = "ModalityLUTSequence" in display or "VOILUTSequence" in display
    if (options.thumbnail or options.viewport is not None) and not tables:  # tables need stored values
        values = _shrink_before_lookup(values, options)
    if frame.bits_stored == 1:
        modality = values.astype(np.float32)
    else:
        modality = np.asarray(apply_modality_lut(values, display), dtype=np.float32)
    window, source = _choose_window(frame, display, options)
    if source == "voi-lut":
        indices = np.rint(modality).astype(np.int64)  # a LUT is indexed by whole values
        lut_out = np.asarray(apply_voi_lut(indices, display, prefer_lut=True), dtype=np.float32)
        descriptor = display.VOILUTSequence[0].LUTDescriptor
        levels = float((1 << int(descriptor[2])) - 1)
        unit = np.clip(lut_out / levels, 0.0, 1.0)
    else:
        assert window is not None
        unit = apply_window(modality, window)
    if frame.photometric_interpretation == "MONOCHROME1":
        unit = 1.0 - unit
    sixteen = options.image_format is ImageFormat.PNG and frame.bits_stored > 8 and not options.annotations
    if sixteen:
        image = Image.fromarray(np.rint(unit * 65535).astype(np.uint16))  # 16-bit grey PNG ("I;16")
    else:
        image = Image.fromarray(np.rint(unit * 255).astype(np.uint8), "L")
    return Rendered(image, source, window)


def _display_attributes(ds: Dataset) -> Dataset:
    """The data set's display attributes, those of an enhanced multi-frame's functional groups merged in
    (shared first, then the frame's own, the only item left of the per-frame sequence): Pixel Value
    Transformation and Frame VOI LUT."""
    merged = Dataset()
    for keyword in (
        "RescaleSlope",
        "RescaleIntercept",
        "RescaleType",
        "ModalityLUTSequence",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
        "VOILUTSequence",
        "PhotometricInterpretation",
        "BitsStored",
        "BitsAllocated",
        "PixelRepresentation",
        "PixelPaddingValue",
    ):
        if keyword in ds:
            merged[keyword] = ds[keyword]
    merged.set_original_encoding(*ds.original_encoding)  # LUT Data (OW) is read in that byte order
    groups = []
    for sequence_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(sequence_keyword) or []
        if items:
            groups.append(items[0])
    for group in groups:
        for macro in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            for item in (group.get(macro) or [])[:1]:
                for element in item:
                    merged[element.tag] = element
    return merged


def _choose_window(frame: FramePixels, ds: Dataset, options: RenderOptions) -> tuple[Window | None, str]:
    if options.window is not None:
        return options.window, "request"
    if "VOILUTSequence" in ds and ds.VOILUTSequence:
        return None, "voi-lut"
    if frame.bits_stored == 1:
        return Window(0.5, 1.0, WindowShape.LINEAR_EXACT), "automatic"
    center, width = _first_number(ds.get("WindowCenter")), _first_number(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
        shape = WindowShape(function) if function in WindowShape.__members__ else WindowShape.LINEAR
        return Window(center, width, shape), "dataset"
    # From the stored values, never from a shrunk copy: a thumbnail gets the window of the full image.
    samples = frame.samples[::4, ::4] if frame.samples.size > 1_000_000 else frame.samples
    return automatic_window(np.asarray(apply_modality_lut(samples, ds), dtype=np.float32), ds), "automatic"


def _first_number(value: Any) -> float | None:
    """The first of a possibly multi-valued DS (the first window pair is the default)."""
    if value is None or value == "":
        return None
    try:
        first = value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value
        return float(first)
    except (TypeError, ValueError, IndexError):
        return None


def automatic_window(values: np.ndarray, ds: Dataset) -> Window:
    """A window over the 0.5th-99.5th percentile of the values, padding left out (LINEAR_EXACT)."""
    sample = values[::4, ::4] if values.size > 1_000_000 else values  # percentiles of a quarter suffice
    sample = sample.ravel()
    padding = ds.get("PixelPaddingValue")
    if padding is not None and not isinstance(padding, bytes):
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        kept = sample[sample != np.float32(float(padding) * slope + intercept)]
        sample = kept if kept.size else sample
    low, high = (float(v) for v in np.percentile(sample, AUTO_WINDOW_PERCENTILES))
    if high <= low:
        high = low + 1.0
    return Window((low + high) / 2, high - low, WindowShape.LINEAR_EXACT)


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2: values to 0..1 through a LINEAR, LINEAR_EXACT or SIGMOID window (float32)."""
    c, w = np.float32(window.center), np.float32(window.width)
    if window.shape is WindowShape.SIGMOID:
        out = 1.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    elif window.shape is WindowShape.LINEAR_EXACT:
        out = (values - (c - w / 2)) / w
    elif window.width <= 1.0:  # LINEAR of width 1: a threshold at c - 0.5, no grey between
        out = (values > c - np.float32(0.5)).astype(np.float32)
    else:  # LINEAR: the half-pixel offsets of C.11.2.1.2.1, clipping at c - 0.5 -/+ (w - 1) / 2
        out = ((values - (c - np.float32(0.5))) / (w - np.float32(1.0))) + np.float32(0.5)
    clipped: np.ndarray = np.clip(out, 0.0, 1.0).astype(np.float32)
    return clipped


def _to_8_bits(samples: np.ndarray, bits: int) -> np.ndarray:
    """RGB samples of `bits` bits (a 16-bit palette, 12-bit RGB) as 8-bit."""
    if bits == 8 and samples.dtype == np.uint8:
        return samples
    top = float((1 << bits) - 1)
    scaled: np.ndarray = np.rint(samples.astype(np.float32) * (255.0 / top)).clip(0, 255).astype(np.uint8)
    return scaled


# --- Viewport ---


def _shrink_before_lookup(values: np.ndarray, options: RenderOptions) -> np.ndarray:
    """Average whole blocks of a large frame before the lookups when the output is far smaller.

    Why: a 3000x3000 x-ray shown at 128 pixels needs 1/500 of its values; averaging 2^k blocks first
    keeps the later resampling sharp (at least twice the output size remains) and the lookups cheap.
    Averages of stored values commute with the linear Modality LUT; the window sees the same mean.
    """
    if options.viewport is not None and options.viewport.region is not None:
        return values  # the region is cut after the lookups, in source pixels
    target = _target_size(values.shape[1], values.shape[0], options)
    factor = 1
    while (
        values.shape[0] // (factor * 2) >= 2 * target[1] and values.shape[1] // (factor * 2) >= 2 * target[0]
    ):
        factor *= 2
    if factor == 1:
        return values
    rows, columns = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:rows, :columns].reshape(rows // factor, factor, columns // factor, factor)
    means: np.ndarray = blocks.mean(axis=(1, 3), dtype=np.float32)
    return means


def _target_size(columns: int, rows: int, options: RenderOptions) -> tuple[int, int]:
    """The output (width, height): as large as fits the viewport, aspect kept; a thumbnail without a
    viewport fits THUMBNAIL_SIZE and is never enlarged."""
    if options.viewport is not None:
        box_w, box_h = options.viewport.width, options.viewport.height
        scale = min(box_w / columns, box_h / rows)
    elif options.thumbnail:
        scale = min(THUMBNAIL_SIZE / columns, THUMBNAIL_SIZE / rows, 1.0)
    else:
        return columns, rows
    return max(1, round(columns * scale)), max(1, round(rows * scale))


def _fit_viewport(image: Image.Image, options: RenderOptions) -> Image.Image:
    viewport = options.viewport
    if viewport is not None and viewport.region is not None:
        image = _cut_region(image, viewport.region)
    if viewport is None and not options.thumbnail:
        return image
    size = _target_size(image.width, image.height, options)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)  # sharp when shrinking


def _cut_region(image: Image.Image, region: tuple[float, float, float, float]) -> Image.Image:
    """The source region sx,sy,sw,sh; a negative width or height flips the image (PS3.18 8.3.5.1.3)."""
    sx, sy, sw, sh = region
    left, right = sorted((sx, sx + sw))
    top, bottom = sorted((sy, sy + sh))
    box = (
        max(0, round(left)),
        max(0, round(top)),
        min(image.width, round(right)),
        min(image.height, round(bottom)),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise RenderError(
            f"the viewport's source region {region} lies outside the {image.width}x{image.height} image"
        )
    image = image.crop(box)
    if sw < 0:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if sh < 0:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return image


# --- Annotations and encoding ---


def _annotate(rendered: Rendered, ds: Dataset, annotations: Sequence[str], frame_number: int) -> None:
    lines = []
    if "patient" in annotations:
        lines.append(" ".join(str(ds.get(k, "")) for k in ("PatientName", "PatientID") if ds.get(k)))
        if ds.get("StudyDate"):
            lines.append(str(ds.StudyDate))
    if "technique" in annotations:
        parts = [str(ds.get("Modality", "")), f"frame {frame_number}"]
        if rendered.window is not None:
            parts.append(f"C {rendered.window.center:g} W {rendered.window.width:g}")
        lines.append(" ".join(p for p in parts if p))
    image = rendered.image.convert("RGB") if rendered.image.mode not in ("L", "RGB") else rendered.image
    draw = ImageDraw.Draw(image)
    y = 2
    for line in lines:
        draw.text((3, y + 1), line, fill=0 if image.mode == "L" else (0, 0, 0))  # a shadow keeps it legible
        draw.text((2, y), line, fill=255 if image.mode == "L" else (255, 255, 255))
        y += 12
    rendered.image = image


def encode_image(
    frames: Sequence[Image.Image], options: RenderOptions, icc_profile: bytes | None = None
) -> bytes:
    """JPEG or PNG of one image, or a GIF (animated when several)."""
    out = io.BytesIO()
    first = frames[0]
    extra: dict[str, Any] = {}
    if icc_profile is not None and first.mode == "RGB":
        extra["icc_profile"] = icc_profile
    if options.image_format is ImageFormat.GIF:
        palette_frames = [frame.convert("L") if frame.mode.startswith("I") else frame for frame in frames]
        palette_frames[0].save(
            out, "GIF", save_all=len(frames) > 1, append_images=palette_frames[1:], duration=100, loop=0
        )
    elif options.image_format is ImageFormat.PNG:
        first.save(out, "PNG", compress_level=1, **extra)
    else:
        image = first if first.mode in ("L", "RGB") else first.convert("L")
        image.save(out, "JPEG", quality=options.quality, **extra)
    return out.getvalue()


_SRGB_PROFILE: bytes | None = None


def srgb_profile() -> bytes:
    """An sRGB ICC profile (littleCMS's), for `iccprofile=srgb`."""
    global _SRGB_PROFILE
    if _SRGB_PROFILE is None:
        _SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _SRGB_PROFILE
