"""Rendered and thumbnail resources against a live server (PS3.18 10.4.1.1.3, 8.3.5).

Expected images are computed here with numpy from the stored pixels and the standard's formulas
(PS3.3 C.11.2.1.2 windows, C.7.6.3 colour), never with Fovea's own code; lossless outputs (PNG) must
match to within one grey level (float rounding). A few renders are written to test-artifacts/rendered/
for a person to look at.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from PIL.GifImagePlugin import GifImageFile
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import LiveServer
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import post_stow

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "rendered"


def _store(server: LiveServer, ds: Dataset) -> str:
    """Store `ds`; its instance URL."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert post_stow(server, [buffer.getvalue()]).status_code == 200
    return (
        f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params=params, timeout=60)


def _image(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _save_artifact(name: str, response: httpx.Response) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(response.content)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 LINEAR, to 0..1."""
    out = (values - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(out, 0.0, 1.0)


def _ct(rows: int = 64, columns: int = 48, **attributes: object) -> Dataset:
    ds = pydicom.dcmread(io.BytesIO(make_instance(rows=rows, columns=columns, seed=7)))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_ct_window_from_the_data_set_as_16_bit_png(live_server: LiveServer) -> None:
    ds = _ct(
        RescaleSlope="1", RescaleIntercept="-1024", WindowCenter=["40", "600"], WindowWidth=["400", "2000"]
    )
    url = _store(live_server, ds)

    response = _get(f"{url}/rendered", accept="image/png")

    rendered = _image(response)
    assert rendered.dtype == np.uint16  # a 16-bit frame renders to a 16-bit grey PNG
    hounsfield = ds.pixel_array.astype(np.float64) - 1024
    expected = np.rint(_linear_window(hounsfield, 40, 400) * 65535)  # the first window pair
    assert np.abs(rendered.astype(np.int64) - expected).max() <= 1
    assert response.headers["fovea-window"] == "dataset; center=40; width=400; function=LINEAR"
    _save_artifact("ct-window.png", response)


def test_window_parameter_and_shapes(live_server: LiveServer) -> None:
    ds = _ct(RescaleSlope="2", RescaleIntercept="-100")
    url = _store(live_server, ds)
    values = ds.pixel_array.astype(np.float64) * 2 - 100

    linear = _image(_get(f"{url}/rendered", accept="image/png", window="500,3000,linear"))
    assert np.abs(linear - np.rint(_linear_window(values, 500, 3000) * 65535)).max() <= 1

    exact = _image(_get(f"{url}/rendered", accept="image/png", window="500,3000,linear-exact"))
    expected_exact = np.clip((values - (500 - 1500)) / 3000, 0, 1)
    assert np.abs(exact - np.rint(expected_exact * 65535)).max() <= 1

    sigmoid = _image(_get(f"{url}/rendered", accept="image/png", window="500,3000,sigmoid"))
    expected_sigmoid = 1 / (1 + np.exp(-4 * (values - 500) / 3000))
    assert np.abs(sigmoid - np.rint(expected_sigmoid * 65535)).max() <= 1


def test_monochrome1_is_inverted(live_server: LiveServer) -> None:
    ds = _ct(PhotometricInterpretation="MONOCHROME1", WindowCenter="0", WindowWidth="2000")
    url = _store(live_server, ds)

    rendered = _image(_get(f"{url}/rendered", accept="image/png"))

    expected = 1 - _linear_window(ds.pixel_array.astype(np.float64), 0, 2000)
    assert np.abs(rendered - np.rint(expected * 65535)).max() <= 1


def test_automatic_window_ignores_outliers_and_says_so(live_server: LiveServer) -> None:
    ds = _ct(rows=100, columns=100)
    pixels = np.random.default_rng(3).integers(0, 1000, (100, 100)).astype(np.int16)
    pixels[0, 0] = 30000  # one burned-in marker: a min/max window would flatten the rest
    ds.PixelData = pixels.tobytes()
    url = _store(live_server, ds)

    response = _get(f"{url}/rendered", accept="image/png")

    rendered = _image(response).astype(np.float64) / 65535
    assert response.headers["fovea-window"].startswith("automatic; percentiles=0.5-99.5;")
    assert rendered[1:].std() > 0.2  # the body keeps its contrast
    assert rendered[0, 0] == 1.0


def test_palette_colour(live_server: LiveServer) -> None:
    ds = pydicom.dcmread(corpus_file("examples_palette.dcm").path)
    url = _store(live_server, ds)

    response = _get(f"{url}/rendered", accept="image/png")

    rendered = _image(response)
    indices = ds.pixel_array.astype(np.int64)
    expected = []
    for colour in ("Red", "Green", "Blue"):
        entries, first, bits = ds[f"{colour}PaletteColorLookupTableDescriptor"].value
        table = np.frombuffer(ds[f"{colour}PaletteColorLookupTableData"].value, f"<u{bits // 8}")
        looked_up = table[np.clip(indices - first, 0, (entries or 65536) - 1)].astype(np.float64)
        expected.append(np.rint(looked_up * 255 / ((1 << bits) - 1)))
    assert rendered.shape == (*indices.shape, 3)
    assert np.abs(rendered - np.stack(expected, axis=-1)).max() <= 1
    _save_artifact("palette.png", response)


def test_ybr_full_422_becomes_rgb(live_server: LiveServer) -> None:
    ds = pydicom.dcmread(corpus_file("SC_ybr_full_422_uncompressed.dcm").path)
    url = _store(live_server, ds)

    rendered = _image(_get(f"{url}/rendered", accept="image/png")).astype(np.float64)

    raw = np.frombuffer(ds.PixelData, np.uint8).reshape(ds.Rows, ds.Columns // 2, 4).astype(np.float64)
    y = np.empty((ds.Rows, ds.Columns))
    y[:, 0::2], y[:, 1::2] = raw[..., 0], raw[..., 1]
    cb, cr = np.repeat(raw[..., 2], 2, axis=1) - 128, np.repeat(raw[..., 3], 2, axis=1) - 128
    expected = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    assert np.abs(rendered - np.clip(np.rint(expected), 0, 255)).max() <= 2


def test_lossless_jpeg_2000_renders_like_the_native_original(live_server: LiveServer) -> None:
    native = pydicom.dcmread(corpus_file("MR_small.dcm").path)
    j2k = pydicom.dcmread(corpus_file("MR_small_jp2klossless.dcm").path)
    j2k.SOPInstanceUID = generate_uid()
    native_png = _get(f"{_store(live_server, native)}/rendered", accept="image/png", window="600,1200,linear")
    j2k_png = _get(f"{_store(live_server, j2k)}/rendered", accept="image/png", window="600,1200,linear")
    assert np.array_equal(_image(native_png), _image(j2k_png))


def test_multi_frame_gif_thumbnail_and_frames(live_server: LiveServer) -> None:
    ds = pydicom.dcmread(io.BytesIO(make_instance(rows=300, columns=200, frames=5, seed=2)))
    url = _store(live_server, ds)

    gif = Image.open(io.BytesIO(_get(f"{url}/rendered", accept="image/gif").content))
    assert isinstance(gif, GifImageFile)
    assert (gif.format, gif.n_frames, gif.size) == ("GIF", 5, (200, 300))

    thumbnail = _get(f"{url}/thumbnail")
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (85, 128)  # longest side 128, aspect kept

    frame = _get(f"{url}/frames/4/rendered", accept="image/png", window="0,4000,linear")
    expected = np.rint(_linear_window(ds.pixel_array[3].astype(np.float64), 0, 4000) * 65535)
    assert np.abs(_image(frame) - expected).max() <= 1

    several = _get(f"{url}/frames/1,2/rendered", accept="image/gif")
    several_gif = Image.open(io.BytesIO(several.content))
    assert isinstance(several_gif, GifImageFile) and several_gif.n_frames == 2
    assert _get(f"{url}/frames/1,2/rendered").status_code == 400
    assert _get(f"{url}/frames/9/rendered").status_code == 404


def test_study_and_series_show_their_middle_instance(live_server: LiveServer) -> None:
    study, series = generate_uid(), generate_uid()
    instances = []
    for number in (3, 1, 2):
        ds = _ct(StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=number)
        ds.PixelData = np.full((64, 48), number * 100, np.int16).tobytes()
        instances.append(_store(live_server, ds))
    window = {"accept": "image/png", "window": "150,300,linear-exact"}  # 100, 200, 300 -> 1/3, 2/3, 1
    for resource in (
        f"{live_server.dicomweb}/studies/{study}",
        f"{live_server.dicomweb}/studies/{study}/series/{series}",
    ):
        rendered = _image(_get(f"{resource}/rendered", **window))
        assert set(np.unique(rendered)) == {43690}  # instance number 2 shown


def test_viewport_keeps_the_aspect_and_cuts_the_region(live_server: LiveServer) -> None:
    ds = _ct(rows=64, columns=48)
    url = _store(live_server, ds)

    assert _image(_get(f"{url}/rendered", viewport="96,96")).shape == (96, 72)
    assert _image(_get(f"{url}/rendered", viewport="20,40")).shape == (27, 20)
    region = _image(
        _get(f"{url}/rendered", accept="image/png", window="0,4000,linear", viewport="10,20,5,10,10,20")
    )
    expected = np.rint(_linear_window(ds.pixel_array[10:30, 5:15].astype(np.float64), 0, 4000) * 65535)
    assert np.abs(region - expected).max() <= 1
    flipped = _image(
        _get(f"{url}/rendered", accept="image/png", window="0,4000,linear", viewport="10,20,15,10,-10,20")
    )
    assert np.array_equal(flipped, region[:, ::-1])


def test_annotations_only_when_asked(live_server: LiveServer) -> None:
    ds = _ct(rows=128, columns=128, PatientName="Doe^Jane")
    url = _store(live_server, ds)
    plain = _image(_get(f"{url}/rendered", accept="image/png"))
    again = _image(_get(f"{url}/rendered", accept="image/png", unknown="ignored"))
    annotated_response = _get(f"{url}/rendered", accept="image/png", annotation="patient,technique")
    annotated = _image(annotated_response)
    assert np.array_equal(plain, again)
    assert plain.dtype == np.uint16 and annotated.dtype == np.uint8  # text is drawn on 8-bit grey
    changed = np.argwhere(np.abs(annotated.astype(np.int64) - np.rint(plain / 257)) > 1)
    assert changed.size and changed[:, 0].max() < 40  # only the text band at the top changed
    _save_artifact("annotated.png", annotated_response)


def test_jpeg_quality_and_caching(live_server: LiveServer) -> None:
    url = _store(live_server, _ct(rows=128, columns=128))
    low, high = _get(f"{url}/rendered", quality="10"), _get(f"{url}/rendered", quality="95")
    assert len(low.content) < len(high.content)
    again = _get(f"{url}/rendered", quality="95")
    assert again.content == high.content
    revalidated = httpx.get(f"{url}/rendered?quality=95", headers={"If-None-Match": high.headers["etag"]})
    assert revalidated.status_code == 304


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"window": "40"}, 400),
        ({"window": "40,0,linear"}, 400),
        ({"window": "40,400,cubic"}, 400),
        ({"viewport": "0,10"}, 400),
        ({"quality": "101"}, 400),
        ({"annotation": "everything"}, 400),
        ({"iccprofile": "adobergb"}, 400),
    ],
)
def test_bad_parameters(live_server: LiveServer, params: dict[str, str], status: int) -> None:
    url = _store(live_server, _ct())
    response = _get(f"{url}/rendered", **params)
    assert response.status_code == status
    assert next(iter(params)) in response.json()["error"]


def test_unacceptable_media_types(live_server: LiveServer) -> None:
    url = _store(live_server, _ct())
    refused = httpx.get(f"{url}/rendered", headers={"Accept": "application/dicom"})
    assert refused.status_code == 406
    assert "image/jpeg" in refused.json()["error"]
    # the accept parameter is tried first: a viewer's thumbnail request with a multipart header
    thumbnail = httpx.get(
        f"{url}/thumbnail?accept=image/jpeg", headers={"Accept": 'multipart/related; type="image/jpeg"'}
    )
    assert (thumbnail.status_code, thumbnail.headers["content-type"]) == (200, "image/jpeg")


def test_thumbnail_viewport_takes_only_a_size(live_server: LiveServer) -> None:
    url = _store(live_server, _ct())
    assert _get(f"{url}/thumbnail", viewport="32,32,0,0,10,10").status_code == 400
    assert _image(_get(f"{url}/thumbnail", viewport="32,32")).shape == (32, 24)


def test_instances_without_pixel_data_are_not_found(live_server: LiveServer) -> None:
    url = _store(live_server, pydicom.dcmread(corpus_file("rtplan.dcm").path))
    response = _get(f"{url}/rendered")
    assert response.status_code == 404
    assert "no pixel data" in response.json()["error"]
    missing = f"{live_server.dicomweb}/studies/{generate_uid()}/thumbnail"
    assert _get(missing).status_code == 404


def test_thumbnail_of_a_multi_frame_instance_decodes_one_frame(live_server: LiveServer) -> None:
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(io.BytesIO(make_instance(rows=64, columns=64, frames=40, seed=4)))
    ds.compress(RLELossless, encoding_plugin="pydicom")
    url = _store(live_server, ds)
    decoded = live_server.services.transcoded_frames

    before = decoded.misses
    response = _get(f"{url}/thumbnail")

    assert response.status_code == 200
    assert decoded.misses - before == 1  # the middle frame only, of 40


def test_thumbnail_has_the_automatic_window_of_the_full_image(live_server: LiveServer) -> None:
    ds = _ct(rows=1100, columns=1000)
    ds.PixelData = np.random.default_rng(5).integers(0, 4000, (1100, 1000)).astype(np.int16).tobytes()
    url = _store(live_server, ds)
    full, thumbnail = _get(f"{url}/rendered"), _get(f"{url}/thumbnail")
    assert full.headers["fovea-window"].startswith("automatic")
    assert thumbnail.headers["fovea-window"] == full.headers["fovea-window"]
