"""The HTJ2K header rewrite: what it changes, that the result decodes alike everywhere, what it refuses."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
from pydicom.uid import HTJ2KLossless

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.htj2k import PrecisionError, declare_precision, encode_lossless, holds_precision
from tests.unit.imaging.test_encode_frames import decoded_by_pydicom_plugin, native_bytes, pixels


def header(stream: bytes) -> bytes:
    return stream[: stream.index(b"\xff\x90")]


def qcd(stream: bytes) -> bytes:
    at = stream.index(b"\xff\x5c")
    return stream[at + 4 : at + 2 + int.from_bytes(stream[at + 2 : at + 4], "big")]


def test_only_ssiz_and_qcd_change_and_magnitude_bit_planes_stay() -> None:
    values = (np.arange(48 * 40).reshape(48, 40) * 7 % 4096).astype(np.uint16)
    container = bytes(imagecodecs.htj2k_encode(values + 30720, level=0, reversible=True, rgb=False))
    narrowed = declare_precision(container, 12, signed=False)
    assert len(narrowed) == len(container)
    differing = [i for i, (a, b) in enumerate(zip(container, narrowed, strict=True)) if a != b]
    siz_ssiz = container.index(b"\xff\x51") + 40
    qcd_start = container.index(b"\xff\x5c") + 4
    assert siz_ssiz in differing and all(i == siz_ssiz or i >= qcd_start for i in differing)
    assert narrowed[qcd_start + len(qcd(container)) :] == container[qcd_start + len(qcd(container)) :]
    before, after = qcd(container), qcd(narrowed)
    for old, new in zip(before[1:], after[1:], strict=True):  # Mb = G + exponent - 1 unchanged
        assert (before[0] >> 5) + (old >> 3) == (after[0] >> 5) + (new >> 3)
    assert after[0] >> 5 == (before[0] >> 5) + 4
    fmt = FrameFormat(48, 40, 1, 16, 12, 0, "MONOCHROME2", 0)
    assert decode_to_native(narrowed, HTJ2KLossless, fmt).data == values.astype("<u2").tobytes()


def test_openjph_reads_its_own_stream_back_after_the_rewrite() -> None:
    fmt = FrameFormat(33, 17, 1, 16, 12, 1, "MONOCHROME2", 0)
    values = pixels(fmt)
    frame = encode_lossless(values.astype(np.int16), fmt)
    decoded = imagecodecs.htj2k_decode(frame)  # OpenJPH, the encoder's own library
    assert decoded.dtype == np.int16 and np.array_equal(decoded, values)
    assert decoded_by_pydicom_plugin(frame, HTJ2KLossless, fmt, "pylibjpeg") == native_bytes(values, fmt)


def test_a_sign_other_than_the_containers_is_refused() -> None:
    stream = bytes(imagecodecs.htj2k_encode(np.zeros((8, 8), np.uint16), level=0, reversible=True))
    with pytest.raises(PrecisionError, match="signed False"):
        declare_precision(stream, 12, signed=True)


def test_more_guard_bits_than_qcd_holds_are_refused() -> None:
    stream = bytes(imagecodecs.htj2k_encode(np.zeros((8, 8), np.uint16), level=0, reversible=True))
    with pytest.raises(PrecisionError, match="guard bits"):
        declare_precision(stream, 9, signed=False)


def test_a_component_quantisation_segment_is_refused() -> None:
    stream = bytes(imagecodecs.htj2k_encode(np.zeros((8, 8), np.uint16), level=0, reversible=True))
    sot = stream.index(b"\xff\x90")
    with_qcc = stream[:sot] + b"\xff\x5d\x00\x05\x00\x20\x88" + stream[sot:]
    with pytest.raises(PrecisionError, match="QCC"):
        declare_precision(with_qcc, 12, signed=False)


@pytest.mark.parametrize(
    ("allocated", "stored", "held"),
    [
        (8, 1, False),
        (8, 2, True),
        (8, 8, True),
        (16, 8, True),
        (16, 9, False),
        (16, 10, True),
        (16, 16, True),
    ],
)
def test_which_precisions_are_held(allocated: int, stored: int, held: bool) -> None:
    assert holds_precision(FrameFormat(8, 8, 1, allocated, stored, 0, "MONOCHROME2", 0)) is held
