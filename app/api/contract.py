"""The published HTTP contract, openapi/openapi.yaml, served as JSON at GET /dicom-web/openapi.json.

Why: tools (schemathesis, client generators, API browsers) look for an OpenAPI document at a URL. The
contract is written by hand and tests keep it in step with the routes; the app serves that same document,
converted to JSON once, rather than a generated one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import orjson
import yaml
from fastapi import APIRouter, Response

router = APIRouter(tags=["admin"])

CONTRACT_FILE = "openapi.yaml"


def contract_path() -> Path:
    """The YAML contract: packaged inside `app` in a wheel, at the repository root in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_openapi" / CONTRACT_FILE, here.parent / "openapi" / CONTRACT_FILE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{CONTRACT_FILE} not found (expected app/_openapi/ or openapi/)")


@cache
def contract_json(path: Path) -> bytes:
    """The contract as JSON bytes; read once per process (it only changes with a new release)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return orjson.dumps(document)


@router.get("/openapi.json", summary="The published OpenAPI contract")
def published_contract() -> Response:
    return Response(contract_json(contract_path()), media_type="application/json")
