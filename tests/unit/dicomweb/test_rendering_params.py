"""Query parameters and media types of the rendered and thumbnail resources (PS3.18 8.3.5, 8.3.3.1)."""

from __future__ import annotations

import pytest

from app.dicomweb.errors import BadRequest, NotAcceptable
from app.dicomweb.negotiation import parse_accept
from app.dicomweb.rendered_params import negotiate_rendered_media_type, parse_render_options
from app.imaging.display import (
    DEFAULT_JPEG_QUALITY,
    ImageFormat,
    RenderOptions,
    Viewport,
    Window,
    WindowShape,
)


def parse(*parameters: tuple[str, str], thumbnail: bool = False) -> RenderOptions:
    return parse_render_options(parameters, thumbnail=thumbnail, image_format=ImageFormat.JPEG)


def rejected(*parameters: tuple[str, str], thumbnail: bool = False) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(*parameters, thumbnail=thumbnail)
    assert caught.value.status == 400
    return caught.value.message


# --- parse_render_options ---


def test_no_parameters_give_the_defaults() -> None:
    options = parse_render_options([], thumbnail=True, image_format=ImageFormat.PNG)

    assert options == RenderOptions(image_format=ImageFormat.PNG, thumbnail=True)
    assert options.window is None and options.viewport is None
    assert options.quality == DEFAULT_JPEG_QUALITY
    assert options.annotations == () and options.icc_profile == "no"


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("40,400,linear", Window(40, 400, WindowShape.LINEAR)),
        ("-600,1500.5,linear-exact", Window(-600, 1500.5, WindowShape.LINEAR_EXACT)),
        ("0,0.5,sigmoid", Window(0, 0.5, WindowShape.SIGMOID)),
        ("40,400,LINEAR", Window(40, 400, WindowShape.LINEAR)),
    ],
)
def test_window(text: str, window: Window) -> None:
    assert parse(("window", text)).window == window


@pytest.mark.parametrize(
    "text",
    [
        "40,400",
        "40,400,linear,1",
        "40,wide,linear",
        "40,400,cubic",
        "40,0,linear-exact",
        "40,0.5,linear",  # LINEAR needs a width of at least 1 (PS3.3 C.11.2.1.2.1)
        "nan,400,linear",
        "40,inf,linear",
        "",
    ],
)
def test_window_malformed(text: str) -> None:
    assert "window" in rejected(("window", text))


@pytest.mark.parametrize(
    ("text", "viewport"),
    [
        ("512,256", Viewport(512, 256)),
        ("100,100,10,20,30,40", Viewport(100, 100, (10, 20, 30, 40))),
        ("100,100,50,60,-30,-40", Viewport(100, 100, (50, 60, -30, -40))),
        ("64.0,64", Viewport(64, 64)),
    ],
)
def test_viewport(text: str, viewport: Viewport) -> None:
    assert parse(("viewport", text)).viewport == viewport


@pytest.mark.parametrize(
    "text",
    [
        "512",
        "512,256,0",
        "1,2,3,4,5",
        "0,10",
        "10,0",
        "10.5,10",
        "-5,10",
        "10,10,-1,0,5,5",
        "10,10,0,0,0,5",
        "a,b",
    ],
)
def test_viewport_malformed(text: str) -> None:
    assert "viewport" in rejected(("viewport", text))


def test_thumbnail_viewport_is_only_vw_vh() -> None:
    assert parse(("viewport", "64,48"), thumbnail=True).viewport == Viewport(64, 48)
    assert "vw,vh" in rejected(("viewport", "64,64,0,0,10,10"), thumbnail=True)


@pytest.mark.parametrize("text", ["1", "50", "100"])
def test_quality(text: str) -> None:
    assert parse(("quality", text)).quality == int(text)


@pytest.mark.parametrize("text", ["0", "101", "-5", "high", "80.5", ""])
def test_quality_out_of_range(text: str) -> None:
    assert "quality" in rejected(("quality", text))


@pytest.mark.parametrize(
    ("text", "annotations"),
    [
        ("patient", ("patient",)),
        ("technique", ("technique",)),
        ("patient,technique", ("patient", "technique")),
        ("technique,patient", ("patient", "technique")),
    ],
)
def test_annotation(text: str, annotations: tuple[str, ...]) -> None:
    assert parse(("annotation", text)).annotations == annotations


@pytest.mark.parametrize("text", ["", "patient,ruler", "all"])
def test_annotation_unknown(text: str) -> None:
    assert "annotation" in rejected(("annotation", text))


@pytest.mark.parametrize("text", ["no", "yes", "srgb"])
def test_icc_profile(text: str) -> None:
    assert parse(("iccprofile", text)).icc_profile == text


@pytest.mark.parametrize("text", ["adobergb", "rommrgb"])
def test_icc_profile_defined_but_not_offered(text: str) -> None:
    message = rejected(("iccprofile", text))

    assert message.startswith(f"iccprofile={text}")
    assert "only no, yes and srgb" in message


def test_icc_profile_unknown() -> None:
    assert "iccprofile" in rejected(("iccprofile", "p3"))


@pytest.mark.parametrize("name", ["window", "viewport", "quality", "annotation", "iccprofile"])
def test_repeated_parameter(name: str) -> None:
    values = {"window": "1,2,linear", "viewport": "10,10", "quality": "5", "annotation": "patient"}
    value = values.get(name, "no")

    message = rejected((name, value), (name, value))

    assert name in message and "more than once" in message


def test_unknown_parameters_are_ignored() -> None:
    options = parse(
        ("charset", "utf-8"), ("accept", "image/png"), ("foo", "bar"), ("quality", "70"), ("foo", "baz")
    )

    assert options == RenderOptions(quality=70)


# --- negotiate_rendered_media_type ---


def negotiate(header: str | None, query: str | None = None) -> ImageFormat:
    return negotiate_rendered_media_type(parse_accept(query), parse_accept(header))


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, ImageFormat.JPEG),
        ("*/*", ImageFormat.JPEG),
        ("image/*", ImageFormat.JPEG),
        ("image/png", ImageFormat.PNG),
        ("image/gif", ImageFormat.GIF),
        ("image/jpeg", ImageFormat.JPEG),
        ("image/png;q=0.5, image/gif", ImageFormat.GIF),
        ("application/dicom, image/png;q=0.2", ImageFormat.PNG),
        ("image/jpeg;q=0, image/*", ImageFormat.PNG),
        ("image/jpeg;q=0, image/png;q=0, */*", ImageFormat.GIF),
        ("text/html, application/xhtml+xml, image/avif, image/webp, */*;q=0.8", ImageFormat.JPEG),
    ],
)
def test_accept_header(header: str | None, chosen: ImageFormat) -> None:
    assert negotiate(header) is chosen


def test_accept_query_parameter_comes_first() -> None:
    assert negotiate('multipart/related; type="application/octet-stream"', "image/jpeg") is ImageFormat.JPEG
    assert negotiate("image/jpeg", "image/png") is ImageFormat.PNG
    assert negotiate("image/gif", "application/dicom") is ImageFormat.GIF  # the query's list has none


@pytest.mark.parametrize(
    "header",
    [
        "application/dicom",
        'multipart/related; type="application/octet-stream"',
        "image/jpeg;q=0, image/png;q=0, image/gif;q=0",
        "image/*;q=0, */*",  # RFC 9110 12.5.1: the more specific range's q=0 applies to every image/*
    ],
)
def test_nothing_acceptable(header: str) -> None:
    with pytest.raises(NotAcceptable) as caught:
        negotiate(header)
    assert caught.value.status == 406
