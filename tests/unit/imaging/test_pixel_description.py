"""What frames and whole instances can be made into: lossy pixels never get a lossless-only syntax."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from pydicom.uid import (
    JPEG2000,
    MPEG4HP41,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from app.imaging.pixel_description import (
    PixelDescription,
    can_rewrite_instance_in,
    stored_syntax,
    went_through_lossy_step,
)
from app.imaging.pixel_layout import PixelLayout

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


def pixels(syntax: str, lossy: str = "", *, bits: int = 16) -> PixelDescription:
    layout = PixelLayout(64, 64, 1, bits, 2, "MONOCHROME2")
    return PixelDescription(layout, bits, 0, 0, stored_syntax(syntax), lossy)


def frame_producer(description: PixelDescription) -> Callable[[str], bool]:
    return description.can_make_frames_in


def instance_producer(description: PixelDescription | None) -> Callable[[str], bool]:
    return partial(can_rewrite_instance_in, description)


@pytest.mark.parametrize(
    ("syntax", "lossy", "expected"),
    [
        (ExplicitVRLittleEndian, "", False),
        (ExplicitVRLittleEndian, "01", True),  # decompressed from a lossy original
        (JPEGLSLossless, "", False),
        (JPEGBaseline8Bit, "", True),  # lossy-only syntax, whatever the attribute says
        (JPEGBaseline8Bit, "00", True),
        (JPEG2000, "", True),  # either: irreversible unless the data set says otherwise
        (JPEG2000, "00", False),
        (JPEG2000, "01", True),
    ],
)
def test_went_through_lossy_step(syntax: str, lossy: str, expected: bool) -> None:
    assert went_through_lossy_step(stored_syntax(syntax), lossy) is expected
    assert pixels(syntax, lossy).went_through_lossy_step is expected


def test_lossless_pixels_can_be_made_into_lossless_and_lossy_syntaxes() -> None:
    can = frame_producer(pixels(ExplicitVRLittleEndian))
    assert (
        can(ExplicitVRLittleEndian)
        and can(JPEGLSLossless)
        and can(JPEG2000Lossless)
        and can(RLELossless)
        and can(JPEGLosslessSV1)
    )
    assert can(JPEGLSNearLossless) and can(JPEG2000)  # lossy targets: offered, chosen only when named
    assert not can(JPEGBaseline8Bit)  # 16-bit: the baseline encoder cannot hold it


@pytest.mark.parametrize(
    ("syntax", "lossy"),
    [(JPEG2000, ""), (JPEG2000, "01"), (ExplicitVRLittleEndian, "01"), (JPEGLSNearLossless, "")],
)
def test_lossy_pixels_never_get_a_lossless_only_syntax(syntax: str, lossy: str) -> None:
    can = frame_producer(pixels(syntax, lossy))
    assert can(ExplicitVRLittleEndian)  # decoding is allowed: the lossy attributes travel with instances
    assert not (can(JPEGLSLossless) or can(JPEG2000Lossless) or can(RLELossless) or can(JPEGLosslessSV1))
    assert can(JPEGLSNearLossless)  # another lossy step
    assert can(DEFLATED_FRAMES) and can(ENCAPSULATED_UNCOMPRESSED)  # the native pixels, as octet-stream


def test_either_syntax_said_lossless_can_be_labelled_lossless() -> None:
    assert frame_producer(pixels(JPEG2000, "00"))(JPEGLSLossless)


def test_whole_instances() -> None:
    can = instance_producer(pixels(ExplicitVRLittleEndian))
    assert (
        can(ExplicitVRLittleEndian)
        and can(DeflatedExplicitVRLittleEndian)
        and can(JPEGLSLossless)
        and can(JPEG2000)
    )
    assert not can(MPEG4HP41)  # video
    assert not can(ImplicitVRLittleEndian) and not can(ExplicitVRBigEndian)  # not on the web (PS3.18 8.7.3)
    no_pixels = instance_producer(None)
    assert no_pixels(JPEG2000Lossless) and no_pixels(JPEGBaseline8Bit) and not no_pixels(MPEG4HP41)
    video = instance_producer(pixels(MPEG4HP41))
    assert not video(ExplicitVRLittleEndian) and not video(JPEG2000Lossless)
