"""A stored image as files people open: PNG through the display pipeline, TIFF of the stored values.

PNG: what the rendered resource shows (app/imaging/display.py): Modality LUT, the stored window (or the
one asked for), MONOCHROME1 inverted; 16-bit grey when Bits Stored > 8, so no grey level is lost to
the window's 8-bit rounding. TIFF: the stored sample values themselves, lossless (deflate), 16-bit
signed or unsigned as stored; colour as RGB. Written with tifffile, as Pillow cannot write 16-bit
signed samples.

Orientation: stored rows and columns run along Image Orientation (Patient). Each image is turned
(transposed, flipped) so that it shows the way radiologists read that plane: axial with the
patient's left on the right of the screen and posterior down; coronal with left on the right and
head up; sagittal with posterior on the right and head up. Nothing comes out mirrored.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tifffile
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.processing import convert_color_space

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.display import FramePixels, ImageFormat, RenderOptions, Window, frame_samples, render_frame
from app.imaging.syntaxes import find_transfer_syntax

# Native pixel data that reads as little-endian bytes (a deflated data set is inflated when read).
LITTLE_ENDIAN_NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99")
BIG_ENDIAN_NATIVE = "1.2.840.10008.1.2.2"  # retired; greyscale only, through pydicom's pixel_array
# For the plane an image lies in (the axis of its normal: 0 x, 1 y, 2 z, DICOM's LPS patient axes),
# the patient axis and direction that should run to the right of the screen, and downwards.
_SCREEN_AXES: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {
    2: ((0, 1), (1, 1)),  # axial: right -> patient's left (+x); down -> posterior (+y)
    1: ((0, 1), (2, -1)),  # coronal: right -> patient's left; down -> feet (-z)
    0: ((1, 1), (2, -1)),  # sagittal: right -> posterior (+y); down -> feet
}


class ImageExportError(ValueError):
    """An instance that cannot be written as an image (no pixels, a layout Fovea cannot decode)."""


@dataclass(frozen=True, slots=True)
class DisplayTurn:
    """How stored rows and columns become screen rows and columns."""

    transpose: bool = False
    flip_left_right: bool = False
    flip_up_down: bool = False

    def apply(self, samples: np.ndarray) -> np.ndarray:
        if self.transpose:
            samples = samples.swapaxes(0, 1)
        if self.flip_left_right:
            samples = samples[:, ::-1]
        if self.flip_up_down:
            samples = samples[::-1]
        return np.ascontiguousarray(samples)


def display_turn(orientation: Sequence[float] | None) -> DisplayTurn:
    """The turn that shows an image of this Image Orientation (Patient) the conventional way."""
    if orientation is None or len(orientation) != 6:
        return DisplayTurn()
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, column)
    if not np.any(normal):
        return DisplayTurn()
    (right_axis, right_sign), (down_axis, down_sign) = _SCREEN_AXES[int(np.argmax(np.abs(normal)))]
    transpose = abs(row[down_axis]) > abs(row[right_axis])  # stored rows run up or down the screen
    if transpose:
        row, column = column, row
    return DisplayTurn(
        transpose=transpose,
        flip_left_right=row[right_axis] * right_sign < 0,
        flip_up_down=column[down_axis] * down_sign < 0,
    )


def image_orientation(ds: Dataset, frame_number: int) -> list[float] | None:
    """Image Orientation (Patient) of a frame: the data set's, or an enhanced image's functional groups."""
    if "ImageOrientationPatient" in ds:
        return [float(value) for value in ds.ImageOrientationPatient]
    for keyword, index in (
        ("PerFrameFunctionalGroupsSequence", frame_number - 1),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(keyword) or []
        if len(groups) > index:
            for plane in groups[index].get("PlaneOrientationSequence") or []:
                if "ImageOrientationPatient" in plane:
                    return [float(value) for value in plane.ImageOrientationPatient]
    return None


def _frame_format(ds: Dataset) -> FrameFormat:
    return FrameFormat(
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
        bits_allocated=int(ds.BitsAllocated),
        bits_stored=int(ds.get("BitsStored") or ds.BitsAllocated),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        photometric_interpretation=str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip(),
        planar_configuration=int(ds.get("PlanarConfiguration", 0) or 0),
    )


def decoded_frames(ds: Dataset) -> Iterator[FramePixels]:
    """Each frame's sample values, decoded the way WADO-RS decodes them (app/imaging/codecs)."""
    if "PixelData" not in ds or "Rows" not in ds:
        raise ImageExportError("the instance has no pixel data")
    syntax_uid = str(ds.file_meta.TransferSyntaxUID)
    syntax = find_transfer_syntax(syntax_uid)
    fmt = _frame_format(ds)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if syntax is not None and syntax.encapsulated:
        encoded: Iterator[tuple[bytes, str, int]] = (
            (native.data, native.photometric_interpretation, native.planar_configuration)
            for native in (
                decode_to_native(frame, syntax_uid, fmt)
                for frame in generate_frames(ds.PixelData, number_of_frames=count)
            )
        )
    elif syntax_uid in LITTLE_ENDIAN_NATIVE:
        size, pixel_data = fmt.frame_bytes, bytes(ds.PixelData)
        if fmt.bits_allocated == 1 and count > 1:
            raise ImageExportError("multi-frame images of 1 bit per sample are not exported as images")
        encoded = (
            (pixel_data[i * size : (i + 1) * size], fmt.photometric_interpretation, fmt.planar_configuration)
            for i in range(count)
        )
    elif syntax_uid == BIG_ENDIAN_NATIVE and fmt.samples_per_pixel == 1 and fmt.bits_allocated in (8, 16, 32):
        values = ds.pixel_array.reshape(count, fmt.rows, fmt.columns)  # in the machine's byte order
        little = values.astype(values.dtype.newbyteorder("<"))
        encoded = ((little[i].tobytes(), fmt.photometric_interpretation, 0) for i in range(count))
    else:
        raise ImageExportError(f"pixel data in transfer syntax {syntax_uid} is not exported as images")
    for frame_data, photometric, planar in encoded:
        yield frame_samples(
            frame_data,
            rows=fmt.rows,
            columns=fmt.columns,
            samples_per_pixel=fmt.samples_per_pixel,
            bits_allocated=fmt.bits_allocated,
            bits_stored=fmt.bits_stored,
            pixel_representation=fmt.pixel_representation,
            planar_configuration=planar,
            photometric_interpretation=photometric,
        )


def png_bytes(frame: FramePixels, ds: Dataset, frame_number: int, window: Window | None) -> bytes:
    """The frame rendered (stored or asked-for window), turned for display, as PNG."""
    rendered = render_frame(
        frame, ds, RenderOptions(image_format=ImageFormat.PNG, window=window), frame_number=frame_number
    )
    samples = display_turn(image_orientation(ds, frame_number)).apply(np.asarray(rendered.image))
    buffer = io.BytesIO()
    Image.fromarray(samples).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(frame: FramePixels, ds: Dataset, frame_number: int) -> bytes:
    """The frame's stored values (colour as RGB), turned for display, as deflate-compressed TIFF."""
    samples: Any = frame.samples
    photometric = frame.photometric_interpretation
    if photometric.startswith("YBR"):
        samples = convert_color_space(samples, "YBR_FULL", "RGB")
        photometric = "RGB"
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR"):
        raise ImageExportError(f"Photometric Interpretation {photometric!r} is not exported as TIFF")
    if frame.bits_stored == 1:
        samples = samples.astype(np.uint8)
    samples = display_turn(image_orientation(ds, frame_number)).apply(samples)
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        samples,
        compression="zlib",
        photometric={"RGB": "rgb", "MONOCHROME1": "miniswhite"}.get(photometric, "minisblack"),
        metadata=None,  # no description tag: nothing of the data set leaves but its pixels
    )
    return buffer.getvalue()
