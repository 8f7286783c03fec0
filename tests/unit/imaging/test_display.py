"""The display pipeline of `app.imaging.display` against expectations computed here, independently.

Every expected image is built with numpy from the standard's own formulas (PS3.3 C.11.1 Modality LUT,
C.11.2.1.2 window functions, C.7.6.3.1.5 palettes, C.7.9.2 segmented palettes, C.7.6.3.1.2 YBR_FULL),
never with the module's helpers. A few renders of pydicom's test files are written as PNG under
test-artifacts/render/ for a person to look at.
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filereader import dcmread
from pydicom.pixels.processing import apply_color_lut, convert_color_space
from pydicom.pixels.utils import pixel_array
from pydicom.sequence import Sequence

from app.imaging.display import (
    THUMBNAIL_SIZE,
    FramePixels,
    ImageFormat,
    Rendered,
    RenderOptions,
    Viewport,
    Window,
    WindowShape,
    encode_image,
    frame_samples,
    render_frame,
    srgb_profile,
)

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "render"
RNG_SEED = 20240611


# --- Building frames and data sets ---


def grey_frame(
    values: np.ndarray,
    *,
    bits_allocated: int = 16,
    bits_stored: int = 16,
    signed: bool = False,
    photometric: str = "MONOCHROME2",
    raw: np.ndarray | None = None,
) -> FramePixels:
    """`values` as native little-endian bytes, back through `frame_samples` (`raw`: the stored words)."""
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")
    stored = np.asarray(values if raw is None else raw).astype(dtype)
    rows, columns = stored.shape
    return frame_samples(
        stored.tobytes(),
        rows=rows,
        columns=columns,
        samples_per_pixel=1,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_representation=int(signed),
        planar_configuration=0,
        photometric_interpretation=photometric,
    )


def colour_frame(samples: np.ndarray, photometric: str, *, planar: int = 0, bits: int = 8) -> FramePixels:
    rows, columns, _ = samples.shape
    dtype = np.dtype(f"<u{bits // 8}")
    data = samples.transpose(2, 0, 1) if planar else samples
    return frame_samples(
        np.ascontiguousarray(data).astype(dtype).tobytes(),
        rows=rows,
        columns=columns,
        samples_per_pixel=3,
        bits_allocated=bits,
        bits_stored=bits,
        pixel_representation=0,
        planar_configuration=planar,
        photometric_interpretation=photometric,
    )


def dataset(**attributes: object) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def render(frame: FramePixels, ds: Dataset | None = None, **options: object) -> Rendered:
    return render_frame(frame, ds if ds is not None else Dataset(), RenderOptions(**options))  # type: ignore[arg-type]


def pixels(rendered: Rendered) -> np.ndarray:
    return np.asarray(rendered.image).astype(np.int64)


def assert_pixels(actual: np.ndarray, expected: np.ndarray, tolerance: int = 0) -> None:
    """Pixel by pixel; `tolerance` levels of rounding allowed (float32 in the module, float64 here)."""
    assert actual.shape == expected.shape
    difference = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    worst = np.unravel_index(np.argmax(difference), difference.shape)
    assert difference.max() <= tolerance, (
        f"{np.count_nonzero(difference > tolerance)} pixels differ by more than {tolerance}; "
        f"at {worst}: {actual[worst]} (expected {expected[worst]})"
    )


# --- The window functions of PS3.3 C.11.2.1.2, to 8 bits (ymin 0, ymax 255) ---


def linear(x: np.ndarray, center: float, width: float, top: float = 255.0) -> np.ndarray:
    """C.11.2.1.2.1 (LINEAR), with its half-pixel offsets."""
    x = np.asarray(x, np.float64)
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    # width 1: a threshold, the ramp between `low` and `high` is empty
    middle = ((x - (center - 0.5)) / (width - 1) + 0.5) * top if width > 1 else np.zeros_like(x)
    return np.rint(np.where(x <= low, 0.0, np.where(x > high, top, middle)))


def linear_exact(x: np.ndarray, center: float, width: float, top: float = 255.0) -> np.ndarray:
    """C.11.2.1.3.2 (LINEAR_EXACT)."""
    x = np.asarray(x, np.float64)
    ramp = ((x - center) / width + 0.5) * top
    return np.rint(np.where(x <= center - width / 2, 0.0, np.where(x > center + width / 2, top, ramp)))


def sigmoid(x: np.ndarray, center: float, width: float, top: float = 255.0) -> np.ndarray:
    """C.11.2.1.3.1 (SIGMOID)."""
    x = np.asarray(x, np.float64)
    return np.rint(top / (1.0 + np.exp(-4.0 * (x - center) / width)))


def ramp(rows: int, columns: int, low: int, high: int) -> np.ndarray:
    return np.linspace(low, high, rows * columns).round().astype(np.int64).reshape(rows, columns)


# --- Native bytes to samples ---


def test_signed_samples_with_garbage_in_the_high_bits_are_sign_extended() -> None:
    rng = np.random.default_rng(RNG_SEED)
    values = rng.integers(-2048, 2048, size=(6, 7))
    garbage = rng.integers(0, 16, size=values.shape) << 12  # bits 12-15 hold anything (PS3.5 8.1.1)
    words = ((values & 0x0FFF) | garbage).astype(np.uint16)

    frame = grey_frame(values, bits_stored=12, signed=True, raw=words.view(np.int16))

    assert frame.samples.tolist() == values.tolist()
    rendered = render(frame, dataset(WindowCenter=0, WindowWidth=4096))
    assert_pixels(pixels(rendered), linear(values, 0, 4096))


def test_unsigned_samples_with_garbage_in_the_high_bits_are_masked() -> None:
    rng = np.random.default_rng(RNG_SEED)
    values = rng.integers(0, 1024, size=(5, 5))
    words = values | (rng.integers(0, 64, size=values.shape) << 10)

    frame = grey_frame(values, bits_stored=10, raw=words)

    assert frame.samples.tolist() == values.tolist()


def test_one_bit_frames_unpack_little_endian_bit_order() -> None:
    rows, columns = 3, 5  # 15 bits: two bytes, the last bit unused
    bits = np.array([[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [1, 1, 1, 0, 1]], np.uint8)
    flat = [*bits.ravel().tolist(), 0]
    data = bytes(sum(bit << i for i, bit in enumerate(flat[start : start + 8])) for start in (0, 8))
    assert data == bytes([0b01011001, 0b01011100])  # first pixel in the least significant bit

    def one_bit(photometric: str) -> FramePixels:
        return frame_samples(
            data,
            rows=rows,
            columns=columns,
            samples_per_pixel=1,
            bits_allocated=1,
            bits_stored=1,
            pixel_representation=0,
            planar_configuration=0,
            photometric_interpretation=photometric,
        )

    frame = one_bit("MONOCHROME2")
    assert frame.samples.tolist() == bits.tolist()
    assert_pixels(pixels(render(frame)), bits * 255)
    assert_pixels(pixels(render(one_bit("MONOCHROME1"))), (1 - bits) * 255)


# --- Modality LUT ---


def test_rescale_then_the_first_of_several_dataset_windows() -> None:
    stored = ramp(16, 24, 0, 4095)
    ds = dataset(
        RescaleSlope=2,
        RescaleIntercept=-1024,
        WindowCenter=[40, 300],  # the first pair is the default (PS3.3 C.11.2.1.2)
        WindowWidth=[400, 1500],
        WindowCenterWidthExplanation=["SOFT", "BONE"],
    )

    rendered = render(grey_frame(stored, bits_stored=12), ds)

    assert rendered.window_source == "dataset"
    assert_pixels(pixels(rendered), linear(stored * 2.0 - 1024, 40, 400))


def test_modality_lut_sequence_then_request_window() -> None:
    lut = [(i * 37) % 4096 for i in range(64)]  # not monotonic: only a table lookup gets this right
    item = dataset(LUTDescriptor=[64, 100, 16], LUTData=lut, ModalityLUTType="HU")
    ds = dataset(ModalityLUTSequence=Sequence([item]))
    stored = ramp(10, 12, 90, 175)  # below the first mapped value and past the last entry too

    rendered = render(grey_frame(stored), ds, window=Window(2048, 4096, WindowShape.LINEAR_EXACT))

    modality = np.asarray(lut)[np.clip(stored - 100, 0, 63)]
    assert rendered.window_source == "request"
    assert_pixels(pixels(rendered), linear_exact(modality, 2048, 4096))


def test_modality_lut_sequence_with_ow_data_as_the_metadata_gives_it() -> None:
    """The rendered resource builds its data set with `Dataset.from_json` from stored metadata.

    LUT Data read from an Explicit VR file is OW; from DICOM JSON it comes back as bytes with no
    transfer syntax, so the table's byte order is the little-endian of PS3.18's bulk data.
    """
    lut = np.array([(i * 37) % 4096 for i in range(64)], "<u2")
    ds = Dataset.from_json(
        {
            "00283000": {  # ModalityLUTSequence
                "vr": "SQ",
                "Value": [
                    {
                        "00283002": {"vr": "US", "Value": [64, 100, 16]},  # LUTDescriptor
                        "00283006": {"vr": "OW", "InlineBinary": _base64(lut.tobytes())},  # LUTData
                    }
                ],
            }
        }
    )
    stored = ramp(8, 8, 90, 175)

    rendered = render(grey_frame(stored), ds, window=Window(2048, 4096, WindowShape.LINEAR_EXACT))

    assert_pixels(pixels(rendered), linear_exact(lut[np.clip(stored - 100, 0, 63)], 2048, 4096))


def test_voi_lut_sequence_with_ow_data_as_the_metadata_gives_it() -> None:
    lut = np.array([min(4095, (i * i) // 4) for i in range(128)], "<u2")
    ds = Dataset.from_json(
        {
            "00283010": {  # VOILUTSequence
                "vr": "SQ",
                "Value": [
                    {
                        "00283002": {"vr": "US", "Value": [128, 0, 12]},  # LUTDescriptor
                        "00283006": {"vr": "OW", "InlineBinary": _base64(lut.tobytes())},  # LUTData
                    }
                ],
            }
        }
    )
    stored = ramp(8, 8, 0, 200)

    rendered = render(grey_frame(stored), ds)

    assert_pixels(pixels(rendered), np.rint(lut[np.clip(stored, 0, 127)] / 4095 * 255))


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- VOI LUT ---


@pytest.mark.parametrize(
    ("function", "expected"),
    [("LINEAR_EXACT", linear_exact), ("SIGMOID", sigmoid), ("LINEAR", linear), ("UNKNOWN", linear)],
)
def test_voi_lut_function_of_the_data_set(function: str, expected: Callable[..., np.ndarray]) -> None:
    stored = ramp(20, 20, -1000, 1000)
    ds = dataset(WindowCenter="50.5", WindowWidth="350", VOILUTFunction=function)

    rendered = render(grey_frame(stored, signed=True), ds)

    assert_pixels(pixels(rendered), expected(stored, 50.5, 350))


@pytest.mark.parametrize("shape", list(WindowShape))
def test_request_window_overrides_the_data_set(shape: WindowShape) -> None:
    stored = ramp(9, 30, 0, 255)
    expected = {
        WindowShape.LINEAR: linear,
        WindowShape.LINEAR_EXACT: linear_exact,
        WindowShape.SIGMOID: sigmoid,
    }
    ds = dataset(WindowCenter=10, WindowWidth=5)

    rendered = render(grey_frame(stored, bits_allocated=8, bits_stored=8), ds, window=Window(128, 100, shape))

    assert rendered.window == Window(128, 100, shape)
    assert_pixels(pixels(rendered), expected[shape](stored, 128, 100), tolerance=1)  # x.5: float32 ties


def test_linear_window_of_width_one_is_a_threshold() -> None:
    """C.11.2.1.2.1 with w = 1: x <= c - 0.5 gives ymin, anything above gives ymax (no middle grey)."""
    stored = np.arange(96, 106).reshape(2, 5)

    rendered = render(grey_frame(stored), window=Window(100.5, 1, WindowShape.LINEAR))

    assert_pixels(pixels(rendered), np.where(stored <= 100, 0, 255))


def test_voi_lut_sequence_after_rescale() -> None:
    lut = [min(4095, (i * i) // 4) for i in range(128)]  # a curve, 12 bits per entry
    ds = dataset(
        RescaleSlope=1,
        RescaleIntercept=-64,
        VOILUTSequence=Sequence([dataset(LUTDescriptor=[128, -32, 12], LUTData=lut)]),
        WindowCenter=0,  # both present: the table is the one applied here
        WindowWidth=10,
    )
    stored = ramp(12, 16, 0, 255)

    rendered = render(grey_frame(stored), ds)

    modality = stored - 64
    entries = np.asarray(lut)[np.clip(modality - (-32), 0, 127)]
    assert rendered.window_source == "voi-lut"
    assert_pixels(pixels(rendered), np.rint(entries / 4095 * 255))


def test_monochrome1_is_inverted_after_the_window() -> None:
    stored = ramp(8, 32, 0, 1023)
    ds = dataset(WindowCenter=400, WindowWidth=600)

    rendered = render(grey_frame(stored, bits_stored=10, photometric="MONOCHROME1"), ds)

    x = stored.astype(np.float64)
    unit = np.clip(((x - 399.5) / 599 + 0.5), 0, 1)  # LINEAR, ymin 0 ymax 1
    assert_pixels(pixels(rendered), np.rint((1 - unit) * 255))


# --- The automatic window ---


def _percentile_window(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values.astype(np.float64), [0.5, 99.5])
    return (low + high) / 2, high - low


def test_automatic_window_is_the_middle_99_percent() -> None:
    rng = np.random.default_rng(RNG_SEED)
    stored = rng.normal(1000, 150, size=(64, 64)).round().clip(0, 4095).astype(np.int64)
    with_outlier = stored.copy()
    with_outlier[3, 5] = 4095  # a burned-in marker

    rendered = render(grey_frame(with_outlier, bits_stored=12))

    center, width = _percentile_window(with_outlier)
    assert rendered.window_source == "automatic"
    assert rendered.window is not None
    assert rendered.window.center == pytest.approx(center, abs=0.5)
    assert rendered.window.width == pytest.approx(width, abs=0.5)
    without = render(grey_frame(stored, bits_stored=12)).window
    assert without is not None
    assert rendered.window.width == pytest.approx(without.width, rel=0.02)  # the outlier hardly counts
    assert rendered.window.width < 0.5 * (with_outlier.max() - with_outlier.min())  # min/max would
    assert_pixels(pixels(rendered), linear_exact(with_outlier, center, width), tolerance=1)


def test_automatic_window_leaves_pixel_padding_out() -> None:
    stored = ramp(40, 40, -200, 300)
    stored[:, :15] = -2000  # the air around a CT, 37% of the frame
    ds = dataset(PixelPaddingValue=-2000, RescaleSlope=1, RescaleIntercept=0)

    rendered = render(grey_frame(stored, signed=True), ds)

    center, width = _percentile_window(stored[:, 15:])
    assert rendered.window is not None
    assert rendered.window.center == pytest.approx(center, abs=0.5)
    assert rendered.window.width == pytest.approx(width, abs=0.5)


def test_automatic_window_of_a_flat_frame_does_not_divide_by_zero() -> None:
    rendered = render(grey_frame(np.full((4, 4), 700)))

    assert rendered.window is not None and rendered.window.width > 0
    assert len(np.unique(pixels(rendered))) == 1


# --- Enhanced multi-frame functional groups ---


def test_enhanced_functional_groups_shared_then_the_frames_own() -> None:
    shared = dataset(
        PixelValueTransformationSequence=Sequence(
            [dataset(RescaleSlope=0.5, RescaleIntercept=-100, RescaleType="US")]
        ),
        FrameVOILUTSequence=Sequence([dataset(WindowCenter=900, WindowWidth=50)]),
    )
    own = dataset(FrameVOILUTSequence=Sequence([dataset(WindowCenter=[300, 10], WindowWidth=[500, 20])]))
    ds = dataset(
        SharedFunctionalGroupsSequence=Sequence([shared]),
        PerFrameFunctionalGroupsSequence=Sequence([own]),  # narrowed to this frame's item by the caller
    )
    stored = ramp(10, 10, 0, 2000)

    rendered = render_frame(grey_frame(stored), ds, RenderOptions(), frame_number=7)

    assert rendered.window == Window(300, 500, WindowShape.LINEAR)
    assert_pixels(pixels(rendered), linear(stored * 0.5 - 100, 300, 500))


def test_enhanced_functional_groups_shared_only() -> None:
    shared = dataset(
        PixelValueTransformationSequence=Sequence([dataset(RescaleSlope=1, RescaleIntercept=1000)]),
        FrameVOILUTSequence=Sequence(
            [dataset(WindowCenter=1100, WindowWidth=200, VOILUTFunction="LINEAR_EXACT")]
        ),
    )
    ds = dataset(SharedFunctionalGroupsSequence=Sequence([shared]))
    stored = ramp(10, 10, 0, 255)

    rendered = render(grey_frame(stored), ds)

    assert_pixels(pixels(rendered), linear_exact(stored + 1000.0, 1100, 200))


# --- Colour ---


def test_palette_color_16_bit_table() -> None:
    red = np.array([0, 65535, 32768, 1000], "<u2")
    green = np.array([65535, 0, 0, 20000], "<u2")
    blue = np.array([0, 0, 65535, 300], "<u2")
    ds = dataset(
        RedPaletteColorLookupTableDescriptor=[4, 10, 16],
        GreenPaletteColorLookupTableDescriptor=[4, 10, 16],
        BluePaletteColorLookupTableDescriptor=[4, 10, 16],
        RedPaletteColorLookupTableData=red.tobytes(),
        GreenPaletteColorLookupTableData=green.tobytes(),
        BluePaletteColorLookupTableData=blue.tobytes(),
    )
    stored = np.array([[8, 10, 11], [12, 13, 40]])  # below the first mapped value, each entry, past the end

    rendered = render(grey_frame(stored, photometric="PALETTE COLOR"), ds)

    index = np.clip(stored - 10, 0, 3)
    expected = np.stack([red[index], green[index], blue[index]], axis=-1) * 255.0 / 65535
    assert rendered.image.mode == "RGB"
    assert_pixels(pixels(rendered), np.rint(expected))


def test_palette_color_16_bit_table_in_a_dark_frame() -> None:
    """16 bits per entry (descriptor's third value) means 65535 is full scale, whatever this frame uses.

    A frame whose pixels only reach the darkest entries must stay dark: entry 200 of 65535 is 8-bit 1.
    """
    table = np.array([0, 100, 200, 65535], "<u2")
    ds = dataset(
        **{f"{colour}PaletteColorLookupTableDescriptor": [4, 0, 16] for colour in ("Red", "Green", "Blue")},
        **{f"{colour}PaletteColorLookupTableData": table.tobytes() for colour in ("Red", "Green", "Blue")},
    )
    stored = np.array([[0, 1], [2, 1]])

    rendered = render(grey_frame(stored, bits_allocated=8, bits_stored=8, photometric="PALETTE COLOR"), ds)

    grey = np.rint(table[stored] * 255.0 / 65535)
    assert_pixels(pixels(rendered), np.stack([grey] * 3, axis=-1))


def _segmented(*segments: tuple[int, ...]) -> bytes:
    words = [value for segment in segments for value in segment]
    return struct.pack(f"<{len(words)}H", *words)


# PS3.3 C.7.9.2: opcode 0 (discrete: length, then that many values), opcode 1 (linear: length, then
# the end value y1; `length` entries step from the previous last value to y1, the last one is y1).
RED_SEGMENTS = ((0, 2, 0, 4000), (1, 4, 20000), (0, 1, 65535), (1, 2, 65535))
GREEN_SEGMENTS = ((0, 1, 65535), (1, 8, 0))
BLUE_SEGMENTS = ((0, 3, 100, 200, 300), (1, 6, 60300))


def _expanded(segments: tuple[tuple[int, ...], ...]) -> np.ndarray:
    table: list[float] = []
    for opcode, length, *rest in segments:
        if opcode == 0:
            table += rest
        else:
            y0, y1 = table[-1], rest[0]
            table += [y0 + (y1 - y0) * (i + 1) / length for i in range(length)]
    return np.asarray(table)


def test_segmented_expected_tables_are_what_the_standard_says() -> None:
    assert _expanded(RED_SEGMENTS).tolist() == [0, 4000, 8000, 12000, 16000, 20000, 65535, 65535, 65535]
    assert _expanded(GREEN_SEGMENTS).tolist()[:3] == [65535, 57343.125, 49151.25]
    assert len(_expanded(BLUE_SEGMENTS)) == len(_expanded(GREEN_SEGMENTS)) == 9


def _segmented_json() -> dict[str, dict[str, object]]:
    """Palette attributes as the stored metadata has them (0028,1101-1103 and 0028,1221-1223)."""
    attributes: dict[str, dict[str, object]] = {"00280004": {"vr": "CS", "Value": ["PALETTE COLOR"]}}
    for n, segments in enumerate((RED_SEGMENTS, GREEN_SEGMENTS, BLUE_SEGMENTS)):
        attributes[f"0028110{n + 1}"] = {"vr": "US", "Value": [9, 0, 16]}
        attributes[f"0028122{n + 1}"] = {"vr": "OW", "InlineBinary": _base64(_segmented(*segments))}
    return attributes


@pytest.mark.parametrize("encoding", ["little endian, as read from a file", "none, as from DICOM JSON"])
def test_segmented_palette_color(encoding: str) -> None:
    ds = Dataset.from_json(_segmented_json())
    if encoding.startswith("little"):
        ds.set_original_encoding(is_implicit_vr=False, is_little_endian=True)
    stored = np.arange(12).reshape(3, 4)  # 9..11 are past the last entry

    rendered = render(grey_frame(stored, photometric="PALETTE COLOR"), ds)

    index = np.clip(stored, 0, 8)
    tables = [_expanded(s) for s in (RED_SEGMENTS, GREEN_SEGMENTS, BLUE_SEGMENTS)]
    expected = np.stack([np.rint(t)[index] for t in tables], axis=-1) * 255.0 / 65535
    assert_pixels(pixels(rendered), np.rint(expected), tolerance=1)


def _ybr_to_rgb(ybr: np.ndarray) -> np.ndarray:
    """PS3.3 C.7.6.3.1.2's YBR_FULL equations, inverted (ITU-R BT.601 full range)."""
    y, cb, cr = (ybr[..., i].astype(np.float64) for i in range(3))
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return np.rint(np.stack([r, g, b], axis=-1)).clip(0, 255)


@pytest.mark.parametrize("planar", [0, 1])
def test_ybr_full_to_rgb(planar: int) -> None:
    rng = np.random.default_rng(RNG_SEED)
    ybr = rng.integers(0, 256, size=(12, 10, 3))
    ybr[0, :3] = [[0, 128, 128], [255, 128, 128], [128, 128, 128]]  # black, white, grey

    rendered = render(colour_frame(ybr, "YBR_FULL", planar=planar))

    assert rendered.image.mode == "RGB"
    assert pixels(rendered)[0, :3].tolist() == [[0, 0, 0], [255, 255, 255], [128, 128, 128]]
    assert_pixels(pixels(rendered), _ybr_to_rgb(ybr), tolerance=1)


def test_ybr_full_422_native_bytes() -> None:
    rng = np.random.default_rng(RNG_SEED)
    rows, columns = 4, 6
    luma = rng.integers(0, 256, size=(rows, columns))
    cb, cr = rng.integers(0, 256, size=(2, rows, columns // 2))
    data = bytes(
        value
        for r in range(rows)
        for pair in range(columns // 2)
        for value in (luma[r, 2 * pair], luma[r, 2 * pair + 1], cb[r, pair], cr[r, pair])
    )
    frame = frame_samples(
        data,
        rows=rows,
        columns=columns,
        samples_per_pixel=3,
        bits_allocated=8,
        bits_stored=8,
        pixel_representation=0,
        planar_configuration=0,
        photometric_interpretation="YBR_FULL_422",
    )

    full = np.stack([luma, np.repeat(cb, 2, axis=1), np.repeat(cr, 2, axis=1)], axis=-1)
    assert frame.samples.tolist() == full.tolist()
    assert_pixels(pixels(render(frame)), _ybr_to_rgb(full), tolerance=1)


def test_rgb_8_and_16_bits() -> None:
    rng = np.random.default_rng(RNG_SEED)
    rgb = rng.integers(0, 256, size=(5, 7, 3))
    assert_pixels(pixels(render(colour_frame(rgb, "RGB", planar=1))), rgb)

    deep = rng.integers(0, 65536, size=(5, 7, 3))
    assert_pixels(pixels(render(colour_frame(deep, "RGB", bits=16))), np.rint(deep * 255.0 / 65535))


# --- Viewport ---


def _labelled_rgb(rows: int, columns: int) -> np.ndarray:
    """Every pixel different (up to 40 columns, 20 rows): red counts columns, green rows."""
    r, c = np.mgrid[0:rows, 0:columns]
    return np.stack([c * 6, r * 12, np.full_like(r, 77)], axis=-1)


def test_viewport_keeps_the_aspect_ratio() -> None:
    frame = colour_frame(_labelled_rgb(20, 40), "RGB")

    assert render(frame, viewport=Viewport(10, 10)).image.size == (10, 5)
    assert render(frame, viewport=Viewport(100, 4)).image.size == (8, 4)


def test_viewport_larger_than_the_image_scales_it_up_to_fit() -> None:
    frame = colour_frame(_labelled_rgb(20, 40), "RGB")

    rendered = render(frame, viewport=Viewport(400, 400))

    assert rendered.image.size == (400, 200)
    assert_pixels(pixels(rendered)[5::10, 5::10], _labelled_rgb(20, 40), tolerance=3)  # block centres
    assert render(frame, viewport=Viewport(40, 20)).image.size == (40, 20)
    assert_pixels(pixels(render(frame, viewport=Viewport(40, 20))), _labelled_rgb(20, 40))


def test_thumbnail_is_128_pixels_on_the_longest_side() -> None:
    stored = np.zeros((400, 600), np.int64)
    stored[:, 300:] = 1000

    rendered = render(grey_frame(stored), dataset(WindowCenter=500, WindowWidth=1000), thumbnail=True)

    assert THUMBNAIL_SIZE == 128
    assert rendered.image.size == (128, 85)
    thumb = pixels(rendered)
    assert thumb[:, :60].max() <= 1 and thumb[:, 68:].min() >= 254  # away from the edge, still exact
    small = render(colour_frame(_labelled_rgb(20, 40), "RGB"), thumbnail=True)
    assert small.image.size == (40, 20)


def test_viewport_source_region_is_cut_in_source_pixels() -> None:
    labelled = _labelled_rgb(8, 10)

    rendered = render(colour_frame(labelled, "RGB"), viewport=Viewport(4, 3, (2, 1, 4, 3)))

    assert_pixels(pixels(rendered), labelled[1:4, 2:6])


def test_viewport_negative_region_size_flips() -> None:
    labelled = _labelled_rgb(8, 10)
    frame = colour_frame(labelled, "RGB")

    both = render(frame, viewport=Viewport(4, 3, (6, 4, -4, -3)))
    across = render(frame, viewport=Viewport(4, 3, (6, 1, -4, 3)))

    assert_pixels(pixels(both), labelled[1:4, 2:6][::-1, ::-1])
    assert_pixels(pixels(across), labelled[1:4, 2:6][:, ::-1])


def test_viewport_region_then_scaled_to_the_viewport() -> None:
    stored = np.zeros((64, 64), np.int64)
    stored[16:48, 16:48] = 255

    rendered = render(
        grey_frame(stored, bits_allocated=8, bits_stored=8),
        dataset(WindowCenter=128, WindowWidth=256),
        viewport=Viewport(8, 8, (16, 16, 32, 32)),
    )

    assert rendered.image.size == (8, 8)
    assert pixels(rendered).min() >= 254


# --- Encoding ---


def test_png_of_a_deep_grey_frame_has_16_bits() -> None:
    stored = ramp(16, 16, 0, 4095)
    ds = dataset(WindowCenter=2048, WindowWidth=4096, VOILUTFunction="LINEAR_EXACT")

    rendered = render(grey_frame(stored, bits_stored=12), ds, image_format=ImageFormat.PNG)

    unit = np.clip((stored - 2048) / 4096 + 0.5, 0, 1)
    assert rendered.image.mode == "I;16"
    assert_pixels(np.asarray(rendered.image), np.rint(unit * 65535), tolerance=1)  # x.5: float32 ties
    body = encode_image([rendered.image], RenderOptions(image_format=ImageFormat.PNG))
    decoded = Image.open(io.BytesIO(body))
    assert decoded.format == "PNG"
    assert np.array_equal(np.asarray(decoded), np.asarray(rendered.image))
    assert render(grey_frame(stored, bits_stored=12), ds).image.mode == "L"  # JPEG: 8 bits
    eight = grey_frame(stored // 16, bits_allocated=8, bits_stored=8)
    assert render(eight, ds, image_format=ImageFormat.PNG).image.mode == "L"


def test_png_of_a_deep_grey_frame_scaled_to_a_viewport() -> None:
    stored = ramp(64, 64, 0, 4095)

    frame = grey_frame(stored, bits_stored=12)

    rendered = render(frame, image_format=ImageFormat.PNG, viewport=Viewport(16, 16))

    assert rendered.image.size == (16, 16)
    assert rendered.image.mode == "I;16"
    assert np.asarray(rendered.image).max() > 60000


def test_gif_of_several_frames_is_animated() -> None:
    frames = [Image.fromarray(np.full((6, 8), level, np.uint8), "L") for level in (0, 128, 255)]

    body = encode_image(frames, RenderOptions(image_format=ImageFormat.GIF))

    gif = Image.open(io.BytesIO(body))
    assert gif.format == "GIF"
    assert getattr(gif, "n_frames", 1) == 3 and getattr(gif, "is_animated", False)
    for number, level in enumerate((0, 128, 255)):
        gif.seek(number)
        assert np.unique(np.asarray(gif.convert("L"))).tolist() == [level]


def test_jpeg_quality_is_honoured() -> None:
    y, x = np.mgrid[0:128, 0:128]
    rng = np.random.default_rng(RNG_SEED)
    picture = (127 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0) + rng.normal(0, 6, (128, 128))).clip(0, 255)
    image = Image.fromarray(picture.astype(np.uint8), "L")

    fine = encode_image([image], RenderOptions(quality=95))
    coarse = encode_image([image], RenderOptions(quality=10))

    assert len(coarse) < len(fine) / 2
    for body, limit in ((fine, 3.0), (coarse, 12.0)):
        decoded = np.asarray(Image.open(io.BytesIO(body))).astype(np.float64)
        assert np.abs(decoded - picture.astype(np.uint8)).mean() < limit


def test_annotations_only_when_asked_and_only_in_the_top_left_band() -> None:
    stored = np.full((128, 160), 500)
    ds = dataset(
        WindowCenter=500,
        WindowWidth=1000,
        PatientName="Doe^Jane",
        PatientID="PID-42",
        StudyDate="20240611",
        Modality="CT",
    )
    frame = grey_frame(stored, bits_stored=12)

    plain = pixels(render(frame, ds))
    annotated = render(frame, ds, annotations=("patient", "technique"), image_format=ImageFormat.PNG)

    differs = np.argwhere(pixels(annotated) != plain)
    assert differs.size, "annotations were asked for and nothing was drawn"
    assert differs[:, 0].max() < 52 and differs[:, 1].max() < 160
    assert annotated.image.mode == "L"
    assert_pixels(pixels(annotated)[52:], plain[52:])
    assert_pixels(plain, linear(stored, 500, 1000))


def test_srgb_profile_is_embedded_in_rgb_jpeg_and_png() -> None:
    profile = srgb_profile()
    image = Image.fromarray(_labelled_rgb(8, 8).astype(np.uint8), "RGB")

    assert profile == srgb_profile() and len(profile) > 128
    assert profile[36:40] == b"acsp"  # an ICC profile's signature
    for image_format in (ImageFormat.JPEG, ImageFormat.PNG):
        body = encode_image([image], RenderOptions(image_format=image_format), profile)
        assert Image.open(io.BytesIO(body)).info["icc_profile"] == profile
    without = encode_image([image], RenderOptions())
    assert "icc_profile" not in Image.open(io.BytesIO(without)).info


# --- pydicom's test files, written as PNG for a person to look at ---


def _test_file(name: str) -> Dataset:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not among pydicom's local test files")
    return dcmread(path)


def _native_frame(ds: Dataset) -> FramePixels:
    return frame_samples(
        ds.PixelData,
        rows=ds.Rows,
        columns=ds.Columns,
        samples_per_pixel=ds.SamplesPerPixel,
        bits_allocated=ds.BitsAllocated,
        bits_stored=ds.BitsStored,
        pixel_representation=ds.PixelRepresentation,
        planar_configuration=ds.get("PlanarConfiguration", 0),
        photometric_interpretation=ds.PhotometricInterpretation,
    )


def _artifact(rendered: Rendered, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rendered.image.save(ARTIFACTS / name)


def test_ct_small_with_its_automatic_window() -> None:
    ds = _test_file("CT_small.dcm")
    assert "WindowCenter" not in ds  # so the automatic window it is, with Pixel Padding Value left out

    rendered = render(_native_frame(ds), ds)
    _artifact(rendered, "ct_small_automatic.png")

    hounsfield = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    padding = float(ds.PixelPaddingValue) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    center, width = _percentile_window(hounsfield[hounsfield != padding])
    assert rendered.window_source == "automatic"
    assert rendered.window is not None
    assert rendered.window.center == pytest.approx(center, abs=0.5)
    assert rendered.window.width == pytest.approx(width, abs=0.5)
    assert_pixels(pixels(rendered), linear_exact(hounsfield, center, width), tolerance=1)

    soft = render(_native_frame(ds), ds, window=Window(40, 400, WindowShape.LINEAR))
    _artifact(soft, "ct_small_window_40_400.png")
    assert_pixels(pixels(soft), linear(hounsfield, 40, 400))
    _artifact(render(_native_frame(ds), ds, thumbnail=True), "ct_small_thumbnail.png")


def test_ct_small_as_monochrome1() -> None:
    """pydicom's local test files hold no MONOCHROME1 image: CT_small's values, declared MONOCHROME1."""
    ds = _test_file("CT_small.dcm")
    frame = _native_frame(ds)
    inverted = FramePixels(frame.samples, "MONOCHROME1", frame.bits_stored)
    window = Window(40, 400, WindowShape.LINEAR)

    rendered = render(inverted, ds, window=window)
    _artifact(rendered, "ct_small_as_monochrome1.png")

    hounsfield = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert_pixels(pixels(rendered), 255 - linear(hounsfield, 40, 400), tolerance=1)


def test_palette_file_matches_pydicoms_lookup() -> None:
    ds = _test_file("examples_palette.dcm")

    rendered = render(_native_frame(ds), ds)
    _artifact(rendered, "examples_palette.png")

    bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    expected = np.rint(apply_color_lut(ds.pixel_array, ds) * 255.0 / ((1 << bits) - 1))
    assert_pixels(pixels(rendered), expected)


def test_ybr_full_422_file_matches_pydicoms_conversion() -> None:
    ds = _test_file("SC_ybr_full_422_uncompressed.dcm")

    rendered = render(_native_frame(ds), ds)
    _artifact(rendered, "sc_ybr_full_422.png")

    ybr = pixel_array(ds, as_rgb=False)
    assert_pixels(pixels(rendered), convert_color_space(ybr, "YBR_FULL", "RGB"), tolerance=1)
    assert_pixels(pixels(rendered), _ybr_to_rgb(ybr), tolerance=1)


def test_rgb_file_is_shown_as_stored() -> None:
    ds = _test_file("examples_rgb_color.dcm")

    rendered = render(_native_frame(ds), ds, viewport=Viewport(160, 160))
    _artifact(rendered, "examples_rgb_color_160.png")

    assert rendered.image.size == (160, 120)
    full = render(_native_frame(ds), ds)
    assert_pixels(pixels(full), ds.pixel_array)
