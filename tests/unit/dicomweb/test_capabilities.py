"""The Capabilities Description made from the tables (app/dicomweb/capabilities.py)."""

from __future__ import annotations

import pytest

from app.dicomweb.capabilities import JSON, WADL, negotiate_capabilities_type, resource
from app.dicomweb.errors import NotAcceptable
from app.dicomweb.mediatypes import (
    COMPRESSED_BULK_MEDIA_TYPES,
    DICOM_MEDIA_TYPES,
    UNCOMPRESSED_BULK_MEDIA_TYPES,
)
from app.dicomweb.query import searchable_paths
from app.dicomweb.query_keys import QueryLevel

INSTANCE = "studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, WADL),
        ("*/*", WADL),
        ("application/*", WADL),
        ("application/json", JSON),
        ("application/vnd.sun.wadl+xml;q=0.1, application/json", JSON),
        ("application/json;q=0.5, application/vnd.sun.wadl+xml", WADL),
        ("application/json;q=0, */*", WADL),
    ],
)
def test_wadl_unless_json_is_preferred(accept: str | None, chosen: str) -> None:
    assert negotiate_capabilities_type(accept) == chosen


def test_other_types_are_not_acceptable() -> None:
    with pytest.raises(NotAcceptable):
        negotiate_capabilities_type("image/png, text/html")


def pairs(rows: object) -> set[tuple[str, str]]:
    return {(row.media_type, row.transfer_syntax) for row in rows}  # type: ignore[attr-defined]


def offered(path: str) -> set[tuple[str, str]]:
    [method] = resource(path, {"GET", "HEAD"}).methods
    return {(r.media_type, syntax) for r in method.responses for syntax in r.transfer_syntaxes}


def test_frames_offer_every_bulk_row_and_instances_every_dicom_row() -> None:
    assert offered(INSTANCE + "/frames/{frame_list}") == pairs(
        (*UNCOMPRESSED_BULK_MEDIA_TYPES, *COMPRESSED_BULK_MEDIA_TYPES)
    )
    assert offered(INSTANCE) == pairs(DICOM_MEDIA_TYPES)


def test_each_type_lists_its_default_syntax_first() -> None:
    [method] = resource(INSTANCE + "/frames/{frame_list}", {"GET"}).methods
    defaults = {row.media_type: row.transfer_syntax for row in COMPRESSED_BULK_MEDIA_TYPES if row.default}
    for representation in method.responses:
        if representation.media_type in defaults:
            assert representation.transfer_syntaxes[0] == defaults[representation.media_type]


def test_searches_list_the_keys_of_their_level() -> None:
    for path, level in (
        ("studies", QueryLevel.STUDY),
        ("studies/{study_instance_uid}/series", QueryLevel.SERIES),
    ):
        [method] = resource(path, {"GET"}).methods
        assert len(method.query_keys) == len(searchable_paths(level))
        assert method.transaction.startswith("Search for")


def test_a_method_without_a_table_is_listed_without_representations() -> None:
    [get, delete] = resource("studies/{study_instance_uid}", {"GET", "DELETE", "HEAD"}).methods
    assert (get.name, get.transaction) == ("GET", "Retrieve Study")
    assert (delete.name, delete.responses, delete.requests) == ("DELETE", (), ())
