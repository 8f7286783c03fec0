"""Accept parsing and media-type selection (PS3.18 8.7, RFC 9110 12.5.1)."""

from __future__ import annotations

from collections.abc import Collection

import pytest
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

from app.dicomweb.errors import NotAcceptable
from app.dicomweb.mediatypes import ResourceCategory
from app.dicomweb.negotiation import (
    METADATA_XML,
    FrameSelection,
    InstanceSelection,
    MediaRange,
    negotiate_frame_media_type,
    negotiate_instance_media_type,
    negotiate_metadata_media_type,
    negotiate_store_response_type,
    ordered_by_preference,
    parse_accept,
)

ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
OCTET = "application/octet-stream"
DICOM = "application/dicom"
JSON = "application/dicom+json"

# An example server: Explicit VR LE, JPEG-LS lossless and JPEG 2000 lossless.
SERVER = frozenset({ExplicitVRLittleEndian, JPEGLSLossless, JPEG2000Lossless})
OHIF = "application/dicom+json, multipart/related; type=application/octet-stream; transfer-syntax=*"


def test_parse_accept_reads_quoted_and_unquoted_parameters() -> None:
    ranges = parse_accept(
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1, '
        "multipart/related; type=application/octet-stream; q=0.5"
    )
    assert ranges == [
        MediaRange(
            "multipart/related", (("type", "application/dicom"), ("transfer-syntax", "1.2.840.10008.1.2.1"))
        ),
        MediaRange("multipart/related", (("type", "application/octet-stream"),), 0.5),
    ]


def test_comma_inside_quotes_does_not_split_ranges() -> None:
    [only] = parse_accept('application/x; note="a, b"')
    assert only.param("note") == "a, b"


def test_parameters_after_q_are_accept_extensions() -> None:
    [only] = parse_accept("application/dicom+json; q=0.3; type=ignored")
    assert only.q == 0.3 and only.params == ()


@pytest.mark.parametrize("header", ["", "garbage", "a/b/c", ";q=1", "text /html"])
def test_malformed_entries_are_ignored(header: str) -> None:
    assert parse_accept(header) == []


def test_bad_q_value_counts_as_one_and_out_of_range_is_clamped() -> None:
    assert [r.q for r in parse_accept("a/b; q=x, c/d; q=7, e/f; q=-1")] == [1.0, 1.0, 0.0]


def test_q_zero_excludes_range() -> None:
    ordered = ordered_by_preference(parse_accept("application/dicom+json; q=0, */*"))
    assert [r.media_type for r in ordered] == ["*/*"]


def test_more_specific_range_wins_at_equal_q() -> None:
    ordered = ordered_by_preference(parse_accept("*/*, application/*, application/dicom+xml"))
    assert [r.media_type for r in ordered] == ["application/dicom+xml", "application/*", "*/*"]


def test_wildcards_match() -> None:
    assert MediaRange("*/*").matches("application/dicom+json")
    assert MediaRange("application/*").matches("application/dicom+json")
    assert not MediaRange("image/*").matches("application/dicom+json")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/dicom+json"),
        ("", "application/dicom+json"),
        ("*/*", "application/dicom+json"),
        ("application/*", "application/dicom+json"),
        ("application/json", "application/dicom+json"),
        ("application/dicom+xml", "application/dicom+xml"),
        ('multipart/related; type="application/dicom+xml"', "application/dicom+xml"),
        ("application/dicom+json; q=0.4, application/dicom+xml", "application/dicom+xml"),
        ("application/dicom+xml; q=0.4, application/dicom+json", "application/dicom+json"),
        ("text/html, */*; q=0.1", "application/dicom+json"),
    ],
)
def test_store_response_type(accept: str | None, chosen: str) -> None:
    assert negotiate_store_response_type(accept) == chosen


@pytest.mark.parametrize(
    "accept",
    ["text/html", "image/*", "application/dicom+json; q=0", 'multipart/related; type="application/dicom"'],
)
def test_store_response_not_acceptable_says_what_is_offered(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="application/dicom\\+json or application/dicom\\+xml"):
        negotiate_store_response_type(accept)


# --- frames, bulkdata, pixeldata ---


def frames(
    accept: str | None,
    *,
    stored: str = ExplicitVRLittleEndian,
    produce: Collection[str] = SERVER,
    single: bool = False,
    query: str | None = None,
) -> FrameSelection:
    return negotiate_frame_media_type(
        parse_accept(query),
        parse_accept(accept),
        stored_syntax=stored,
        can_produce=produce.__contains__,
        single_part_allowed=single,
    )


def instance(
    accept: str | None,
    *,
    stored: str = ExplicitVRLittleEndian,
    produce: Collection[str] = SERVER,
    single: bool = False,
    query: str | None = None,
) -> InstanceSelection:
    return negotiate_instance_media_type(
        parse_accept(query),
        parse_accept(accept),
        stored_syntax=stored,
        can_produce=produce.__contains__,
        single_part_allowed=single,
    )


def metadata(accept: str | None, query: str | None = None) -> str:
    return negotiate_metadata_media_type(parse_accept(query), parse_accept(accept))


def chosen(selection: FrameSelection | InstanceSelection) -> tuple[bool, str, str]:
    return selection.multipart, selection.media_type, selection.transfer_syntax


MULTIPART_OCTET_ELE = (True, OCTET, ExplicitVRLittleEndian)


def test_query_parameter_wins_over_header() -> None:
    selection = frames('multipart/related; type="image/jp2"', query='multipart/related; type="image/jls"')
    assert chosen(selection) == (True, "image/jls", JPEGLSLossless)


def test_header_is_used_when_the_query_parameter_offers_nothing_producible() -> None:
    selection = frames('multipart/related; type="image/jp2"', query='multipart/related; type="image/jxl"')
    assert chosen(selection) == (True, "image/jp2", JPEG2000Lossless)


def test_higher_q_wins_over_header_order() -> None:
    accept = 'multipart/related; type="image/jls"; q=0.4, multipart/related; type="image/jp2"; q=0.8'
    assert chosen(frames(accept)) == (True, "image/jp2", JPEG2000Lossless)


def test_q_zero_excludes_what_it_covers_from_less_specific_ranges() -> None:
    accept = 'multipart/related; type="application/octet-stream"; q=0, */*'
    stored_form, first_producible = (True, "image/jp2", JPEG2000Lossless), (True, "image/jls", JPEGLSLossless)
    assert chosen(frames(accept, stored=JPEG2000Lossless)) == stored_form
    assert chosen(frames(accept, stored=ExplicitVRLittleEndian)) == first_producible  # in table order
    with pytest.raises(NotAcceptable):
        frames(accept, stored=ExplicitVRLittleEndian, produce={ExplicitVRLittleEndian})


def test_q_zero_wildcard_does_not_exclude_a_more_specific_range() -> None:
    assert chosen(frames('*/*; q=0, multipart/related; type="image/jls"')) == (
        True,
        "image/jls",
        JPEGLSLossless,
    )


def test_q_zero_alone_is_not_acceptable() -> None:
    with pytest.raises(NotAcceptable):
        frames("*/*; q=0")


def test_more_specific_frame_range_wins_at_equal_q() -> None:
    accept = (
        'multipart/related; type="image/jp2", '
        f'multipart/related; type="image/jls"; transfer-syntax={JPEGLSLossless}'
    )
    assert chosen(frames(accept)) == (True, "image/jls", JPEGLSLossless)


def test_tie_prefers_the_option_that_needs_no_transcoding() -> None:
    accept = 'multipart/related; type="image/jls", multipart/related; type="image/jp2"'
    selection = frames(accept, stored=JPEG2000Lossless)
    assert chosen(selection) == (True, "image/jp2", JPEG2000Lossless)
    assert selection.transcode is False


def test_tie_between_transcodes_keeps_header_order() -> None:
    accept = 'multipart/related; type="image/jls", multipart/related; type="image/jp2"'
    selection = frames(accept, stored=ExplicitVRLittleEndian)
    assert chosen(selection) == (True, "image/jls", JPEGLSLossless)
    assert selection.transcode is True


def test_multipart_related_without_type_means_the_category_default() -> None:
    assert chosen(frames("multipart/related")) == MULTIPART_OCTET_ELE


@pytest.mark.parametrize("accept", ["*/*", "application/*", "multipart/*", 'multipart/related; type="*/*"'])
def test_wildcards_mean_the_category_default(accept: str) -> None:
    assert chosen(frames(accept, stored=JPEGLSLossless)) == MULTIPART_OCTET_ELE


def test_wildcard_falls_back_to_the_stored_form_when_the_default_cannot_be_produced() -> None:
    selection = frames("*/*", stored=JPEGBaseline8Bit, produce=set())
    assert chosen(selection) == (True, "image/jpeg", JPEGBaseline8Bit)
    assert selection.transcode is False


@pytest.mark.parametrize(
    ("stored", "syntax"), [(JPEG2000Lossless, JPEG2000Lossless), (ExplicitVRLittleEndian, JPEGLSLossless)]
)
def test_type_wildcard_prefers_the_stored_form_then_the_first_producible_type(
    stored: str, syntax: str
) -> None:
    assert frames("image/*", stored=stored).transfer_syntax == syntax


def test_transfer_syntax_star_keeps_the_stored_syntax() -> None:
    selection = frames('multipart/related; type="image/jp2"; transfer-syntax=*', stored=JPEG2000)
    assert chosen(selection) == (True, "image/jp2", JPEG2000)
    assert selection.transcode is False


def test_transfer_syntax_star_for_another_media_type_picks_a_producible_syntax() -> None:
    assert chosen(frames('multipart/related; type="image/jls"; transfer-syntax=*')) == (
        True,
        "image/jls",
        JPEGLSLossless,
    )


@pytest.mark.parametrize(
    "stored",
    [
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
        ENCAPSULATED_UNCOMPRESSED,
    ],
)
def test_octet_stream_star_serves_uncompressed_stored_frames_as_they_are(stored: str) -> None:
    selection = frames(
        'multipart/related; type="application/octet-stream"; transfer-syntax=*', stored=stored, produce=set()
    )
    assert chosen(selection) == MULTIPART_OCTET_ELE
    assert selection.transcode is False


@pytest.mark.parametrize("stored", [JPEGLSLossless, DEFLATED_FRAMES, JPEG2000])
def test_octet_stream_star_means_decode_for_compressed_stored_frames(stored: str) -> None:
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    selection = frames(accept, stored=stored)
    assert chosen(selection) == MULTIPART_OCTET_ELE
    assert selection.transcode is True
    with pytest.raises(NotAcceptable):
        frames(accept, stored=stored, produce=set())


@pytest.mark.parametrize(
    ("part_type", "syntax"),
    [
        ("application/octet-stream", ExplicitVRLittleEndian),
        ("image/jls", JPEGLSLossless),
        ("image/jp2", JPEG2000Lossless),
        ("image/jpeg", JPEGLosslessSV1),
    ],
)
def test_no_transfer_syntax_parameter_means_the_media_type_default(part_type: str, syntax: str) -> None:
    selection = frames(f'multipart/related; type="{part_type}"', produce={syntax})
    assert chosen(selection) == (True, part_type, syntax)


def test_image_jls_defaults_to_lossless() -> None:
    selection = frames('multipart/related; type="image/jls"', produce={JPEGLSLossless, JPEGLSNearLossless})
    assert selection.transfer_syntax == JPEGLSLossless


def test_lossy_stored_syntax_of_the_requested_type_is_returned_as_stored() -> None:
    selection = frames(
        'multipart/related; type="image/jls"',
        stored=JPEGLSNearLossless,
        produce={JPEGLSLossless, JPEGLSNearLossless},
    )
    assert chosen(selection) == (True, "image/jls", JPEGLSNearLossless)  # never relabelled as lossless .80


@pytest.mark.parametrize(
    "accept",
    [
        f'multipart/related; type="image/jls"; transfer-syntax={JPEG2000Lossless}',
        f'multipart/related; type="application/octet-stream"; transfer-syntax={JPEGLSLossless}',
        f'multipart/related; type="application/octet-stream"; transfer-syntax={ImplicitVRLittleEndian}',
    ],
)
def test_transfer_syntax_not_in_the_media_types_rows_skips_the_range(accept: str) -> None:
    assert chosen(frames(f"{accept}, multipart/related; type=image/jp2; q=0.1")) == (
        True,
        "image/jp2",
        JPEG2000Lossless,
    )


def test_range_is_acceptable_only_if_producible_or_stored() -> None:
    accept = 'multipart/related; type="image/jxl", multipart/related; type="image/jphc"; q=0.5'
    with pytest.raises(NotAcceptable):
        frames(accept)
    assert frames(accept, stored=HTJ2KLossless).media_type == "image/jphc"


def test_application_dicom_is_not_a_frame_media_type() -> None:
    with pytest.raises(NotAcceptable):
        frames('multipart/related; type="application/dicom"')


def test_single_part_media_type_only_for_single_item_targets() -> None:
    with pytest.raises(NotAcceptable):
        frames("image/jls", single=False)
    assert chosen(frames("image/jls", single=True)) == (False, "image/jls", JPEGLSLossless)
    assert chosen(frames("application/octet-stream, */*; q=0.1", single=False)) == MULTIPART_OCTET_ELE


def test_repeated_transfer_syntax_parameter_makes_the_range_invalid() -> None:
    repeated = f"transfer-syntax={JPEGLSLossless}; transfer-syntax={JPEGLSLossless}"
    accept = f"multipart/related; type=image/jls; {repeated}, */*; q=0.1"
    assert chosen(frames(accept)) == MULTIPART_OCTET_ELE


@pytest.mark.parametrize(
    "accept",
    [
        f'multipart/related; type="image/jls"; transfer-syntax="{JPEGLSLossless}"',
        f"multipart/related; type=image/jls; transfer-syntax={JPEGLSLossless}",
        f'multipart/related; type=image/jls; transfer-syntax="{JPEGLSLossless}"',
        f"Multipart/Related; type=IMAGE/JLS; transfer-syntax={JPEGLSLossless}",
    ],
)
def test_quoted_and_unquoted_parameters_select_the_same(accept: str) -> None:
    assert chosen(frames(accept)) == (True, "image/jls", JPEGLSLossless)


@pytest.mark.parametrize("part_type", ["application/x-deflate", "application/vnd.dicom-deflate"])
def test_both_deflate_names_select_deflated_image_frames_labelled_x_deflate(part_type: str) -> None:
    selection = frames(f'multipart/related; type="{part_type}"', produce={DEFLATED_FRAMES})
    assert chosen(selection) == (True, "application/x-deflate", DEFLATED_FRAMES)
    assert selection.part_content_type == f"application/x-deflate; transfer-syntax={DEFLATED_FRAMES}"
    assert selection.content_type == 'multipart/related; type="application/x-deflate"'


def test_missing_accept_is_treated_as_wildcard() -> None:
    assert chosen(frames(None)) == MULTIPART_OCTET_ELE


def test_not_acceptable_lists_what_the_server_can_offer() -> None:
    with pytest.raises(NotAcceptable) as caught:
        frames('multipart/related; type="image/jxl"', stored=JPEGLSLossless)
    message = caught.value.message
    assert (
        f'multipart/related; type="application/octet-stream"; transfer-syntax={ExplicitVRLittleEndian}'
        in message
    )
    assert f'multipart/related; type="image/jls"; transfer-syntax={JPEGLSLossless}' in message
    assert f'multipart/related; type="image/jp2"; transfer-syntax={JPEG2000Lossless}' in message
    assert "image/jxl" not in message


ALL_STORED = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ENCAPSULATED_UNCOMPRESSED,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000,
    DEFLATED_FRAMES,
]
STAR_RANGES = [
    "multipart/related; type=application/octet-stream; transfer-syntax=*",
    "multipart/related; type=image/jp2; transfer-syntax=*",
    "multipart/related; type=application/dicom; transfer-syntax=*",
    "*/*; transfer-syntax=*",
]


@pytest.mark.parametrize("stored", ALL_STORED)
@pytest.mark.parametrize("accept", STAR_RANGES)
def test_star_is_never_returned_as_the_syntax(stored: str, accept: str) -> None:
    everything = {*ALL_STORED, JPEG2000Lossless}
    for negotiate in (frames, instance):
        try:
            selection = negotiate(accept, stored=stored, produce=everything)
        except NotAcceptable:
            continue
        assert selection.transfer_syntax not in ("*", ImplicitVRLittleEndian, ExplicitVRBigEndian)


def test_ohif_request_for_frames_gets_octet_stream() -> None:
    assert chosen(frames(OHIF, stored=ENCAPSULATED_UNCOMPRESSED, produce=set())) == MULTIPART_OCTET_ELE


# --- study, series, instance ---


def test_instance_default_is_multipart_application_dicom_in_explicit_vr_le() -> None:
    selection = instance(None)
    assert (selection.category, chosen(selection)) == (
        ResourceCategory.INSTANCE,
        (True, DICOM, ExplicitVRLittleEndian),
    )
    assert selection.content_type == 'multipart/related; type="application/dicom"'


@pytest.mark.parametrize(
    ("stored", "syntax"),
    [
        (JPEG2000, JPEG2000),
        (ImplicitVRLittleEndian, ExplicitVRLittleEndian),
        (ExplicitVRBigEndian, ExplicitVRLittleEndian),
    ],
)
def test_instance_transfer_syntax_star_keeps_stored_syntax_but_never_implicit_or_big_endian(
    stored: str, syntax: str
) -> None:
    selection = instance('multipart/related; type="application/dicom"; transfer-syntax=*', stored=stored)
    assert chosen(selection) == (True, DICOM, syntax)


def test_instance_implicit_vr_le_is_never_offered() -> None:
    with pytest.raises(NotAcceptable):
        instance(
            f'multipart/related; type="application/dicom"; transfer-syntax={ImplicitVRLittleEndian}',
            stored=ImplicitVRLittleEndian,
        )


def test_instance_octet_stream_parts_mean_bulkdata() -> None:
    selection = instance('multipart/related; type="application/octet-stream"', stored=JPEGLSLossless)
    assert (selection.category, chosen(selection)) == (ResourceCategory.BULKDATA, MULTIPART_OCTET_ELE)


def test_instance_compressed_bulk_parts_mean_bulkdata() -> None:
    selection = instance('multipart/related; type="image/jls"')
    assert (selection.category, chosen(selection)) == (
        ResourceCategory.BULKDATA,
        (True, "image/jls", JPEGLSLossless),
    )


def test_instance_bulk_data_is_never_a_single_part() -> None:
    with pytest.raises(NotAcceptable):
        instance("application/octet-stream", single=True)


def test_instance_wildcard_never_means_bulk_data() -> None:
    selection = instance("*/*", stored=JPEG2000, produce=set())
    assert (selection.category, chosen(selection)) == (ResourceCategory.INSTANCE, (True, DICOM, JPEG2000))


@pytest.mark.parametrize(
    ("produce", "syntax"), [({ExplicitVRLittleEndian}, ExplicitVRLittleEndian), (set(), JPEGBaseline8Bit)]
)
def test_instance_lossy_stored_data_may_come_back_as_stored(produce: set[str], syntax: str) -> None:
    assert (
        instance(
            'multipart/related; type="application/dicom"', stored=JPEGBaseline8Bit, produce=produce
        ).transfer_syntax
        == syntax
    )


# --- metadata ---


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        (None, None, JSON),
        ("*/*", None, JSON),
        ("application/*", None, JSON),
        ("application/json", None, JSON),
        (JSON, None, JSON),
        (OHIF, None, JSON),
        ('multipart/related; type="application/dicom+xml"', None, METADATA_XML),
        ("multipart/related; type=application/dicom+xml", None, METADATA_XML),
        (f'{JSON}; q=0.5, multipart/related; type="application/dicom+xml"', None, METADATA_XML),
        ('multipart/related; type="application/dicom+xml"; q=0.5, application/json', None, JSON),
        ('multipart/related; type="application/dicom+xml"', JSON, JSON),
        ("text/html, */*; q=0.1", None, JSON),
    ],
)
def test_metadata_media_type(accept: str | None, query: str | None, expected: str) -> None:
    assert metadata(accept, query) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "application/dicom+xml",  # XML metadata is only multipart (Table 10.4.4-1)
        "multipart/related",  # the default, JSON, is never multipart
        'multipart/related; type="application/dicom+json"',
        f"{JSON}; q=0, */*",
        "image/jpeg",
    ],
)
def test_metadata_not_acceptable_names_what_is_offered(accept: str) -> None:
    with pytest.raises(NotAcceptable, match=r"application/dicom\+json or multipart/related"):
        metadata(accept)


# --- worked examples of PS3.18 8.7 negotiation (a-g) ---


@pytest.mark.parametrize(
    ("resource", "accept", "stored", "single", "expected"),
    [
        pytest.param(
            "frames",
            'multipart/related; type="application/octet-stream"',
            ExplicitVRLittleEndian,
            False,
            MULTIPART_OCTET_ELE,
            id="a",
        ),
        pytest.param(
            "frames",
            'multipart/related; type="application/octet-stream"',
            JPEGLSLossless,
            False,
            MULTIPART_OCTET_ELE,
            id="a-decoded",
        ),
        pytest.param(
            "instance",
            'multipart/related; type="application/octet-stream"',
            ExplicitVRLittleEndian,
            False,
            MULTIPART_OCTET_ELE,
            id="a-instance",
        ),
        pytest.param(
            "frames",
            'multipart/related; type="image/jls"',
            ExplicitVRLittleEndian,
            False,
            (True, "image/jls", JPEGLSLossless),
            id="b",
        ),
        pytest.param(
            "frames",
            'multipart/related; type="image/jls"',
            JPEGLSLossless,
            False,
            (True, "image/jls", JPEGLSLossless),
            id="b-passthrough",
        ),
        pytest.param(
            "frames",
            'multipart/related; type="image/jls"',
            JPEGLSNearLossless,
            False,
            (True, "image/jls", JPEGLSNearLossless),
            id="b-lossy",
        ),
        pytest.param(
            "instance",
            f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}',
            ExplicitVRLittleEndian,
            False,
            (True, DICOM, JPEG2000Lossless),
            id="c",
        ),
        pytest.param(
            "instance",
            "application/dicom",
            ExplicitVRLittleEndian,
            True,
            (False, DICOM, ExplicitVRLittleEndian),
            id="d",
        ),
        pytest.param(
            "instance",
            "*/*",
            ExplicitVRLittleEndian,
            False,
            (True, DICOM, ExplicitVRLittleEndian),
            id="e-instance",
        ),
        pytest.param("frames", "*/*", JPEG2000Lossless, False, MULTIPART_OCTET_ELE, id="e-frames"),
        pytest.param(
            "instance",
            None,
            ExplicitVRLittleEndian,
            False,
            (True, DICOM, ExplicitVRLittleEndian),
            id="f-instance",
        ),
        pytest.param("frames", None, ExplicitVRLittleEndian, False, MULTIPART_OCTET_ELE, id="f-frames"),
    ],
)
def test_worked_example(
    resource: str, accept: str | None, stored: str, single: bool, expected: tuple[bool, str, str]
) -> None:
    negotiate = frames if resource == "frames" else instance
    assert (
        chosen(negotiate(accept, stored=stored, single=single, produce={*SERVER, JPEGLSNearLossless}))
        == expected
    )


def test_worked_example_d_single_part_on_a_study_is_not_acceptable() -> None:
    with pytest.raises(NotAcceptable):
        instance("application/dicom", single=False)


@pytest.mark.parametrize(
    ("accept", "expected"), [("*/*", JSON), (None, JSON)], ids=["e-metadata", "f-metadata"]
)
def test_worked_examples_e_f_metadata(accept: str | None, expected: str) -> None:
    assert metadata(accept) == expected


EXAMPLE_G = (
    'multipart/related; type="image/jp2"; q=0.6, '
    f'multipart/related; type="image/jls"; transfer-syntax={JPEGLSNearLossless}; q=0.9, '
    'multipart/related; type="application/octet-stream"; q=0.5'
)


@pytest.mark.parametrize(
    ("produce", "expected"),
    [
        (
            {ExplicitVRLittleEndian, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless},
            (True, "image/jls", JPEGLSNearLossless),
        ),
        (SERVER, (True, "image/jp2", JPEG2000Lossless)),
        ({ExplicitVRLittleEndian}, MULTIPART_OCTET_ELE),
    ],
    ids=["g-jls-near", "g-j2k", "g-octet"],
)
def test_worked_example_g_takes_the_first_producible_in_q_order(
    produce: set[str], expected: tuple[bool, str, str]
) -> None:
    assert chosen(frames(EXAMPLE_G, produce=produce)) == expected
