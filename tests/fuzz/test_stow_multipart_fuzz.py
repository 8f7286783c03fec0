"""Hypothesis fuzzer of STOW-RS multipart/related framing: hostile bodies get a 4xx or a proper Store
response, never a 5xx or a hang, and the store stays consistent.

Bodies are built from parts (a small valid instance, random bytes, nothing, a nested multipart body, bytes
that contain the boundary) with hostile part headers (huge lines, too many lines, no colon, odd types),
then framed with or without faults: boundaries of every shape, wrong or missing Content-Type parameters,
preamble and epilogue garbage, missing or bare-LF line breaks, a missing or mangled closing delimiter, a
body cut short. When the framing is faultless the outcome is also predicted part by part: every valid
instance in a part typed `application/dicom` (or untyped) is stored, every other part fails.
"""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass, field

import httpx
from hypothesis import given
from hypothesis import strategies as st

from tests.dicom_files import make_instance
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import FuzzServer
from tests.fuzz.store_oracle import assert_retrievable, assert_store_consistent, judge_store_answer
from tests.fuzz.wire import sendable

BCHARS = string.ascii_letters + string.digits + "'()+_,-./:=?"  # RFC 2046 boundary characters, no space
HEADER_LINE_LIMIT = 4224  # python-multipart's limit on one part header line (docs/conformance.md 3.1)


@dataclass
class Part:
    headers: list[bytes]
    content: bytes
    sop_instance_uid: str | None = None  # set when content is a valid instance
    header_fault: bool = False  # a header line the parser must refuse (400 for the request)
    typed_as_dicom: bool = True  # no Content-Type, or application/dicom

    @property
    def should_store(self) -> bool:
        return self.sop_instance_uid is not None and self.typed_as_dicom


@dataclass
class Body:
    content_type: bytes
    data: bytes
    parts: list[Part] = field(default_factory=list)
    faultless: bool = True  # framing and Content-Type are correct: the outcome can be predicted


def unique_uid() -> str:
    """A new UID of constant length: replaying an example must give bodies of the same size."""
    return f"2.25.1{uuid.uuid4().int % 10**38:038d}"


@st.composite
def valid_instances(draw: st.DrawFn) -> tuple[bytes, str]:
    sop = unique_uid()
    seed = draw(st.integers(0, 1000))
    study, series = unique_uid(), unique_uid()
    return make_instance(study_uid=study, series_uid=series, sop_uid=sop, rows=8, columns=8, seed=seed), sop


@st.composite
def part_contents(draw: st.DrawFn, boundary: bytes) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["instance", "instance", "random", "empty", "boundary-inside"]))
    if kind == "instance":
        data, sop = draw(valid_instances())
        return data, sop
    if kind == "random":
        return draw(st.binary(max_size=2048)), None
    if kind == "empty":
        return b"", None
    return b"junk\r\n--" + boundary + draw(st.sampled_from([b"", b"\r\n", b"--", b"x"])) + b"junk", None


DICOM_TYPES = [
    b"application/dicom",
    b"Application/DICOM",
    b'application/dicom; transfer-syntax="1.2.840.10008.1.2.1"',
]
OTHER_TYPES = [b"text/plain", b"application/dicom+json", b"application/octet-stream", b"image/jpeg", b"x"]


@st.composite
def part_headers(draw: st.DrawFn) -> tuple[list[bytes], bool, bool]:
    """(header lines, a fault the parser refuses, typed as DICOM)."""
    lines: list[bytes] = []
    typed_as_dicom = True
    choice = draw(st.sampled_from(["dicom", "none", "other"]))
    if choice == "dicom":
        lines.append(b"Content-Type: " + draw(st.sampled_from(DICOM_TYPES)))
    elif choice == "other":
        lines.append(b"Content-Type: " + draw(st.sampled_from(OTHER_TYPES)))
        typed_as_dicom = False
    token = st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=20).map(str.encode)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(token.filter(lambda n: n.lower() != b"content-type"))
        lines.append(
            name + b": " + draw(st.binary(max_size=64).filter(lambda v: b"\r" not in v and b"\n" not in v))
        )
    fault = draw(st.sampled_from(["none", "none", "none", "huge-line", "many-lines", "no-colon"]))
    if fault == "huge-line":
        lines.append(b"X-Huge: " + b"a" * draw(st.integers(HEADER_LINE_LIMIT, 3 * HEADER_LINE_LIMIT)))
    elif fault == "many-lines":
        lines.extend(b"X-Line-%d: v" % i for i in range(draw(st.integers(9, 40))))
    elif fault == "no-colon":
        lines.append(b"this line has no colon")
    return lines, fault != "none", typed_as_dicom


@st.composite
def parts(draw: st.DrawFn, boundary: bytes, *, nested: bool = True) -> Part:
    headers, fault, typed = draw(part_headers())
    if nested and draw(st.integers(0, 9)) == 0:
        inner = draw(bodies(nested=False))
        headers = [b"Content-Type: " + inner.content_type]
        return Part(headers, inner.data, typed_as_dicom=False)
    content, sop = draw(part_contents(boundary))
    return Part(headers, content, sop, fault, typed)


boundaries = st.one_of(
    st.text(alphabet=BCHARS, min_size=1, max_size=70),
    st.text(alphabet=BCHARS + ' "\\;', min_size=0, max_size=80),
    st.sampled_from(["b" * 200, "b" * 201, "-", "--", "==="]),
).map(str.encode)


@st.composite
def content_types(draw: st.DrawFn, boundary: bytes) -> tuple[bytes, bool]:
    """A request Content-Type and whether it is the correct one for `boundary`."""
    if draw(st.integers(0, 2)) > 0:
        quoted = b'"' + boundary + b'"' if draw(st.booleans()) else boundary
        return b'multipart/related; type="application/dicom"; boundary=' + quoted, True
    media = draw(
        st.sampled_from(
            [
                b"multipart/related",
                b"MULTIPART/Related",
                b"multipart/form-data",
                b"multipart/mixed",
                b"application/dicom",
                b"",
                b"multipart/",
                b"*/*",
            ]
        )
    )
    params = draw(
        st.lists(
            st.sampled_from(
                [
                    b'type="application/dicom"',
                    b"type=application/dicom",
                    b'type="application/dicom+json"',
                    b'type="application/dicom+xml"',
                    b"type=",
                    b'type="',
                    b"boundary=" + boundary,
                    b'boundary="' + boundary,
                    b"boundary=",
                    b'boundary=""',
                    b"BOUNDARY=" + boundary,
                    b"charset=utf-8",
                    b"start=<x>",
                    b"=",
                    b";",
                    b"boundary=other",
                ]
            ),
            max_size=5,
        )
    )
    return b"; ".join([media, *params]), False


@st.composite
def bodies(draw: st.DrawFn, *, nested: bool = True) -> Body:
    boundary = draw(boundaries)
    content_type, correct_type = draw(content_types(boundary))
    body_parts = draw(st.lists(parts(boundary, nested=nested), max_size=3))
    faultless = correct_type and 0 < len(boundary) <= 70 and set(boundary.decode()) <= set(BCHARS)
    crlf = b"\r\n"
    delimiter_end = header_end = crlf
    if draw(st.integers(0, 3)) == 0:
        delimiter_end = draw(st.sampled_from([b"\n", b"", b" \t\r\n"]))
        faultless = faultless and delimiter_end == b" \t\r\n"  # transport padding is allowed (RFC 2046)
    if draw(st.integers(0, 5)) == 0:
        header_end = draw(st.sampled_from([b"\n", b""]))
        faultless = False
    chunks = []
    if draw(st.integers(0, 3)) == 0:
        preamble = draw(st.one_of(st.binary(max_size=256), st.just(b"p" * 70_000)))
        chunks.append(preamble + crlf)
        faultless = faultless and b"--" + boundary not in preamble and len(preamble) < 60_000
    for part in body_parts:
        chunks.append(b"--" + boundary + delimiter_end)
        chunks.extend(line + header_end for line in part.headers)
        chunks.append(header_end)
        chunks.append(part.content)
        chunks.append(crlf)
        faultless = faultless and not part.header_fault and b"--" + boundary not in part.content
    closing = draw(st.sampled_from([b"--", b"--", b"--", b"", b"-", b"---"]))
    chunks.append(b"--" + boundary + closing)
    faultless = faultless and closing in (b"--", b"---")
    if draw(st.integers(0, 3)) == 0:
        epilogue = draw(st.binary(max_size=256))
        chunks.append(crlf + epilogue)
    data = b"".join(chunks)
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
        faultless = False
    faultless = faultless and bool(body_parts)
    return Body(content_type, data, body_parts, faultless)


@fuzz_settings()
@given(body=bodies())
def test_hostile_multipart_bodies_get_a_4xx_or_a_store_response(fuzz_server: FuzzServer, body: Body) -> None:
    headers = {b"Content-Type": body.content_type} if sendable(body.content_type) else {}
    response = httpx.post(f"{fuzz_server.dicomweb}/studies", content=body.data, headers=headers, timeout=60)
    answer = judge_store_answer(response, len(body.parts) if body.faultless else None)
    if body.faultless:
        expected = {part.sop_instance_uid for part in body.parts if part.should_store}
        assert set(answer.stored) == expected, f"stored {answer.stored}, expected {expected}"
    for sop in answer.stored:
        assert_retrievable(fuzz_server, sop)
    assert_store_consistent(fuzz_server)
