"""Retrieve Capabilities (PS3.18 8.9): OPTIONS on the DICOMweb base and on each resource.

The description is checked against its schema in the published contract, against the routes the app
serves, and against the server itself: every media type and transfer syntax it offers is one the
server negotiates, every query key one a search takes.
"""

from __future__ import annotations

from concurrent.futures import Executor
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import jsonschema
import pytest
import yaml
from pydicom.uid import generate_uid

from app.imaging.codec_pool import CodecPool
from app.main import create_app
from app.settings import Settings
from tests.conformance.test_openapi import CONTRACT_PATH, endpoint_routes
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance
from tests.integration.auth_helpers import new_key
from tests.integration.stow_helpers import post_stow

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)

JSON, WADL = "application/json", "application/vnd.sun.wadl+xml"
INSTANCE_TEMPLATE = "studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}"
WADL_NS = {"w": "http://wadl.dev.java.net/2009/02"}


@cache
def validator() -> jsonschema.Draft202012Validator:
    contract = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator({**contract, "$ref": "#/components/schemas/Capabilities"})


def describe(server: LiveServer, path: str = "", accept: str = JSON) -> httpx.Response:
    return httpx.request("OPTIONS", f"{server.dicomweb}{path}", headers={"Accept": accept}, timeout=30)


def capabilities(server: LiveServer, path: str = "") -> dict[str, Any]:
    response = describe(server, path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    document: dict[str, Any] = response.json()
    validator().validate(document)
    return document


def methods_by_path(document: dict[str, Any]) -> dict[str, set[str]]:
    return {item["path"]: {method["name"] for method in item["methods"]} for item in document["resources"]}


def served_dicomweb_routes(data_dir: Path) -> dict[str, set[str]]:
    """The DICOMweb routes the app serves, as `path below the base` -> methods (HEAD, OPTIONS aside)."""
    served: dict[str, set[str]] = {}
    for route in endpoint_routes(create_app(Settings(data_dir=data_dir))):
        path, methods = getattr(route, "path", ""), set(getattr(route, "methods", None) or ())
        methods -= {"HEAD", "OPTIONS"}
        if not path.startswith("/dicom-web/") or path == "/dicom-web/openapi.json" or not methods:
            continue
        below = path.removeprefix("/dicom-web/").replace(":path}", "}")
        served.setdefault(below, set()).update(methods)
    return served


def test_base_describes_exactly_the_served_resources(live_server: LiveServer, tmp_path: Path) -> None:
    document = capabilities(live_server)

    assert document["base"] == live_server.dicomweb
    assert methods_by_path(document) == served_dicomweb_routes(tmp_path)


def test_wadl_is_the_default_and_says_the_same(live_server: LiveServer) -> None:
    as_json = capabilities(live_server)
    for accept in ("", "*/*", WADL):
        response = httpx.request(
            "OPTIONS", live_server.dicomweb, headers={"Accept": accept} if accept else {}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == WADL
        application = ElementTree.fromstring(response.content)
        [resources] = application.findall("w:resources", WADL_NS)
        assert resources.get("base") == live_server.dicomweb + "/"
        described = {
            element.get("path"): {method.get("name") for method in element.findall("w:method", WADL_NS)}
            for element in resources.findall("w:resource", WADL_NS)
        }
        assert described == methods_by_path(as_json)


def test_a_resource_describes_itself_and_what_is_below_it(live_server: LiveServer) -> None:
    response = describe(live_server, "/studies/1.2.3")
    document = capabilities(live_server, "/studies/1.2.3")

    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, POST"
    paths = set(methods_by_path(document))
    assert "studies/{study_instance_uid}" in paths
    assert "studies/{study_instance_uid}/series/{series_instance_uid}/metadata" in paths
    assert all(path.startswith("studies/{study_instance_uid}") for path in paths)
    assert "DELETE" in methods_by_path(document)["studies/{study_instance_uid}"]
    frames = describe(live_server, "/studies/1/series/2/instances/3/frames/1,2")
    assert frames.status_code == 200 and frames.headers["allow"] == "GET, HEAD, OPTIONS"


def test_unknown_paths_stay_404_and_other_methods_405(live_server: LiveServer) -> None:
    assert describe(live_server, "/nothing/here").status_code == 404
    assert httpx.get(f"{live_server.dicomweb}/nothing/here").status_code == 404
    assert httpx.put(f"{live_server.dicomweb}/studies").status_code == 405


def test_an_unacceptable_accept_is_406(live_server: LiveServer) -> None:
    response = describe(live_server, accept="image/png")
    assert response.status_code == 406
    assert WADL in response.json()["error"]


def method_of(document: dict[str, Any], path: str, name: str = "GET") -> dict[str, Any]:
    [item] = [item for item in document["resources"] if item["path"] == path]
    methods: list[dict[str, Any]] = [method for method in item["methods"] if method["name"] == name]
    [method] = methods
    return method


def accept_values(method: dict[str, Any]) -> list[tuple[str, str]]:
    """Each offered response as (Accept header, the Content-Type it must produce, less parameters)."""
    values = []
    for representation in method["responses"]:
        media_type = representation["mediaType"]
        for syntax in representation.get("transferSyntaxes") or [None]:
            value = (
                f'multipart/related; type="{media_type}"' if representation.get("multipart") else media_type
            )
            values.append((value + (f"; transfer-syntax={syntax}" if syntax else ""), media_type))
    return values


def test_every_offered_representation_is_negotiated(live_server: LiveServer) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    assert (
        post_stow(live_server, [make_instance(study_uid=study, series_uid=series, sop_uid=sop)]).status_code
        == 200
    )
    document = capabilities(live_server)
    instance = f"studies/{study}/series/{series}/instances/{sop}"
    targets = {
        INSTANCE_TEMPLATE + "/frames/{frame_list}": f"{instance}/frames/1",
        INSTANCE_TEMPLATE + "/metadata": f"{instance}/metadata",
        INSTANCE_TEMPLATE + "/rendered": f"{instance}/rendered",
        INSTANCE_TEMPLATE: instance,
        "studies": "studies",
    }
    produced = 0
    for template, path in targets.items():
        for accept, media_type in accept_values(method_of(document, template)):
            response = httpx.get(f"{live_server.dicomweb}/{path}", headers={"Accept": accept}, timeout=60)
            # 406 only where no encoder makes that syntax from this instance; never 400 (not understood)
            assert response.status_code in (200, 406), (accept, response.status_code, response.text[:200])
            if response.status_code == 406:
                assert "transfer-syntax=" in accept, accept
                continue
            produced += 1
            content_type = response.headers["content-type"]
            assert media_type in content_type, (accept, content_type)
    assert produced >= 15


def test_every_query_key_is_one_search_matches_on(live_server: LiveServer) -> None:
    document = capabilities(live_server)
    for path in ("studies", "series", "instances"):
        method = method_of(document, path)
        keys = method["queryKeys"]
        assert {"StudyInstanceUID", "PatientID"} <= {key["keyword"] for key in keys}
        for key in keys:  # universal matching on each: accepted, not 400
            for name in (key["keyword"], key["path"]):
                response = httpx.get(f"{live_server.dicomweb}/{path}", params={name: ""}, timeout=30)
                assert response.status_code == 200, (path, name, response.text)
        assert "includefield" in method["queryParameters"]


def test_store_lists_both_request_forms(live_server: LiveServer) -> None:
    store = method_of(capabilities(live_server), "studies", "POST")
    assert store["requests"] == [
        {"mediaType": "application/dicom", "multipart": True},
        {"mediaType": "application/dicom+json", "multipart": True},
        {"mediaType": "application/dicom+xml", "multipart": True},
    ]
    assert [r["mediaType"] for r in store["responses"]] == ["application/dicom+json", "application/dicom+xml"]


def test_cors_preflight_is_still_the_cors_answer(
    backend: Backend, worker_pool: Executor, codec_pool: CodecPool
) -> None:
    origin = "https://viewer.example"
    with start_live_server(backend, worker_pool, codec_pool, cors_origins=origin) as server:
        preflight = httpx.request(
            "OPTIONS",
            f"{server.dicomweb}/studies",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert not preflight.content.startswith(b"<?xml")

        plain = httpx.request(
            "OPTIONS", f"{server.dicomweb}/studies", headers={"Origin": origin, "Accept": JSON}
        )
        assert plain.status_code == 200
        assert plain.headers["access-control-allow-origin"] == origin
        validator().validate(plain.json())


def test_options_needs_no_credentials(backend: Backend, live_server: LiveServer) -> None:
    new_key(backend, "gateway")
    assert httpx.get(f"{live_server.dicomweb}/studies").status_code == 401

    response = describe(live_server)
    assert response.status_code == 200
    validator().validate(response.json())
