"""Native frames as little-endian octet-stream bytes."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging.codecs.native import little_endian_frame


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_big_endian_samples_are_swapped(bits: int) -> None:
    values = np.arange(1, 7, dtype=f"<u{bits // 8}") * 0x0102
    assert (
        little_endian_frame(values.astype(f">u{bits // 8}").tobytes(), bits_allocated=bits, big_endian=True)
        == values.tobytes()
    )


@pytest.mark.parametrize(("bits", "big_endian"), [(8, True), (1, True), (16, False)])
def test_bytes_without_byte_order_pass_through(bits: int, big_endian: bool) -> None:
    assert little_endian_frame(b"\x01\x02\x03", bits_allocated=bits, big_endian=big_endian) == b"\x01\x02\x03"


def test_odd_trailing_byte_is_kept() -> None:
    assert little_endian_frame(b"\x01\x02\x03", bits_allocated=16, big_endian=True) == b"\x02\x01\x03"
