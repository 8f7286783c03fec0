"""What frames and whole instances can be made into: lossy pixels never get a lossless-only syntax."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from app.imaging.pixel_description import (
    PixelDescription,
    can_rewrite_instance_in,
    stored_syntax,
    went_through_lossy_step,
)
from app.imaging.pixel_layout import PixelLayout

ELE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_SV1 = "1.2.840.10008.1.2.4.70"
JPEGLS = "1.2.840.10008.1.2.4.80"
JPEGLS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
MPEG4 = "1.2.840.10008.1.2.4.102"
DEFLATED_DATASET = "1.2.840.10008.1.2.1.99"
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
IMPLICIT_LE = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"


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
        (ELE, "", False),
        (ELE, "01", True),  # decompressed from a lossy original
        (JPEGLS, "", False),
        (JPEG_BASELINE, "", True),  # lossy-only syntax, whatever the attribute says
        (JPEG_BASELINE, "00", True),
        (J2K, "", True),  # either: irreversible unless the data set says otherwise
        (J2K, "00", False),
        (J2K, "01", True),
    ],
)
def test_went_through_lossy_step(syntax: str, lossy: str, expected: bool) -> None:
    assert went_through_lossy_step(stored_syntax(syntax), lossy) is expected
    assert pixels(syntax, lossy).went_through_lossy_step is expected


def test_lossless_pixels_can_be_made_into_lossless_and_lossy_syntaxes() -> None:
    can = frame_producer(pixels(ELE))
    assert can(ELE) and can(JPEGLS) and can(J2K_LOSSLESS) and can(RLE) and can(JPEG_SV1)
    assert can(JPEGLS_NEAR) and can(J2K)  # lossy targets: offered, chosen only when named
    assert not can(JPEG_BASELINE)  # 16-bit: the baseline encoder cannot hold it


@pytest.mark.parametrize(("syntax", "lossy"), [(J2K, ""), (J2K, "01"), (ELE, "01"), (JPEGLS_NEAR, "")])
def test_lossy_pixels_never_get_a_lossless_only_syntax(syntax: str, lossy: str) -> None:
    can = frame_producer(pixels(syntax, lossy))
    assert can(ELE)  # decoding is allowed: the lossy attributes travel with instances
    assert not (can(JPEGLS) or can(J2K_LOSSLESS) or can(RLE) or can(JPEG_SV1))
    assert can(JPEGLS_NEAR)  # another lossy step
    assert can(DEFLATED_FRAMES) and can(ENCAPSULATED_UNCOMPRESSED)  # the native pixels, as octet-stream


def test_either_syntax_said_lossless_can_be_labelled_lossless() -> None:
    assert frame_producer(pixels(J2K, "00"))(JPEGLS)


def test_whole_instances() -> None:
    can = instance_producer(pixels(ELE))
    assert can(ELE) and can(DEFLATED_DATASET) and can(JPEGLS) and can(J2K)
    assert not can(MPEG4)  # video
    assert not can(IMPLICIT_LE) and not can(BIG_ENDIAN)  # not on the web (PS3.18 8.7.3)
    no_pixels = instance_producer(None)
    assert no_pixels(J2K_LOSSLESS) and no_pixels(JPEG_BASELINE) and not no_pixels(MPEG4)
    video = instance_producer(pixels(MPEG4))
    assert not video(ELE) and not video(J2K_LOSSLESS)
