"""Hypothesis fuzzer of request headers on real resources: Accept, Range, validators, content codings
and forwarding headers, well-formed or not, never get a 5xx; an error is the JSON error body.

Why beside the contract fuzzer: the contract declares few headers (schemathesis generates only those), but
negotiation, byte ranges, conditional requests and public URLs all read headers.
"""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import FuzzServer
from tests.fuzz.wire import sendable

MEDIA_TYPES = [
    "*/*",
    "application/*",
    "multipart/related",
    "application/dicom",
    "application/dicom+json",
    "application/json",
    "application/dicom+xml",
    "application/octet-stream",
    "image/jpeg",
    "image/jls",
    "image/jp2",
    "image/jphc",
    "image/jxl",
    "image/png",
    "image/gif",
    "image/dicom-rle",
    "application/x-deflate",
    "video/mpeg",
    "text/html",
    "*/dicom",
    "image",
    "/",
    "",
    "a/b/c",
]
PARAMETERS = [
    "q=0",
    "q=1",
    "q=0.5",
    "q=1.0001",
    "q=-1",
    "q=abc",
    "q=",
    "q=1e400",
    "q=0.000000000001",
    "type=application/dicom",
    'type="application/dicom"',
    'type="application/octet-stream"',
    "type=image/jpeg",
    'type="image/jls"',
    "type=",
    'type="',
    "transfer-syntax=*",
    "transfer-syntax=1.2.840.10008.1.2.1",
    'transfer-syntax="1.2.840.10008.1.2.4.80"',
    "transfer-syntax=1.2.840.10008.1.2.4.50",
    "transfer-syntax=1.2.840.10008.1.2.4.201",
    "transfer-syntax=1.2.3",
    "transfer-syntax=",
    "transfer-syntax=1.2.840.10008.1.2.4.100",
    "charset=utf-8",
    "boundary=x",
    "=",
    "a",
    ";;",
]


@st.composite
def accept_headers(draw: st.DrawFn) -> str:
    ranges = []
    for _ in range(draw(st.integers(1, 4))):
        media = draw(st.sampled_from(MEDIA_TYPES))
        params = draw(st.lists(st.sampled_from(PARAMETERS), max_size=3))
        ranges.append("; ".join([media, *params]))
    return draw(st.sampled_from([", ", ",", " , ", ";"])).join(ranges)


range_headers = st.one_of(
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.one_of(st.just(""), st.integers(-5, 10**20).map(str)),
        st.one_of(st.just(""), st.integers(-5, 10**20).map(str)),
    ),
    st.sampled_from(
        ["bytes=0-0,5-9", "bytes=-0", "bytes=", "bytes=--1", "items=0-1", "bytes=1-0", "bytes=x-y"]
    ),
)
validators = st.sampled_from(['"abc"', "*", 'W/"x"', "", '"', "a" * 5000, '"x", "y"'])
dates = st.sampled_from(
    [
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "yesterday",
        "",
        "Mon, 32 Foo 2026 99:99:99 GMT",
    ]
)
forwarded = st.sampled_from(
    ["", "example.org", "https", "a b", "evil.example:99999", "/prefix", "..", "x" * 300]
)
garbage = st.text(max_size=200)


@st.composite
def request_headers(draw: st.DrawFn) -> dict[bytes, bytes]:
    choices = {
        "Accept": st.one_of(accept_headers(), garbage),
        "Range": st.one_of(range_headers, garbage),
        "If-None-Match": st.one_of(validators, garbage),
        "If-Modified-Since": st.one_of(dates, garbage),
        "Accept-Encoding": st.one_of(
            st.sampled_from(["gzip", "br", "br;q=0, gzip;q=0", "*;q=0", "identity;q=0"]), garbage
        ),
        "X-Forwarded-Host": st.one_of(forwarded, garbage),
        "X-Forwarded-Proto": st.one_of(forwarded, garbage),
        "X-Forwarded-Prefix": st.one_of(forwarded, garbage),
    }
    names = draw(st.lists(st.sampled_from(sorted(choices)), min_size=1, max_size=4, unique=True))
    headers = {name: draw(choices[name]) for name in names}
    encoded = {name.encode("ascii"): value.encode("utf-8") for name, value in headers.items()}
    return {name: value for name, value in encoded.items() if sendable(value)}


def resources(server: FuzzServer) -> list[str]:
    stored = server.stored
    study = f"/studies/{stored.study}"
    series = f"{study}/series/{stored.series}"
    instance = f"{series}/instances/{stored.instances[0]}"
    return [
        study,
        series,
        instance,
        f"{instance}/metadata",
        f"{study}/metadata",
        f"{instance}/frames/1",
        f"{instance}/frames/3,1",
        f"{instance}/pixeldata",
        f"{study}/bulkdata",
        f"{instance}/bulkdata/7FE00010",
        f"{instance}/rendered",
        f"{instance}/frames/2/rendered",
        f"{series}/thumbnail",
        "/studies",
        f"{study}/instances",
    ]


@fuzz_settings()
@given(data=st.data(), headers=request_headers())
def test_hostile_headers_never_get_a_server_error(
    fuzz_server: FuzzServer, data: st.DataObject, headers: dict[bytes, bytes]
) -> None:
    path = data.draw(st.sampled_from(resources(fuzz_server)), label="path")
    response = httpx.get(fuzz_server.dicomweb + path, headers=headers, timeout=30)
    assert response.status_code < 500, f"{response.status_code} for {headers}: {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] == response.status_code
        assert body["error"], "an error names its problem"
