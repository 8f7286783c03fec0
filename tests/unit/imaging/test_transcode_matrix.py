"""Every lossless (source, target) pair, frame by frame, on generated layouts: bit for bit.

A source frame is made by encoding generated native pixels into the source syntax; it is then
transcoded (decoded by the source's decoder, encoded by the target's encoder, as a server frame
request does) and decoded again: the pixels must be the generated ones. Layouts cover 1, 8, 12, 16
and 32 bits, signed and unsigned, MONOCHROME1/2, PALETTE COLOR, RGB and YBR_FULL (planar 0 and 1),
YBR_FULL_422 and odd sizes; a layout goes through every pair whose encoders both hold it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydicom.uid import JPEG2000MCLossless

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import can_encode, encode_native_frame, encoded_photometric, encodes_lossy
from app.imaging.frame_transcode import transcode_frame
from app.imaging.syntaxes import TRANSFER_SYNTAXES

LOSSLESS = tuple(
    ts.uid
    for ts in TRANSFER_SYNTAXES
    if ts.encapsulated and ts.lossless is True and not ts.is_video and not encodes_lossy(ts.uid)
)
KEEPS_LAYOUT = {"1.2.840.10008.1.2.8.1", "1.2.840.10008.1.2.1.98"}  # the native bytes, as they are


def fmt(
    rows: int,
    columns: int,
    bits: int,
    stored: int | None = None,
    *,
    signed: bool = False,
    photometric: str = "MONOCHROME2",
    planar: int = 0,
) -> FrameFormat:
    samples = 1 if photometric in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR") else 3
    return FrameFormat(rows, columns, samples, bits, stored or bits, int(signed), photometric, planar)


LAYOUTS = {
    "1bit_odd": fmt(7, 9, 1),
    "8bit": fmt(32, 24, 8),
    "8bit_mono1": fmt(32, 24, 8, photometric="MONOCHROME1"),
    "8bit_palette": fmt(32, 24, 8, photometric="PALETTE COLOR"),
    "12in16": fmt(32, 24, 16, 12),
    "12in16_signed": fmt(32, 24, 16, 12, signed=True),
    "16bit": fmt(32, 24, 16),
    "16bit_signed_odd": fmt(17, 13, 16, signed=True),
    "16bit_palette": fmt(16, 16, 16, photometric="PALETTE COLOR"),
    "32bit": fmt(16, 12, 32),
    "rgb": fmt(32, 24, 8, photometric="RGB"),
    "rgb_planar": fmt(32, 24, 8, photometric="RGB", planar=1),
    "rgb_odd": fmt(17, 13, 8, photometric="RGB"),
    "ybr_full": fmt(32, 24, 8, photometric="YBR_FULL"),
    "ybr_full_planar": fmt(32, 24, 8, photometric="YBR_FULL", planar=1),
    "ybr_full_422": fmt(32, 24, 8, photometric="YBR_FULL_422"),
    "rgb_16bit": fmt(16, 12, 16, photometric="RGB"),
}


def native_frame(layout: FrameFormat, seed: int = 0) -> bytes:
    """Generated native bytes: a ramp plus noise over the stored range, both extremes present."""
    rng = np.random.default_rng(seed)
    if layout.bits_allocated == 1:
        bits = rng.integers(0, 2, layout.rows * layout.columns, dtype=np.uint8)
        return np.packbits(bits, bitorder="little").tobytes()
    samples = 2 if layout.photometric_interpretation == "YBR_FULL_422" else layout.samples_per_pixel
    count = layout.rows * layout.columns * samples
    low = -(1 << (layout.bits_stored - 1)) if layout.pixel_representation else 0
    high = low + (1 << layout.bits_stored) - 1
    values = np.clip(np.linspace(low, high, count) + rng.integers(-5, 6, count), low, high).astype(np.int64)
    values[0], values[-1] = low, high
    kind = "i" if layout.pixel_representation else "u"
    return values.astype(f"<{kind}{layout.bits_allocated // 8}").tobytes()


def interleaved(data: bytes, layout: FrameFormat, planar: int) -> bytes:
    """Colour bytes as sample-interleaved (what the image codecs give back)."""
    if layout.samples_per_pixel == 1 or planar == 0:
        return data
    width = max(1, layout.bits_allocated // 8)
    planes = np.frombuffer(data, np.uint8).reshape(3, -1, width)
    return planes.transpose(1, 0, 2).tobytes()


CASES = [
    (name, source, target)
    for name, layout in LAYOUTS.items()
    for source in LOSSLESS
    for target in LOSSLESS
    if source != target and can_encode(source, layout) and can_encode(target, layout)
]


@pytest.mark.parametrize(("name", "source", "target"), CASES, ids=["-".join(case) for case in CASES])
def test_every_lossless_pair_is_bit_exact(name: str, source: str, target: str) -> None:
    layout = LAYOUTS[name]
    native = native_frame(layout)
    stored = encode_native_frame(native, source, layout)
    # the stored instance describes its frames as the source encoder made them
    photometric, planar = encoded_photometric(source, layout)
    stored_layout = replace(layout, photometric_interpretation=photometric, planar_configuration=planar)
    decoded_source = decode_to_native(stored, source, stored_layout)
    # what the source's decoder gives: as stored for deflate, interleaved for the image codecs
    native_layout = replace(
        stored_layout,
        photometric_interpretation=decoded_source.photometric_interpretation,
        planar_configuration=decoded_source.planar_configuration,
    )
    frame = transcode_frame(stored, source, stored_layout, native_layout, target)
    assert len(frame) % 2 == 0
    photometric, planar = encoded_photometric(target, native_layout)
    encoded_layout = replace(
        native_layout, photometric_interpretation=photometric, planar_configuration=planar
    )
    result = decode_to_native(frame, target, encoded_layout)
    expected = (
        native
        if source in KEEPS_LAYOUT and target in KEEPS_LAYOUT
        else interleaved(native, layout, layout.planar_configuration)
    )
    got = (
        result.data
        if target in KEEPS_LAYOUT and source in KEEPS_LAYOUT
        else interleaved(result.data, layout, result.planar_configuration)
    )
    assert got == expected


def test_the_matrix_covers_every_lossless_encoder_and_the_layouts_asked_for() -> None:
    pairs = {(source, target) for _, source, target in CASES}
    assert {source for source, _ in pairs} == set(LOSSLESS) - {JPEG2000MCLossless}  # no encoder
    covered = {name for name, _, _ in CASES}
    assert covered == set(LAYOUTS)
    assert len(CASES) > 300
