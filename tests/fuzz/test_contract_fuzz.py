"""Schemathesis against the served contract (/dicom-web/openapi.json) and a live Fovea: never a 5xx.

Every operation of the contract gets requests generated from its parameters' schemas, valid and not:
query parameters, path segments and headers. Each response must not be a server error, must use a status
code and media type the contract documents for that operation, and must match the documented schema.
Path parameters draw from the stored study's UIDs as well as from the UID pattern, so that frames,
metadata and rendered images of real instances are asked for too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as openapi_checks

from app.lifecycle.pseudonyms import Pseudonyms
from tests.conformance.test_openapi import CONTRACT_PATH
from tests.dicom_files import multipart_body, stow_content_type
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import FUZZ_DEID_SECRET, FuzzServer

CHECKS = [
    st_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


# Values the contract allows, and values it does not (which must be refused with a 4xx, never a 5xx).
GENERATION_MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
PATH_PARAMETER = re.compile(r"\{([^{}/]+)\}")
FUZZ_BOUNDARY = "fovea-fuzz"


# The requests transport calls it and wants this dict (as its JSON serializer returns); the public
# decorator is typed for the bytes-returning form.
@schemathesis.serializer("multipart/related")  # type: ignore[arg-type]
def as_one_part(_context: Any, value: Any) -> dict[str, Any]:
    """A generated STOW-RS body (bytes) sent as the one part of a well-framed multipart/related body.

    Why: the contract's body is `format: binary`; framing it lets the bytes reach ingest, where a random
    part must become a Failed SOP Sequence entry. Framing faults have their own fuzzer (test_stow_fuzz.py).
    """
    body = value if isinstance(value, bytes) else str(value).encode()
    return {
        "data": multipart_body([body], FUZZ_BOUNDARY),
        "headers": {"Content-Type": stow_content_type(FUZZ_BOUNDARY)},
    }


def real_values(server: FuzzServer, path: str) -> dict[str, list[str]]:
    """Values for each path parameter that name something stored (replacement UIDs in the rendition)."""
    stored = server.stored
    uid = Pseudonyms(FUZZ_DEID_SECRET).uid if path.startswith("/dicom-web/deidentified/") else str
    return {
        "StudyInstanceUID": [uid(stored.study)],
        "SeriesInstanceUID": [uid(stored.series)],
        "SOPInstanceUID": [uid(instance) for instance in stored.instances],
        "FrameList": ["1", "3", "2,1", "1,2,3"],
        "BulkDataPath": ["7FE00010", "00100010"],
    }


def stored_path_parameters(path: str, data: st.DataObject, values: dict[str, list[str]]) -> dict[str, str]:
    """For each path parameter of `path`, half of the time, a value that names something stored."""
    chosen = {}
    for name in PATH_PARAMETER.findall(path):
        if name in values and data.draw(st.booleans(), label=f"stored {name}"):
            chosen[name] = data.draw(st.sampled_from(values[name]), label=name)
    return chosen


def contract_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, read from the YAML the server serves (a conformance test checks
    that the two are the same document)."""
    document = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "delete")
    ]


@pytest.fixture(scope="module")
def contract_schema(fuzz_server: FuzzServer) -> Any:
    """The served document, as schemathesis loads it from the live server."""
    return schemathesis.openapi.from_url(f"{fuzz_server.dicomweb}/openapi.json", timeout=30)


# Why not schemathesis' own pytest plugin (`from_fixture` + `parametrize`): it fails on pytest 9 (it sets
# `Function._nodeid`). Drawing each operation's cases with `st.data()` does the same generation.
@pytest.mark.parametrize(("method", "path"), contract_operations())
@fuzz_settings(default_examples=20)
@given(data=st.data())
def test_no_request_gets_a_server_error(
    method: str, path: str, data: st.DataObject, contract_schema: Any, fuzz_server: FuzzServer
) -> None:
    mode = data.draw(st.sampled_from(GENERATION_MODES), label="mode")
    # DELETE is fuzzed with generated UIDs only: deleting the stored study would leave the operations
    # fuzzed after it nothing real to ask for (test_delete*.py delete real data).
    stored = {} if method == "DELETE" else real_values(fuzz_server, path)
    fixed = stored_path_parameters(path, data, stored)
    operation = contract_schema[path][method]
    case = data.draw(operation.as_strategy(mode, path_parameters=fixed or None), label="case")
    case.call_and_validate(base_url=fuzz_server.server.base_url, checks=CHECKS, timeout=30)
