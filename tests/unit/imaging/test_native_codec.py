"""Native frames as little-endian octet-stream bytes."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging.codecs.native import little_endian_frame, little_endian_value


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


@pytest.mark.parametrize(
    ("vr", "dtype"),
    [
        *[("OW", "u2"), ("OF", "f4"), ("OL", "u4"), ("OD", "f8"), ("OV", "u8"), ("US", "u2"), ("SS", "i2")],
        *[("UL", "u4"), ("SL", "i4"), ("FL", "f4"), ("FD", "f8"), ("SV", "i8"), ("UV", "u8")],
    ],
)
def test_values_of_each_vr_come_back_little_endian(vr: str, dtype: str) -> None:
    values = np.array([1, 2, 300, 30000], dtype=f"<{dtype}")
    stored = values.astype(f">{dtype}").tobytes()
    assert little_endian_value(stored, vr, big_endian=True) == values.tobytes()
    assert little_endian_value(values.tobytes(), vr, big_endian=False) == values.tobytes()


@pytest.mark.parametrize("vr", ["OB", "UN", "LO"])
def test_byte_streams_and_text_are_never_swapped(vr: str) -> None:
    assert little_endian_value(b"\x01\x02\x03\x04", vr, big_endian=True) == b"\x01\x02\x03\x04"
