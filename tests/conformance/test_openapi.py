"""openapi/openapi.yaml, the published contract, stays in step with the app.

Why: the contract is written by hand (the app serves it as JSON, never a generated one), so these tests
fail when a route is added, removed or renamed on one side only, when the STOW-RS handler can answer with
a status code the contract does not document, or when the served document differs from the YAML.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI, routing
from pydicom.uid import CTImageStorage

from app.dicomweb.errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from app.dicomweb.responses import (
    FailureReason,
    InstanceOutcome,
    WarningReason,
    store_response_dataset,
    store_status,
)
from app.main import create_app
from app.settings import Settings

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"
OPERATION_KEYS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
STOW_PATHS = ("/dicom-web/studies", "/dicom-web/studies/{}")
STOW_STATUSES = frozenset({200, 202, 400, 406, 409, 413, 415, 503})
# Raised by api/stow.py for the request as a whole; answered with the {"status", "error"} JSON body.
STOW_REQUEST_ERRORS = (BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType)
STORE_RESPONSE_TYPES = frozenset({"application/dicom+json", "application/dicom+xml"})
_PATH_PARAMETER = re.compile(r"\{[^{}/]+\}")

Operation = tuple[str, str]


def normalise(path: str) -> str:
    """`/studies/{study_instance_uid}` and `/studies/{StudyInstanceUID}` both become `/studies/{}`."""
    return _PATH_PARAMETER.sub("{}", path)


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    document = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{CONTRACT_PATH} is not a YAML mapping"
    return document


def contract_operations(contract: dict[str, Any]) -> set[Operation]:
    return {
        (method.upper(), normalise(path))
        for path, item in contract["paths"].items()
        for method in item
        if method in OPERATION_KEYS and method.upper() not in IGNORED_METHODS
    }


def endpoint_routes(app: FastAPI) -> list[Any]:
    """Every endpoint route of `app`, with the prefixes of included routers applied to its path.

    Why: older FastAPI releases list the APIRoutes themselves in `app.routes`; recent ones (0.165 here)
    keep each included router as one route there, and `routing.iter_route_contexts` flattens them.
    """
    flatten = getattr(routing, "iter_route_contexts", None)
    return list(flatten(app.routes)) if flatten is not None else list(app.routes)


def app_operations(data_dir: Path) -> set[Operation]:
    app = create_app(Settings(data_dir=data_dir))  # routes only: the lifespan never runs
    operations = {
        (method, normalise(route.path))
        for route in endpoint_routes(app)
        if getattr(route, "path", None) and getattr(route, "methods", None)
        for method in set(route.methods) - IGNORED_METHODS
    }
    assert operations, "found no routes in the app: has FastAPI changed how it lists them?"
    return operations


def operation(contract: dict[str, Any], method: str, normalised_path: str) -> dict[str, Any]:
    for path, item in contract["paths"].items():
        if normalise(path) == normalised_path and method.lower() in item:
            found: dict[str, Any] = item[method.lower()]
            return found
    raise AssertionError(f"{method} {normalised_path} is not in {CONTRACT_PATH.name}")


def resolve(contract: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` ("#/components/...") to the object it names."""
    while "$ref" in node:
        target: Any = contract
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = target
    return node


def local_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in local_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in local_refs(value)]
    return []


def test_contract_is_an_openapi_3_document(contract: dict[str, Any]) -> None:
    assert str(contract.get("openapi", "")).startswith("3."), "missing or wrong `openapi` version"
    assert contract["info"]["title"] and contract["info"]["version"]
    assert isinstance(contract["paths"], dict) and contract["paths"]
    for path, item in contract["paths"].items():
        assert path.startswith("/"), f"path {path!r} must start with '/'"
        operations = {key: value for key, value in item.items() if key in OPERATION_KEYS}
        assert operations, f"{path} has no operations"
        for method, body in operations.items():
            assert body.get("responses"), f"{method.upper()} {path} documents no responses"
            declared = {
                resolve(contract, p)["name"]
                for p in [*item.get("parameters", []), *body.get("parameters", [])]
                if resolve(contract, p)["in"] == "path"
            }
            templated = {name.strip("{}") for name in _PATH_PARAMETER.findall(path)}
            assert declared == templated, f"{method.upper()} {path}: path parameters {declared}"


def test_every_reference_in_the_contract_resolves(contract: dict[str, Any]) -> None:
    refs = local_refs(contract)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        resolve(contract, {"$ref": ref})  # a KeyError names the broken reference


def test_every_app_route_is_in_the_contract(contract: dict[str, Any], tmp_path: Path) -> None:
    missing = app_operations(tmp_path) - contract_operations(contract)
    assert not missing, f"routes of the app missing from {CONTRACT_PATH.name}: {sorted(missing)}"


def test_every_contract_operation_is_a_route_of_the_app(contract: dict[str, Any], tmp_path: Path) -> None:
    extra = contract_operations(contract) - app_operations(tmp_path)
    assert not extra, f"operations in {CONTRACT_PATH.name} the app does not serve: {sorted(extra)}"


def _outcome(failure: FailureReason | None = None, warning: WarningReason | None = None) -> InstanceOutcome:
    return InstanceOutcome(
        sop_class_uid=CTImageStorage,
        sop_instance_uid="1.2.3.4",
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.1",
        failure=failure,
        warning=warning,
        comment="why" if failure else "",
    )


def stow_statuses_from_code() -> set[int]:
    """Every status STOW-RS can answer: by the response table, and for the request as a whole."""
    clean, warned = _outcome(), _outcome(warning=WarningReason.REPLACED_STORED_INSTANCE)
    from_outcomes = {store_status([clean]), store_status([warned])}
    from_outcomes |= {store_status([_outcome(failure=reason)]) for reason in FailureReason}
    from_outcomes.add(store_status([_outcome(failure=reason) for reason in FailureReason]))  # mixed
    return from_outcomes | {error.status for error in STOW_REQUEST_ERRORS}


def test_the_listed_stow_statuses_are_those_the_code_produces() -> None:
    assert stow_statuses_from_code() == STOW_STATUSES


@pytest.mark.parametrize("path", STOW_PATHS)
def test_every_stow_status_is_documented(contract: dict[str, Any], path: str) -> None:
    documented = {int(code) for code in operation(contract, "POST", path)["responses"]}
    missing = STOW_STATUSES - documented
    assert not missing, f"POST {path} does not document {sorted(missing)}"


@pytest.mark.parametrize("path", STOW_PATHS)
def test_stow_responses_name_their_media_types(contract: dict[str, Any], path: str) -> None:
    """Store Instances Responses come as DICOM JSON or XML; request errors as the error JSON shape."""
    responses = operation(contract, "POST", path)["responses"]
    request_error_statuses = {error.status for error in STOW_REQUEST_ERRORS}
    for code in STOW_STATUSES:
        content = resolve(contract, responses[str(code)]).get("content", {})
        if code not in (406, 415):
            assert set(content) >= STORE_RESPONSE_TYPES, f"POST {path} {code}: {sorted(content)}"
        if code in request_error_statuses:
            schema = resolve(contract, content["application/json"]["schema"])
            assert schema["required"] == ["status", "error"], f"POST {path} {code}: {schema}"


def test_a_store_response_matches_the_contract_schema(contract: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    outcomes = [
        _outcome(),
        _outcome(warning=WarningReason.REPLACED_STORED_INSTANCE),
        _outcome(failure=FailureReason.STUDY_INSTANCE_UID_MISMATCH),
        InstanceOutcome(sop_class_uid="", sop_instance_uid="", failure=FailureReason.CANNOT_UNDERSTAND),
    ]
    dataset = store_response_dataset(
        outcomes,
        base_url="http://example.org/dicom-web",
    )
    schema = {**contract, "$ref": "#/components/schemas/StoreInstancesResponse"}
    jsonschema.Draft202012Validator(schema).validate(dataset)


def test_contract_passes_the_openapi_validator(contract: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(contract)


def test_public_operations_are_those_the_route_table_makes_public(contract: dict[str, Any]) -> None:
    """Which operations need no credentials is declared (`security: []`) exactly where the security
    layer's route table lets them through."""
    from app.security.route_scopes import requirement_for

    assert {"bearer", "apiKey", "shareToken"} <= set(contract["components"]["securitySchemes"])
    assert contract["security"] == [{"bearer": []}, {"apiKey": []}, {"shareToken": []}]
    for path, item in contract["paths"].items():
        for method, operation in item.items():
            if method not in OPERATION_KEYS:
                continue
            concrete = _PATH_PARAMETER.sub("1.2.3", path)
            declared_public = operation.get("security", contract["security"]) == []
            assert declared_public == requirement_for(method.upper(), concrete).public, (method, path)


def test_the_served_document_is_the_contract(contract: dict[str, Any], tmp_path: Path) -> None:
    """GET /dicom-web/openapi.json is the YAML contract, value for value, as JSON."""
    app = create_app(Settings(data_dir=tmp_path))  # the lifespan never runs: the route needs no services

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fovea") as client:
            return await client.get("/dicom-web/openapi.json")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == contract
    assert "/dicom-web/openapi.json" in response.json()["paths"]


def test_every_operation_that_needs_credentials_documents_401_and_403(contract: dict[str, Any]) -> None:
    """The authentication middleware answers them before routing, on every protected operation."""
    for path, item in contract["paths"].items():
        for method, body in item.items():
            if method not in OPERATION_KEYS or body.get("security", contract["security"]) == []:
                continue
            assert {"401", "403"} <= set(body["responses"]), f"{method.upper()} {path}"
