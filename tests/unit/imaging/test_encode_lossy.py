"""One native frame encoded lossily: close enough to the original, yet really smaller, read by two decoders.

Each bound was set a few dB under what the encoder gave on these frames (smooth + noise), so a
change of quality constant, of bit depth declared or of colour model shows. The upper bounds show
the frame did lose something and did shrink: an encoder quietly writing lossless streams fails too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import imagecodecs
import numpy as np
import pytest
from pydicom.pixels.processing import convert_color_space
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import (
    FrameEncodeError,
    can_encode,
    encode_native_frame,
    encoded_photometric,
    encodes_lossy,
    lossy_method,
)
from tests.unit.imaging.test_encode_frames import decoded_by_pydicom_plugin, native_bytes, segment

JPEGXL = "1.2.840.10008.1.2.4.112"
LOSSY = (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000, HTJ2K, JPEGXL)

NEAR = 2  # encode._JPEGLS_NEAR


def mono(
    allocated: int, stored: int, *, signed: bool = False, photometric: str = "MONOCHROME2"
) -> FrameFormat:
    return FrameFormat(96, 80, 1, allocated, stored, int(signed), photometric, 0)


def colour(photometric: str = "RGB", *, planar: int = 0, allocated: int = 8) -> FrameFormat:
    return FrameFormat(96, 80, 3, allocated, allocated, 0, photometric, planar)


GREY_8 = mono(8, 8)
GREY_8_INVERTED = mono(8, 8, photometric="MONOCHROME1")
GREY_12 = mono(16, 12)
GREY_16 = mono(16, 16)
SIGNED_12 = mono(16, 12, signed=True)
SIGNED_16 = mono(16, 16, signed=True)
RGB_8 = colour()
RGB_8_PLANAR = colour(planar=1)


def smooth_frame(fmt: FrameFormat, seed: int = 0) -> np.ndarray:
    """Slow waves over 90 % of the stored range plus Gaussian noise of 1/128 of it, interleaved."""
    rng = np.random.default_rng(seed)
    full = (1 << fmt.bits_stored) - 1
    low = -(1 << (fmt.bits_stored - 1)) if fmt.pixel_representation else 0
    y, x = np.mgrid[0 : fmt.rows, 0 : fmt.columns]
    wave = (np.sin(x / 9.0) + np.cos(y / 6.0) + 2) / 4  # 0..1
    if fmt.samples_per_pixel == 3:
        values = wave[..., None] * np.array([0.9, 0.6, 0.3]) + np.array([0.05, 0.2, 0.4])
    else:
        values = wave * 0.9 + 0.05
    values = values * full + rng.normal(0, full / 128, values.shape)
    pixels: np.ndarray = np.clip(np.rint(values), 0, full).astype(np.int64) + low
    return pixels


def psnr(original: np.ndarray, decoded: np.ndarray, bits_stored: int | None = None) -> float:
    """PSNR in dB over the Bits Stored range, or (None) over the range the original spans."""
    error = np.mean((decoded.astype(np.float64) - original.astype(np.float64)) ** 2)
    peak = (1 << bits_stored) - 1 if bits_stored else int(original.max()) - int(original.min())
    return float("inf") if error == 0 else float(10 * np.log10(peak * peak / error))


def as_values(data: bytes, fmt: FrameFormat) -> np.ndarray:
    """Native bytes (interleaved) back to an int64 array shaped like `smooth_frame`'s."""
    kind = "i" if fmt.pixel_representation else "u"
    values = np.frombuffer(data, f"<{kind}{fmt.bits_allocated // 8}").astype(np.int64)
    shape = (fmt.rows, fmt.columns, 3) if fmt.samples_per_pixel == 3 else (fmt.rows, fmt.columns)
    return values.reshape(shape)


@dataclass(frozen=True)
class Target:
    """A lossy syntax on one layout: PSNR (dB) at least `floor`, at most `ceiling`; ratio at least `ratio`."""

    uid: str
    fmt: FrameFormat
    floor: float
    ceiling: float
    ratio: float
    others: tuple[str, ...]  # pydicom plugins, besides decode_to_native's choice, that must read it

    def __str__(self) -> str:
        f = self.fmt
        sign = "S" if f.pixel_representation else "U"
        layout = f"{f.bits_allocated}_{f.bits_stored}_{sign}_{f.photometric_interpretation}"
        return f"{self.uid}-{layout}_planar{f.planar_configuration}"


# Measured on these frames, PSNR dB over the range they span / ratio, in the comments (some from before
# the quality targets followed the span: they differ by under 1 dB); bounds 2-3 dB around, ratio under.
TARGETS = [
    # JPEG baseline, quality 90: libjpeg-turbo writes it, libjpeg and Pillow read it.
    Target(JPEGBaseline8Bit, GREY_8, 41, 46, 4, ("pylibjpeg", "pillow")),  # 43.1 / 4.5
    Target(JPEGBaseline8Bit, GREY_8_INVERTED, 41, 46, 4, ("pylibjpeg", "pillow")),  # 43.1 / 4.5
    Target(JPEGBaseline8Bit, RGB_8, 39, 44, 9, ("pylibjpeg", "pillow")),  # 41.3 / 10.2 (4:2:2)
    Target(JPEGBaseline8Bit, RGB_8_PLANAR, 39, 44, 9, ("pylibjpeg", "pillow")),  # 41.3 / 10.2
    # JPEG extended: 12-bit DCT (SOF1); the IJG tables are not scaled for 12 bits, hence the high PSNR.
    Target(JPEGExtended12Bit, GREY_12, 58, 63, 2.6, ("pylibjpeg",)),  # 60.5 / 2.9
    Target(JPEGExtended12Bit, GREY_8, 41, 46, 4, ("pylibjpeg",)),  # 43.1 / 4.5 (the baseline stream)
    # JPEG-LS near-lossless, NEAR 2: CharLS writes it, libjpeg reads it (exactly alike).
    Target(JPEGLSNearLossless, GREY_8, 44, 47, 3.9, ("pylibjpeg",)),  # 45.1 / 4.4
    Target(JPEGLSNearLossless, GREY_12, 68, 71, 2.5, ("pylibjpeg",)),  # 69.2 / 2.8
    Target(JPEGLSNearLossless, GREY_16, 92, 95, 1.45, ("pylibjpeg",)),  # 93.3 / 1.6
    Target(JPEGLSNearLossless, SIGNED_12, 68, 71, 2.5, ("pylibjpeg",)),  # 69.3 / 2.8 (as a bit pattern)
    Target(JPEGLSNearLossless, RGB_8, 44, 47, 4.1, ("pylibjpeg",)),  # 45.2 / 4.6
    Target(JPEGLSNearLossless, colour(allocated=16), 91, 94, 1.45, ("pylibjpeg",)),  # 92.7 / 1.65 (RGB16)
    # JPEG 2000, PSNR target 50 dB: OpenJPEG (imagecodecs) writes it, OpenJPEG (pylibjpeg) reads it.
    Target(JPEG2000, GREY_8, 47, 51, 3.2, ("pylibjpeg",)),  # 48.8 / 3.4
    Target(JPEG2000, GREY_12, 48, 52, 6, ("pylibjpeg",)),  # 50.0 / 6.8
    Target(JPEG2000, GREY_16, 48, 52, 6, ("pylibjpeg",)),  # 50.0 / 6.8
    Target(JPEG2000, SIGNED_12, 48, 52, 6, ("pylibjpeg",)),  # 50.0 / 6.8
    Target(JPEG2000, SIGNED_16, 48, 52, 6, ("pylibjpeg",)),  # 50.0 / 6.8
    Target(JPEG2000, RGB_8, 45, 50, 3.8, ("pylibjpeg",)),  # 47.0 / 4.3 (the target is met in YCbCr)
    # HTJ2K, quantisation step 0.006: OpenJPH writes it, OpenJPEG reads it.
    Target(HTJ2K, GREY_8, 48, 53, 2.6, ("pylibjpeg",)),  # 50.6 / 2.9
    Target(HTJ2K, GREY_12, 49, 54, 5, ("pylibjpeg",)),  # 51.4 / 5.5 (declared 12 bits)
    Target(HTJ2K, SIGNED_12, 49, 54, 5, ("pylibjpeg",)),  # 51.4 / 5.5
    Target(HTJ2K, GREY_16, 49, 54, 5.2, ("pylibjpeg",)),  # 51.3 / 5.8
    Target(HTJ2K, SIGNED_16, 49, 54, 5.2, ("pylibjpeg",)),  # 51.3 / 5.8
    Target(HTJ2K, RGB_8, 44, 49, 4.3, ("pylibjpeg",)),  # 46.1 / 4.8
    # JPEG XL, distance 1.0: libjxl only (decode_to_native's reader too).
    Target(JPEGXL, GREY_8, 40, 45, 9, ()),  # 42.6 / 10.4
    Target(JPEGXL, GREY_12, 40, 45, 20, ()),  # 42.2 / 22.5
    Target(JPEGXL, GREY_16, 40, 45, 20, ()),  # 42.2 / 22.5
    Target(JPEGXL, RGB_8, 39, 44, 25, ()),  # 41.6 / 28.0
]


def encode(fmt: FrameFormat, uid: str, seed: int = 0) -> tuple[np.ndarray, bytes, FrameFormat]:
    """The frame's values, its encoding, and the format that describes the encoded frame."""
    values = smooth_frame(fmt, seed)
    frame = encode_native_frame(native_bytes(values, fmt, planar=fmt.planar_configuration), uid, fmt)
    photometric, planar = encoded_photometric(uid, fmt)
    return values, frame, replace(fmt, photometric_interpretation=photometric, planar_configuration=planar)


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_lossy_frame_is_close_smaller_and_read_alike(target: Target) -> None:
    fmt = target.fmt
    assert can_encode(target.uid, fmt)
    values, frame, encoded_fmt = encode(fmt, target.uid)
    assert len(frame) % 2 == 0
    native_size = len(native_bytes(values, fmt))
    assert native_size / len(frame) >= target.ratio

    out = decode_to_native(frame, target.uid, encoded_fmt)
    decoded = as_values(out.data, fmt)
    assert target.floor <= psnr(values, decoded) <= target.ceiling
    assert out.photometric_interpretation == (
        "RGB" if fmt.samples_per_pixel == 3 else fmt.photometric_interpretation
    )
    for plugin in target.others:
        elsewhere = as_values(decoded_by_pydicom_plugin(frame, target.uid, encoded_fmt, plugin), fmt)
        assert psnr(values, elsewhere) >= target.floor, plugin


def ct_like_frame(fmt: FrameFormat) -> np.ndarray:
    """A CT slice's range in 16 bits: -1024..3000 (or shifted by 1024 when unsigned), a sixteenth of
    what 16 bits hold, smooth anatomy-like waves plus noise of a few units."""
    y, x = np.mgrid[0 : fmt.rows, 0 : fmt.columns]
    rng = np.random.default_rng(5)
    values = 1800 * np.sin(x / 11.0) * np.cos(y / 7.0) + 900 + rng.normal(0, 4, (fmt.rows, fmt.columns))
    pixels: np.ndarray = np.clip(np.rint(values), -1024, 3000).astype(np.int64)
    return pixels if fmt.pixel_representation else pixels + 1024


@pytest.mark.parametrize(
    ("uid", "fmt", "floor"),
    [(JPEG2000, SIGNED_16, 48), (JPEG2000, GREY_16, 48), (HTJ2K, SIGNED_16, 49), (JPEGXL, GREY_16, 47)],
    ids=str,
)
def test_quality_follows_the_range_the_pixels_span(uid: str, fmt: FrameFormat, floor: float) -> None:
    """A quality target against the full 16-bit range would allow errors of hundreds of HU here."""
    values = ct_like_frame(fmt)
    frame = encode_native_frame(native_bytes(values, fmt), uid, fmt)
    decoded = as_values(decode_to_native(frame, uid, fmt).data, fmt)
    assert psnr(values, decoded) >= floor
    assert np.abs(decoded - values).max() < 100  # no sample off by more than a few dozen HU


def test_jpegls_near_lossless_error_is_at_most_near() -> None:
    for fmt in (GREY_8, GREY_12, GREY_16, SIGNED_12, SIGNED_16, RGB_8):
        values, frame, encoded_fmt = encode(fmt, JPEGLSNearLossless, seed=3)
        decoded = as_values(decode_to_native(frame, JPEGLSNearLossless, encoded_fmt).data, fmt)
        assert 0 < np.abs(decoded - values).max() <= NEAR
        sos = segment(frame, 0xDA)  # Ns, (Cs, Tm) per component, NEAR, ILV, Al/Ah (ISO/IEC 14495-1 C.2.3)
        assert sos[1 + 2 * sos[0]] == NEAR
        assert frame[frame.index(b"\xff\xf7") + 4] == fmt.bits_stored  # SOF55 precision


def test_jpegls_near_lossless_tiny_frame_falls_back_to_imagecodecs() -> None:
    fmt = FrameFormat(2, 2, 1, 8, 8, 0, "MONOCHROME2", 0)  # pyjpegls' buffer is too small for this
    frame = encode_native_frame(bytes([10, 200, 30, 40]), JPEGLSNearLossless, fmt)
    assert segment(frame, 0xDA)[3] == NEAR
    decoded = np.frombuffer(decode_to_native(frame, JPEGLSNearLossless, fmt).data, np.uint8).astype(int)
    assert np.abs(decoded - [10, 200, 30, 40]).max() <= NEAR


# --- what the codestreams declare ---------------------------------------------------------------------


def test_jpeg_baseline_colour_is_ycbcr_422() -> None:
    _, frame, encoded_fmt = encode(RGB_8, JPEGBaseline8Bit)
    assert encoded_fmt.photometric_interpretation == "YBR_FULL_422"
    sof = segment(frame, 0xC0)  # baseline SOF0: P, Y, X, Nf, (Ci, HiVi, Tqi) per component
    assert sof[0] == 8 and sof[5] == 3
    assert [sof[7 + 3 * i] for i in range(3)] == [0x21, 0x11, 0x11]  # Y 2x1, Cb and Cr 1x1: 4:2:2


@pytest.mark.parametrize(("fmt", "precision"), [(GREY_8, 8), (GREY_8_INVERTED, 8)])
def test_jpeg_baseline_grey_is_one_component(fmt: FrameFormat, precision: int) -> None:
    _, frame, encoded_fmt = encode(fmt, JPEGBaseline8Bit)
    sof = segment(frame, 0xC0)
    assert sof[0] == precision and sof[5] == 1
    assert encoded_fmt.photometric_interpretation == fmt.photometric_interpretation


def test_jpeg_baseline_takes_ybr_full_as_it_is() -> None:
    fmt = colour("YBR_FULL")
    values, frame, encoded_fmt = encode(fmt, JPEGBaseline8Bit)
    assert encoded_fmt.photometric_interpretation == "YBR_FULL_422"
    out = decode_to_native(frame, JPEGBaseline8Bit, encoded_fmt)  # pydicom gives RGB
    expected = convert_color_space(values.astype(np.uint8), "YBR_FULL", "RGB").astype(np.int64)
    assert psnr(expected, as_values(out.data, fmt), 8) >= 36


@pytest.mark.parametrize(("fmt", "marker", "precision"), [(GREY_12, 0xC1, 12), (GREY_8, 0xC0, 8)])
def test_jpeg_extended_sof(fmt: FrameFormat, marker: int, precision: int) -> None:
    _, frame, _ = encode(fmt, JPEGExtended12Bit)
    sof = segment(frame, marker)  # SOF1 (extended, Huffman) for 12 bits; 8 bits come out as SOF0
    assert sof[0] == precision and sof[5] == 1


def cod(frame: bytes) -> bytes:
    return segment(frame, 0x52)  # Scod, SGcod (progression, layers, MCT), SPcod (levels, ..., transform)


@pytest.mark.parametrize(
    ("uid", "fmt", "ssiz"),
    [
        (JPEG2000, GREY_12, 0x0B),
        (JPEG2000, SIGNED_12, 0x8B),
        (JPEG2000, GREY_8, 0x07),
        (HTJ2K, GREY_12, 0x0B),
        (HTJ2K, SIGNED_12, 0x8B),
        (HTJ2K, GREY_16, 0x0F),
        (HTJ2K, SIGNED_16, 0x8F),
        (HTJ2K, GREY_8, 0x07),
    ],
)
def test_irreversible_j2k_precision_and_transform(uid: str, fmt: FrameFormat, ssiz: int) -> None:
    _, frame, _ = encode(fmt, uid)
    assert frame[:4] == b"\xff\x4f\xff\x51"
    assert segment(frame, 0x51)[36] == ssiz  # SIZ: Ssiz of component 0 (bit 7 signed, precision - 1)
    assert cod(frame)[4] == 0  # no MCT for one component
    assert cod(frame)[9] == 0  # wavelet transform 0: irreversible 9/7 (1 would be reversible 5/3)


@pytest.mark.parametrize("uid", [JPEG2000, HTJ2K])
def test_irreversible_j2k_colour_is_ict(uid: str) -> None:
    _, frame, encoded_fmt = encode(RGB_8, uid)
    assert encoded_fmt.photometric_interpretation == "YBR_ICT"
    assert cod(frame)[4] == 1 and cod(frame)[9] == 0  # MCT with the 9/7 wavelet: the ICT


@pytest.mark.parametrize(("shape", "value"), [((8, 8), 1000), ((3, 5), 4095), ((16, 16), 4095)])
def test_jpeg2000_flat_small_frame_keeps_its_quality(shape: tuple[int, int], value: int) -> None:
    # OpenJPEG's PSNR rate allocation gives these 18-25 dB; the encoder re-encodes them.
    fmt = FrameFormat(shape[0], shape[1], 1, 16, 12, 0, "MONOCHROME2", 0)
    values = np.full(shape, value, np.int64)
    frame = encode_native_frame(native_bytes(values, fmt), JPEG2000, fmt)
    decoded = as_values(decode_to_native(frame, JPEG2000, fmt).data, fmt)
    assert psnr(values, decoded, 12) >= 44


def test_jpegxl_lossy_is_a_bare_vardct_codestream() -> None:
    values, frame, _ = encode(GREY_12, JPEGXL)
    assert frame[:2] == b"\xff\x0a"
    decoded = imagecodecs.jpegxl_decode(frame)
    assert decoded.dtype == np.uint16 and int(decoded.max()) <= 4095  # Bits Stored is the bit depth
    lossless = encode_native_frame(native_bytes(values, GREY_12), "1.2.840.10008.1.2.4.110", GREY_12)
    assert len(frame) * 4 < len(lossless)


def test_planar_input_encodes_like_interleaved_input() -> None:
    values = smooth_frame(RGB_8, seed=9)
    interleaved = encode_native_frame(native_bytes(values, RGB_8), JPEGBaseline8Bit, RGB_8)
    planar = encode_native_frame(native_bytes(values, RGB_8_PLANAR, planar=1), JPEGBaseline8Bit, RGB_8_PLANAR)
    assert planar == interleaved


# --- the tables ---------------------------------------------------------------------------------------

PALETTE = mono(8, 8, photometric="PALETTE COLOR")
YBR_FULL = colour("YBR_FULL")
GREY_10 = mono(16, 10)
GREY_9 = mono(16, 9)
GREY_7 = mono(8, 7)
SIGNED_8 = mono(8, 8, signed=True)
RGB_16 = FrameFormat(96, 80, 3, 16, 16, 0, "RGB", 0)

REFUSED = [
    (JPEGBaseline8Bit, GREY_12, "12-bit: never cut to 8"),
    (JPEGBaseline8Bit, GREY_16, "16-bit"),
    (JPEGBaseline8Bit, GREY_7, "the decoder clips at 255, not 127"),
    (JPEGBaseline8Bit, SIGNED_8, "signed"),
    (JPEGBaseline8Bit, PALETTE, "palette indices"),
    (JPEGBaseline8Bit, RGB_16, "16-bit colour"),
    (JPEGExtended12Bit, RGB_8, "greyscale only"),
    (JPEGExtended12Bit, GREY_16, "16 bits stored"),
    (JPEGExtended12Bit, GREY_10, "the decoder clips at 4095, not 1023"),
    (JPEGExtended12Bit, SIGNED_12, "signed"),
    (JPEGExtended12Bit, PALETTE, "palette indices"),
    (JPEGLSNearLossless, PALETTE, "palette indices"),
    (JPEGLSNearLossless, colour("YBR_FULL", allocated=16), "YBR_FULL: 8-bit only"),
    (JPEG2000, PALETTE, "palette indices"),
    (JPEG2000, YBR_FULL, "the ICT wants RGB"),
    (HTJ2K, GREY_9, "9 bits: 7 more guard bits than QCD holds"),
    (HTJ2K, PALETTE, "palette indices"),
    (HTJ2K, YBR_FULL, "the ICT wants RGB"),
    (JPEGXL, SIGNED_16, "imagecodecs' libjxl takes no int16"),
    (JPEGXL, YBR_FULL, "XYB wants RGB"),
    (JPEGXL, PALETTE, "palette indices"),
    ("1.2.840.10008.1.2.4.111", GREY_8, "JPEG XL JPEG recompression needs a JPEG"),
    (JPEG2000MC, GREY_8, "JPEG 2000 Part 2"),
]


@pytest.mark.parametrize(("uid", "fmt", "why"), REFUSED, ids=[f"{uid}-{why}" for uid, _, why in REFUSED])
def test_refused_layouts(uid: str, fmt: FrameFormat, why: str) -> None:  # noqa: ARG001 (`why` names the case)
    assert not can_encode(uid, fmt)
    with pytest.raises(FrameEncodeError, match=r"1\.2\.[0-9.]+"):
        encode_native_frame(native_bytes(smooth_frame(fmt), fmt), uid, fmt)
    with pytest.raises(FrameEncodeError):
        encoded_photometric(uid, fmt)


def test_refusals_name_their_reason() -> None:
    with pytest.raises(FrameEncodeError, match="existing JPEG bitstream"):
        encode_native_frame(bytes(GREY_8.frame_bytes), "1.2.840.10008.1.2.4.111", GREY_8)
    with pytest.raises(FrameEncodeError, match="Part 2"):
        encode_native_frame(bytes(GREY_8.frame_bytes), JPEG2000MCLossless, GREY_8)


def test_encodes_lossy_and_lossy_method() -> None:
    methods = {
        JPEGBaseline8Bit: "ISO_10918_1",
        JPEGExtended12Bit: "ISO_10918_1",
        JPEGLSNearLossless: "ISO_14495_1",
        JPEG2000: "ISO_15444_1",
        HTJ2K: "ISO_15444_15",
        JPEGXL: "ISO_18181_1",
    }
    lossless = [
        "1.2.840.10008.1.2.8.1",
        RLELossless,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEG2000Lossless,
        HTJ2KLossless,
        HTJ2KLosslessRPCL,
        "1.2.840.10008.1.2.4.110",
    ]
    no_encoder = ["1.2.840.10008.1.2.4.111", JPEG2000MC, ExplicitVRLittleEndian, "1.2.3.4"]
    for uid, method in methods.items():
        assert encodes_lossy(uid) and lossy_method(uid) == method
    for uid in lossless + no_encoder:
        assert not encodes_lossy(uid) and lossy_method(uid) is None
    for uid in lossless:  # what they promise: a bit-exact round trip
        values = smooth_frame(GREY_16, seed=4)
        frame = encode_native_frame(native_bytes(values, GREY_16), uid, GREY_16)
        assert decode_to_native(frame, uid, GREY_16).data == native_bytes(values, GREY_16)


@pytest.mark.parametrize(
    ("uid", "fmt", "expected"),
    [
        (JPEGBaseline8Bit, RGB_8, ("YBR_FULL_422", 0)),
        (JPEGBaseline8Bit, RGB_8_PLANAR, ("YBR_FULL_422", 0)),
        (JPEGBaseline8Bit, YBR_FULL, ("YBR_FULL_422", 0)),
        (JPEGBaseline8Bit, GREY_8_INVERTED, ("MONOCHROME1", 0)),
        (JPEGExtended12Bit, GREY_12, ("MONOCHROME2", 0)),
        (JPEGLossless, RGB_8_PLANAR, ("RGB", 0)),
        (JPEGLosslessSV1, PALETTE, ("PALETTE COLOR", 0)),  # lossless: indices are fine
        (JPEGLSNearLossless, RGB_8_PLANAR, ("RGB", 0)),
        (JPEGLSNearLossless, YBR_FULL, ("YBR_FULL", 0)),  # no colour transform
        (JPEG2000, RGB_8_PLANAR, ("YBR_ICT", 0)),
        (JPEG2000, GREY_16, ("MONOCHROME2", 0)),
        (HTJ2K, RGB_8, ("YBR_ICT", 0)),
        (JPEGXL, RGB_8_PLANAR, ("RGB", 0)),
        (JPEG2000Lossless, RGB_8_PLANAR, ("RGB", 0)),  # no MCT: RGB stays
        (HTJ2KLosslessRPCL, RGB_8_PLANAR, ("RGB", 0)),
        (RLELossless, YBR_FULL, ("YBR_FULL", 0)),
        ("1.2.840.10008.1.2.8.1", RGB_8_PLANAR, ("RGB", 1)),  # deflate keeps the bytes as they are
        ("1.2.840.10008.1.2.8.1", colour("YBR_FULL_422"), ("YBR_FULL_422", 0)),
    ],
)
def test_encoded_photometric(uid: str, fmt: FrameFormat, expected: tuple[str, int]) -> None:
    assert encoded_photometric(uid, fmt) == expected
