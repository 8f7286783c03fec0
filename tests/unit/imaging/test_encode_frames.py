"""One native frame encoded losslessly, then decoded by Fovea and, where one exists, by another library.

The lossy syntaxes are in test_encode_lossy.py.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, replace
from typing import Any

import deflate
import imagecodecs
import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    JPEG2000,
    MPEG4HP41,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from app.imaging.codecs import jpeg2000
from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import FrameEncodeError, can_encode, encode_native_frame

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"


@dataclass(frozen=True)
class Layout:
    """A generated frame's layout; the name reads rows x columns, allocated, stored, sign, colour."""

    name: str
    fmt: FrameFormat

    def __str__(self) -> str:
        return self.name


def mono(rows: int, columns: int, allocated: int, stored: int, *, signed: bool = False) -> FrameFormat:
    return FrameFormat(rows, columns, 1, allocated, stored, int(signed), "MONOCHROME2", 0)


def rgb(rows: int, columns: int, *, planar: int = 0, allocated: int = 8, stored: int = 8) -> FrameFormat:
    return FrameFormat(rows, columns, 3, allocated, stored, 0, "RGB", planar)


GREY_8 = Layout("64x48_8_8_U", mono(64, 48, 8, 8))
GREY_12 = Layout("64x48_16_12_U", mono(64, 48, 16, 12))
GREY_16 = Layout("64x48_16_16_U", mono(64, 48, 16, 16))
SIGNED_16 = Layout("64x48_16_16_S", mono(64, 48, 16, 16, signed=True))
SIGNED_12 = Layout("64x48_16_12_S", mono(64, 48, 16, 12, signed=True))
RGB_8 = Layout("64x48_8_8_U_RGB", rgb(64, 48))
RGB_8_PLANAR = Layout("64x48_8_8_U_RGB_planar", rgb(64, 48, planar=1))
ODD_16 = Layout("33x17_16_16_U", mono(33, 17, 16, 16))
ODD_RGB = Layout("33x17_8_8_U_RGB", rgb(33, 17))
BITS_1 = Layout("33x17_1_1_U", mono(33, 17, 1, 1))
BITS_2 = Layout("33x17_8_2_U", mono(33, 17, 8, 2))  # the least precision JPEG lossless and JPEG-LS take
ODD_SIGNED_8 = Layout("17x33_8_7_S", mono(17, 33, 8, 7, signed=True))
SIGNED_14 = Layout("64x48_16_14_S", mono(64, 48, 16, 14, signed=True))
GREY_10 = Layout("33x17_16_10_U", mono(33, 17, 16, 10))
INVERTED_12 = Layout("64x48_16_12_U_MONO1", FrameFormat(64, 48, 1, 16, 12, 0, "MONOCHROME1", 0))
RGB_16 = Layout("64x48_16_16_U_RGB", rgb(64, 48, allocated=16, stored=16))
RGB_12 = Layout("33x17_16_12_U_RGB", rgb(33, 17, allocated=16, stored=12))
RGB_16_PLANAR = Layout("64x48_16_16_U_RGB_planar", rgb(64, 48, planar=1, allocated=16, stored=16))

# Bits Stored below Bits Allocated and signed samples, which HTJ2K declares exactly (codecs.htj2k).
PRECISE = (GREY_12, SIGNED_12, SIGNED_14, GREY_10, INVERTED_12, ODD_SIGNED_8, BITS_2, RGB_12)

# The 8- and 16-bit layouts, both signs, colour interleaved and planar, odd sizes.
COMMON = (GREY_8, GREY_12, GREY_16, SIGNED_16, SIGNED_12, RGB_8, RGB_8_PLANAR, ODD_16, ODD_RGB)

# What each syntax must encode; the layouts it refuses are in test_can_encode_table.
SUPPORTED: dict[str, tuple[Layout, ...]] = {
    DEFLATED_FRAMES: (GREY_8, GREY_12, GREY_16, SIGNED_16, RGB_8, RGB_8_PLANAR, ODD_16, BITS_1),
    ENCAPSULATED_UNCOMPRESSED: (GREY_8, GREY_16, SIGNED_12, RGB_8, RGB_8_PLANAR, ODD_16, BITS_1),
    RLELossless: COMMON,
    JPEGLossless: (*COMMON, BITS_2, ODD_SIGNED_8, RGB_16, RGB_12, RGB_16_PLANAR, INVERTED_12, SIGNED_14),
    JPEGLosslessSV1: (*COMMON, BITS_2, ODD_SIGNED_8, RGB_16, RGB_12, RGB_16_PLANAR, INVERTED_12, SIGNED_14),
    JPEGLSLossless: (*COMMON, RGB_16, RGB_12, RGB_16_PLANAR, INVERTED_12, SIGNED_14),
    JPEG2000Lossless: COMMON,
    HTJ2KLossless: (GREY_8, GREY_16, SIGNED_16, RGB_8, RGB_8_PLANAR, ODD_16, ODD_RGB, RGB_16, *PRECISE),
    HTJ2KLosslessRPCL: (GREY_8, GREY_16, SIGNED_16, RGB_8, RGB_8_PLANAR, ODD_16, ODD_RGB, RGB_16, *PRECISE),
    JPEGXL_LOSSLESS: (GREY_8, GREY_12, GREY_16, RGB_8, RGB_8_PLANAR, ODD_16, ODD_RGB),
}
CASES = [(uid, layout) for uid, layouts in SUPPORTED.items() for layout in layouts]


def pixels(fmt: FrameFormat, seed: int = 0) -> np.ndarray:
    """A smooth ramp plus noise, spanning the stored range (negatives too when signed), interleaved."""
    rng = np.random.default_rng(seed)
    shape = (fmt.rows, fmt.columns, fmt.samples_per_pixel)
    low = -(1 << (fmt.bits_stored - 1)) if fmt.pixel_representation else 0
    high = low + (1 << fmt.bits_stored) - 1
    ramp = np.linspace(low, high, fmt.rows * fmt.columns * fmt.samples_per_pixel).reshape(shape)
    noisy = ramp + rng.integers(-3, 4, shape)
    values = np.clip(noisy, low, high).astype(np.int64)
    values[0, 0], values[-1, -1] = low, high  # both extremes, so a lost sign or high bit shows
    return values if fmt.samples_per_pixel == 3 else values[..., 0]


def native_bytes(values: np.ndarray, fmt: FrameFormat, *, planar: int = 0) -> bytes:
    """As Fovea serves the frame: little-endian samples, planar when asked, 1-bit packed LSB first."""
    if fmt.bits_allocated == 1:
        return np.packbits(values.astype(np.uint8), axis=None, bitorder="little").tobytes()
    kind = "i" if fmt.pixel_representation else "u"
    if planar:
        values = values.transpose(2, 0, 1)
    return np.ascontiguousarray(values).astype(f"<{kind}{fmt.bits_allocated // 8}").tobytes()


def decoded_by_pydicom_plugin(frame: bytes, uid: str, fmt: FrameFormat, plugin: str) -> bytes:
    """pydicom's decoder for `uid`, restricted to `plugin`, as native interleaved bytes."""
    options: dict[str, Any] = {
        "number_of_frames": 1,
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples_per_pixel,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": fmt.pixel_representation,
        "photometric_interpretation": fmt.photometric_interpretation,
        "planar_configuration": fmt.planar_configuration,
    }
    decoder = get_decoder(uid)
    value = encapsulate([frame], has_bot=False)
    array, _ = decoder.as_array(value, index=0, validate=False, decoding_plugin=plugin, **options)
    return native_bytes(array, fmt)


def decoded_elsewhere(frame: bytes, uid: str, fmt: FrameFormat) -> bytes | None:
    """The frame decoded by a library other than its encoder; None where none is installed."""
    if uid == ENCAPSULATED_UNCOMPRESSED:  # the native frame itself, pad byte aside
        return frame[: len(native_bytes(pixels(fmt), fmt))]
    if uid == DEFLATED_FRAMES:  # encoded by libdeflate, inflated by zlib
        return zlib.decompressobj(wbits=-15).decompress(frame)[: len(native_bytes(pixels(fmt), fmt))]
    if uid == RLELossless:  # encoded by pylibjpeg-rle, decoded by pydicom's numpy RLE decoder
        return decoded_by_pydicom_plugin(frame, uid, fmt, "pydicom")
    if uid in (JPEGLossless, JPEGLosslessSV1):  # encoded by libjpeg-turbo, decoded by libjpeg
        return decoded_by_pydicom_plugin(frame, uid, fmt, "pylibjpeg")
    if uid == JPEGLSLossless:  # encoded by CharLS, decoded by libjpeg (pylibjpeg-libjpeg)
        return decoded_by_pydicom_plugin(frame, uid, fmt, "pylibjpeg")
    if uid == JPEG2000Lossless:  # encoded by imagecodecs' OpenJPEG, decoded by pylibjpeg-openjpeg's
        return decoded_by_pydicom_plugin(frame, uid, fmt, "pylibjpeg")
    if uid in (HTJ2KLossless, HTJ2KLosslessRPCL):  # encoded by OpenJPH, decoded by OpenJPEG
        return decoded_by_pydicom_plugin(frame, uid, fmt, "pylibjpeg")
    return None  # JPEG XL: libjxl is the only JPEG XL library installed


@pytest.mark.parametrize(("uid", "layout"), CASES, ids=[f"{uid}-{layout}" for uid, layout in CASES])
def test_round_trip_is_bit_exact(uid: str, layout: Layout) -> None:
    fmt = layout.fmt
    values = pixels(fmt)
    native = native_bytes(values, fmt, planar=fmt.planar_configuration)
    assert can_encode(uid, fmt)
    frame = encode_native_frame(native, uid, fmt)
    assert len(frame) % 2 == 0
    # Deflate and Encapsulated Uncompressed keep the input's planar configuration; the others encode
    # interleaved samples, so the encoded frame is described by Planar Configuration 0 (PS3.5 8.2.3, 8.2.4).
    as_given = uid in (DEFLATED_FRAMES, ENCAPSULATED_UNCOMPRESSED)
    expected = native if as_given else native_bytes(values, fmt)
    encoded_fmt = fmt if as_given else replace(fmt, planar_configuration=0)
    out = decode_to_native(frame, uid, encoded_fmt)
    assert out.data == expected
    other = decoded_elsewhere(frame, uid, encoded_fmt)
    if other is not None:
        assert other == expected


@pytest.mark.parametrize(
    "layout", [GREY_12, SIGNED_16, ODD_SIGNED_8, BITS_2, ODD_RGB, RGB_16, RGB_12], ids=str
)
def test_jpeg_lossless_is_read_by_a_third_decoder(layout: Layout) -> None:
    # libjpeg-turbo wrote it, libjpeg read it above; jpegsof3 (imagecodecs) is a third implementation.
    fmt = layout.fmt
    values = pixels(fmt)
    frame = encode_native_frame(native_bytes(values, fmt), JPEGLosslessSV1, fmt)
    decoded = imagecodecs.jpegsof3_decode(frame).astype(np.int64)
    if fmt.pixel_representation:  # the stored bit pattern, read back as signed
        sign = 1 << (fmt.bits_stored - 1)
        decoded = (decoded ^ sign) - sign
    assert np.array_equal(decoded, values)


def test_planar_input_encodes_like_interleaved_input() -> None:
    values = pixels(RGB_8.fmt, seed=5)
    interleaved = encode_native_frame(native_bytes(values, RGB_8.fmt), JPEGLSLossless, RGB_8.fmt)
    planar = encode_native_frame(
        native_bytes(values, RGB_8_PLANAR.fmt, planar=1), JPEGLSLossless, RGB_8_PLANAR.fmt
    )
    assert planar == interleaved


# --- what the codestreams declare ---------------------------------------------------------------------


def segment(stream: bytes, marker: int) -> bytes:
    """The payload of the first marker segment `marker` (FF xx, then a 2-byte length counting itself)."""
    at = stream.index(bytes((0xFF, marker)))
    length = int.from_bytes(stream[at + 2 : at + 4], "big")
    return stream[at + 4 : at + 2 + length]


def jpegls_precision(stream: bytes) -> int:
    """P of the SOF55 marker (ISO/IEC 14495-1 C.2.2): FF F7, Lf (2 bytes), P."""
    return stream[stream.index(b"\xff\xf7") + 4]


def j2k_ssiz(stream: bytes) -> int:
    """Ssiz of the first component in SIZ (ISO/IEC 15444-1 A.5.1): bit 7 signed, bits 0-6 precision - 1."""
    return stream[stream.index(b"\xff\x51") + 40]


def j2k_mct(stream: bytes) -> int:
    """The multiple component transform byte of COD (ISO/IEC 15444-1 A.6.1)."""
    return stream[stream.index(b"\xff\x52") + 8]


@pytest.mark.parametrize(
    ("layout", "precision"),
    [(GREY_8, 8), (GREY_12, 12), (SIGNED_12, 12), (GREY_16, 16), (SIGNED_16, 16), (RGB_16, 16), (RGB_12, 12)],
    ids=str,
)
def test_jpegls_precision_is_bits_stored(layout: Layout, precision: int) -> None:
    frame = encode_native_frame(native_bytes(pixels(layout.fmt), layout.fmt), JPEGLSLossless, layout.fmt)
    assert jpegls_precision(frame) == precision


@pytest.mark.parametrize("uid", [JPEGLossless, JPEGLosslessSV1])
@pytest.mark.parametrize(
    "layout",
    [GREY_8, GREY_12, SIGNED_12, GREY_16, SIGNED_16, BITS_2, ODD_SIGNED_8, RGB_8, RGB_16, RGB_12],
    ids=str,
)
def test_jpeg_lossless_sof3_precision_is_bits_stored_and_predictor_is_1(uid: str, layout: Layout) -> None:
    fmt = layout.fmt
    frame = encode_native_frame(native_bytes(pixels(fmt), fmt), uid, fmt)
    sof = segment(frame, 0xC3)  # SOF3: P, Y, X, Nf, then Ci, HiVi, Tqi per component (ITU T.81 B.2.2)
    assert sof[0] == fmt.bits_stored
    assert int.from_bytes(sof[1:3], "big") == fmt.rows and int.from_bytes(sof[3:5], "big") == fmt.columns
    assert sof[5] == fmt.samples_per_pixel
    assert all(sof[7 + 3 * i] == 0x11 for i in range(sof[5]))  # no subsampling
    sos = segment(frame, 0xDA)  # Ns, (Cs, Td/Ta) per component, Ss (the predictor), Se, Ah/Al
    assert sos[1 + 2 * sos[0]] == 1
    assert sos[3 + 2 * sos[0]] == 0  # no point transform
    if fmt.samples_per_pixel == 3:  # no colour transform: ids R, G, B and Adobe transform 0
        assert [sof[6 + 3 * i] for i in range(3)] == list(b"RGB")
        assert segment(frame, 0xEE)[:5] == b"Adobe" and segment(frame, 0xEE)[11] == 0


@pytest.mark.parametrize(
    ("layout", "ssiz"),
    [(GREY_8, 0x07), (GREY_12, 0x0B), (SIGNED_12, 0x8B), (GREY_16, 0x0F), (SIGNED_16, 0x8F)],
    ids=str,
)
def test_jpeg2000_precision_and_sign_are_bits_stored_and_representation(layout: Layout, ssiz: int) -> None:
    frame = encode_native_frame(native_bytes(pixels(layout.fmt), layout.fmt), JPEG2000Lossless, layout.fmt)
    assert frame[:4] == b"\xff\x4f\xff\x51"  # a bare codestream (SOC, SIZ), not a JP2 file
    assert j2k_ssiz(frame) == ssiz


@pytest.mark.parametrize("uid", [HTJ2KLossless, HTJ2KLosslessRPCL])
@pytest.mark.parametrize(
    ("layout", "ssiz"),
    [
        (GREY_8, 0x07),
        (GREY_16, 0x0F),
        (SIGNED_16, 0x8F),
        (GREY_12, 0x0B),
        (SIGNED_12, 0x8B),
        (SIGNED_14, 0x8D),
        (GREY_10, 0x09),
        (ODD_SIGNED_8, 0x86),
        (BITS_2, 0x01),
    ],
    ids=str,
)
def test_htj2k_precision_and_sign(uid: str, layout: Layout, ssiz: int) -> None:
    frame = encode_native_frame(native_bytes(pixels(layout.fmt), layout.fmt), uid, layout.fmt)
    assert frame[:4] == b"\xff\x4f\xff\x51"
    assert j2k_ssiz(frame) == ssiz
    # QCD: the guard bits took what the exponents gave up, so Mb = G + exponent - 1 is the container's.
    sqcd = segment(frame, 0x5C)[0]
    assert sqcd >> 5 == 1 + (8 if layout.fmt.bits_stored <= 8 else 16) - layout.fmt.bits_stored


@pytest.mark.parametrize("uid", [HTJ2KLossless, HTJ2KLosslessRPCL])
def test_htj2k_progression_is_rpcl(uid: str) -> None:
    frame = encode_native_frame(native_bytes(pixels(GREY_16.fmt), GREY_16.fmt), uid, GREY_16.fmt)
    assert segment(frame, 0x52)[1] == 2  # COD SGcod progression order: 2 is RPCL (ISO/IEC 15444-1 A.6.1)


@pytest.mark.parametrize(
    ("layout", "decompositions"),
    [(GREY_8, 5), (ODD_RGB, 5), (Layout("2x5000_8_8_U", mono(2, 5000, 8, 8)), 7)],
    ids=str,
)
def test_htj2k_rpcl_has_tlm_and_a_lowest_resolution_of_64_or_less(
    layout: Layout, decompositions: int
) -> None:
    # PS3.5 8.2.15: RPCL, TLM present, the lowest resolution at most 64 wide and high (5000 / 2**7 = 39).
    fmt = layout.fmt
    values = pixels(fmt)
    frame = encode_native_frame(native_bytes(values, fmt), HTJ2KLosslessRPCL, fmt)
    cod = segment(frame, 0x52)
    assert cod[1] == 2 and cod[5] == decompositions
    assert b"\xff\x55" in frame[: frame.index(b"\xff\x90")]  # TLM, in the main header before the first SOT
    assert frame.count(b"\xff\x90") == decompositions + 1  # one tile-part per resolution
    plain = encode_native_frame(native_bytes(values, fmt), HTJ2KLossless, fmt)
    assert b"\xff\x55" not in plain[: plain.index(b"\xff\x90")]  # .201 has none: the test can tell
    assert decode_to_native(frame, HTJ2KLosslessRPCL, fmt).data == native_bytes(values, fmt)


@pytest.mark.parametrize("uid", [JPEG2000Lossless, HTJ2KLossless, HTJ2KLosslessRPCL])
def test_colour_is_encoded_without_a_component_transform(uid: str) -> None:
    # No MCT: the frame stays RGB rather than becoming YBR_RCT (PS3.5 8.2.4).
    frame = encode_native_frame(native_bytes(pixels(RGB_8.fmt), RGB_8.fmt), uid, RGB_8.fmt)
    assert j2k_mct(frame) == 0


@pytest.mark.parametrize("uid", [JPEG2000Lossless, JPEG2000])
def test_jpeg2000_codestream_does_not_depend_on_the_encoder_threads(
    uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenJPEG codes a frame's code-blocks in several threads (jpeg2000.ENCODE_THREADS): 512x512 is
    # 64 code-blocks, so the threads share them, and the codestream must be the one a single thread writes.
    fmt = mono(512, 512, 16, 12, signed=True)
    native = native_bytes(pixels(fmt, seed=7), fmt)
    encoded = {}
    for threads in (1, 4):
        monkeypatch.setattr(jpeg2000, "ENCODE_THREADS", threads)
        encoded[threads] = encode_native_frame(native, uid, fmt)
    assert encoded[1] == encoded[4]


def test_jpegxl_is_a_bare_codestream() -> None:
    frame = encode_native_frame(native_bytes(pixels(GREY_12.fmt), GREY_12.fmt), JPEGXL_LOSSLESS, GREY_12.fmt)
    assert frame[:2] == b"\xff\x0a"
    assert imagecodecs.jpegxl_decode(frame).dtype == np.uint16


def test_deflate_is_raw_rfc_1951_padded_once_to_even_length() -> None:
    native = bytes(range(8))  # libdeflate stores it as one 13-byte block: odd
    assert len(deflate.deflate_compress(native, 6)) % 2 == 1
    frame = encode_native_frame(native, DEFLATED_FRAMES, mono(2, 4, 8, 8))
    assert len(frame) % 2 == 0 and frame.endswith(b"\x00")
    inflater = zlib.decompressobj(wbits=-15)
    assert inflater.decompress(frame) == native and inflater.eof
    assert inflater.unused_data == b"\x00"


@pytest.mark.parametrize(
    "uid",
    [RLELossless, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless, JPEGXL_LOSSLESS],
)
def test_high_bits_above_bits_stored_are_not_encoded(uid: str) -> None:
    fmt = GREY_12.fmt
    values = pixels(fmt)
    dirty = np.frombuffer(native_bytes(values, fmt), "<u2") | np.uint16(0xF000)
    frame = encode_native_frame(dirty.tobytes(), uid, fmt)
    assert frame == encode_native_frame(native_bytes(values, fmt), uid, fmt)


# --- what is refused --------------------------------------------------------------------------------

GREY_32 = Layout("64x48_32_32_U", mono(64, 48, 32, 32))
GREY_9 = Layout("64x48_16_9_U", mono(64, 48, 16, 9))
SIGNED_RGB_16 = Layout("64x48_16_16_S_RGB", FrameFormat(64, 48, 3, 16, 16, 1, "RGB", 0))
YBR_FULL_16 = Layout("64x48_16_16_U_YBR", FrameFormat(64, 48, 3, 16, 16, 0, "YBR_FULL", 0))
RGB_32 = Layout("64x48_32_32_U_RGB", FrameFormat(64, 48, 3, 32, 32, 0, "RGB", 0))
YBR_422 = Layout("64x48_8_8_U_YBR422", FrameFormat(64, 48, 3, 8, 8, 0, "YBR_FULL_422", 0))
YBR_FULL = Layout("64x48_8_8_U_YBR", FrameFormat(64, 48, 3, 8, 8, 0, "YBR_FULL", 0))
BITS_1_IN_8 = Layout("33x17_8_1_U", mono(33, 17, 8, 1))

REFUSED = [
    (RLELossless, BITS_1),
    (RLELossless, YBR_422),
    (JPEGLossless, GREY_32),
    (JPEGLossless, SIGNED_RGB_16),  # colour: unsigned only (PS3.5 8.2.1)
    (JPEGLosslessSV1, YBR_FULL),  # libjpeg-turbo would subsample the chroma
    (JPEGLosslessSV1, BITS_1_IN_8),  # precision 2-16
    (JPEGLosslessSV1, BITS_1),
    (JPEGLSLossless, GREY_32),
    (JPEGLSLossless, SIGNED_RGB_16),  # colour: unsigned only (PS3.5 8.2.3)
    (JPEGLSLossless, YBR_FULL_16),  # YBR_FULL: 8 bits only
    (JPEGLSLossless, BITS_1),
    (JPEG2000Lossless, GREY_32),
    (JPEG2000Lossless, YBR_422),
    (HTJ2KLossless, GREY_9),  # 7 more guard bits than QCD holds
    (HTJ2KLossless, BITS_1_IN_8),
    (HTJ2KLosslessRPCL, GREY_9),
    (JPEGXL_LOSSLESS, SIGNED_16),  # imagecodecs' libjxl takes no int16
    (JPEGXL_LOSSLESS, BITS_1),
    ("1.2.840.10008.1.2.4.111", GREY_8),  # JPEG XL JPEG recompression: needs a JPEG, not pixels
    (JPEG2000MCLossless, GREY_8),  # JPEG 2000 Part 2
    (MPEG4HP41, RGB_8),  # video
    (ExplicitVRLittleEndian, GREY_8),  # native
    (ImplicitVRLittleEndian, GREY_8),
    ("1.2.3.4", GREY_8),  # not a transfer syntax
]


@pytest.mark.parametrize(("uid", "layout"), REFUSED, ids=[f"{uid}-{layout}" for uid, layout in REFUSED])
def test_refused_layouts_and_syntaxes(uid: str, layout: Layout) -> None:
    assert not can_encode(uid, layout.fmt)
    with pytest.raises(FrameEncodeError, match=r"1\.2\.[0-9.]+"):
        encode_native_frame(native_bytes(pixels(layout.fmt), layout.fmt), uid, layout.fmt)


def test_can_encode_table() -> None:
    assert can_encode(DEFLATED_FRAMES, YBR_422.fmt)  # deflate takes any layout as bytes
    assert can_encode(DEFLATED_FRAMES, GREY_32.fmt)
    assert can_encode(RLELossless, GREY_32.fmt)
    assert can_encode(RLELossless, RGB_32.fmt)  # 12 segments of the 15 PS3.5 G.2 allows
    assert not can_encode(RLELossless, replace(RGB_32.fmt, bits_allocated=64, bits_stored=64))  # 24 segments
    assert can_encode(JPEGLSLossless, SIGNED_16.fmt)
    assert can_encode(JPEG2000Lossless, SIGNED_12.fmt)
    assert not can_encode(JPEG2000Lossless, replace(GREY_16.fmt, bits_stored=17))  # stored > allocated
    assert not can_encode(DEFLATED_FRAMES, replace(GREY_8.fmt, rows=0))


@pytest.mark.parametrize("uid", list(SUPPORTED))
def test_short_native_frame_raises(uid: str) -> None:
    fmt = GREY_8.fmt
    native = native_bytes(pixels(fmt), fmt)
    named = re.escape(uid)
    with pytest.raises(FrameEncodeError, match=rf"{named}.*{len(native) - 1} bytes"):
        encode_native_frame(native[:-1], uid, fmt)
    with pytest.raises(FrameEncodeError, match="bytes"):
        encode_native_frame(native + b"\x00\x01", uid, fmt)


def test_openjph_tables_are_filled_once_before_concurrent_htj2k_encodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenJPH fills its coding tables on first use without a lock: the first encode in a process
    must be the fill, made once, under a lock, however many threads start encoding together."""
    import threading

    from app.imaging.codecs import htj2k

    calls: list[tuple[int, ...]] = []
    real = imagecodecs.htj2k_encode

    def recording(data: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        calls.append(data.shape)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(htj2k, "_openjph_tables_filled", False)
    monkeypatch.setattr(imagecodecs, "htj2k_encode", recording)
    fmt = GREY_16.fmt
    native = native_bytes(pixels(fmt), fmt)
    barrier = threading.Barrier(4)

    def encode_one() -> None:
        barrier.wait()
        encode_native_frame(native, HTJ2KLossless, fmt)

    threads = [threading.Thread(target=encode_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fills = [shape for shape in calls if shape == (8, 8)]
    assert len(fills) == 3 and calls[:3] == fills  # the fill first, once
    assert calls[3:] == [(fmt.rows, fmt.columns)] * 4
