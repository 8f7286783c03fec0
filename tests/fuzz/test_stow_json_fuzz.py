"""Hypothesis fuzzer of STOW-RS with metadata and bulk data: hostile DICOM JSON or XML and bulk parts
get a 4xx or a proper Store response, never a 5xx, and the store stays consistent.

Each body starts from a valid instance described as JSON plus bulk parts, then is damaged: attributes
replaced by random JSON, removed, or given other VRs; BulkDataURIs sent elsewhere; bulk parts dropped,
cut short or relabelled with other media types and transfer syntaxes; or the metadata is random JSON.
Whatever is acknowledged must be found and served.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.dicom_files import InstanceUIDs, make_instance
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import FuzzServer
from tests.fuzz.store_oracle import (
    assert_pixels_served_or_refused,
    assert_retrievable,
    assert_store_consistent,
    judge_store_answer,
)
from tests.json_bulk_bodies import BulkBody, json_bulk_content_type

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
VRS = ["AE", "CS", "DS", "IS", "LO", "OB", "OW", "PN", "SQ", "UI", "US", "SS", "FL", "UN", "XX", ""]
MEDIA_TYPES = [
    "application/octet-stream",
    "image/jls",
    "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
    "image/dicom-rle",
    "image/jp2; transfer-syntax=1.2.840.10008.1.2.1",
    "text/plain",
    "",
]


def unique_uid() -> str:
    return f"2.25.1{uuid.uuid4().int % 10**38:038d}"


def fixed_length_uids() -> InstanceUIDs:
    """New UIDs of constant length: replaying an example must draw from bodies of the same size."""
    return {"study_uid": unique_uid(), "series_uid": unique_uid(), "sop_uid": unique_uid()}


@st.composite
def hostile_bodies(draw: st.DrawFn, directory: Path) -> bytes:
    path = directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(make_instance(**fixed_length_uids(), rows=8, columns=8, frames=draw(st.integers(1, 2))))
    body = BulkBody()
    body.add_file(path)
    path.unlink()
    attributes: dict[str, Any] = body.data_sets[0]
    for _ in range(draw(st.integers(0, 3))):
        tag = draw(st.sampled_from(sorted(attributes) or ["00100010"]))
        action = draw(st.sampled_from(["value", "remove", "vr", "uri"]))
        if action == "value":
            attributes[tag] = {"vr": attributes.get(tag, {}).get("vr", "UN"), "Value": draw(json_values)}
        elif action == "remove":
            attributes.pop(tag, None)
        elif action == "vr" and tag in attributes:
            attributes[tag] = {**attributes[tag], "vr": draw(st.sampled_from(VRS))}
        elif tag in attributes:
            attributes[tag] = {"vr": "OB", "BulkDataURI": draw(st.sampled_from(["", "x", "bulk/other"]))}
    bulk = []
    for headers, content in body.bulk:
        action = draw(st.sampled_from(["keep", "keep", "drop", "cut", "relabel", "twice"]))
        if action == "drop":
            continue
        if action == "cut":
            content = content[: draw(st.integers(0, max(0, len(content) - 1)))]
        if action == "relabel":
            headers = {**headers, "Content-Type": draw(st.sampled_from(MEDIA_TYPES))}
        bulk.append((headers, content))
        if action == "twice":
            bulk.append((headers, content))
    body.bulk = bulk
    if draw(st.integers(0, 5)) == 0:
        return body.encode(metadata=orjson.dumps(draw(json_values)))
    return body.encode()


@fuzz_settings()
@given(data=st.data())
def test_hostile_json_and_bulk_bodies_get_a_4xx_or_a_store_response(
    fuzz_server: FuzzServer, tmp_path_factory: Any, data: st.DataObject
) -> None:
    body = data.draw(hostile_bodies(tmp_path_factory.mktemp("json-fuzz")))
    response = httpx.post(
        f"{fuzz_server.dicomweb}/studies",
        content=body,
        headers={"Content-Type": json_bulk_content_type()},
        timeout=60,
    )
    answer = judge_store_answer(response)
    for sop in answer.stored:
        assert_retrievable(fuzz_server, sop)
        assert_pixels_served_or_refused(fuzz_server, sop)
    assert_store_consistent(fuzz_server)


XML_INSERTS = [b"<", b"&", b"]]>", b'<!DOCTYPE d [<!ENTITY e "x">]>', b"&e;", b"\x00", b"<Item number='0'>"]


@st.composite
def hostile_xml_bodies(draw: st.DrawFn, directory: Path) -> bytes:
    """A valid XML metadata body with bytes inserted, removed or replaced inside the metadata part."""
    path = directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(make_instance(**fixed_length_uids(), rows=8, columns=8))
    body = BulkBody()
    body.add_file(path)
    path.unlink()
    data = body.encode_xml()
    end = data.index(b"\r\n--", 10)  # the end of the XML part
    at = draw(st.integers(0, end))
    cut = draw(st.integers(0, 40))
    insert = draw(st.sampled_from(XML_INSERTS) | st.binary(max_size=16))
    return data[:at] + insert + data[min(at + cut, end) :]


@fuzz_settings()
@given(data=st.data())
def test_hostile_xml_metadata_gets_a_4xx_or_a_store_response(
    fuzz_server: FuzzServer, tmp_path_factory: Any, data: st.DataObject
) -> None:
    body = data.draw(hostile_xml_bodies(tmp_path_factory.mktemp("xml-fuzz")))
    response = httpx.post(
        f"{fuzz_server.dicomweb}/studies",
        content=body,
        headers={"Content-Type": json_bulk_content_type("application/dicom+xml")},
        timeout=60,
    )
    answer = judge_store_answer(response)
    for sop in answer.stored:
        assert_retrievable(fuzz_server, sop)
    assert_store_consistent(fuzz_server)
