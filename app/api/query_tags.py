"""/admin/query-tags: declare, list and remove extended query tags over HTTP (admin scope).

Declaring answers 202 at once and back-fills the stored instances in a background thread; the tag's
`state` and `instancesDone` (GET) show the progress, and QIDO-RS matches on it once it is "ready".
The same operations as `fovea query-tags` (app/store/query_tags.py does the work for both).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.api.deps import get_services
from app.dicomweb.errors import BadRequest, Conflict, NotFound
from app.services import Services
from app.store.query_tags import (
    READY,
    ExtendedKey,
    QueryTagError,
    backfill,
    declare,
    declared_tags,
    find_tag,
    parse_declaration,
    remove,
)

router = APIRouter(tags=["admin"])
log = logging.getLogger(__name__)
PATH = "/admin/query-tags"
_FIELDS = frozenset({"tag", "level", "vr", "privateCreator"})
# The tags this process is back-filling: declaring one again while it runs starts no second back-fill.
_running: set[int] = set()
_running_lock = threading.Lock()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


@router.get(PATH, summary="List the extended query tags (admin scope)")
async def list_query_tags(request: Request) -> Response:
    services = get_services(request)
    keys = await services.run_blocking(_declared, services)
    return _json([key.describe() for key in keys])


@router.get(PATH + "/{tag}", summary="One extended query tag and its back-fill progress (admin scope)")
async def get_query_tag(request: Request, tag: str) -> Response:
    services = get_services(request)
    key = await services.run_blocking(_find, services, tag)
    return _json(key.describe())


@router.post(PATH, summary="Declare an extended query tag and back-fill it (admin scope)")
async def add_query_tag(request: Request) -> Response:
    services = get_services(request)
    body = _declaration_body(await request.body())
    try:
        declaration = parse_declaration(
            str(body["tag"]), str(body.get("level", "instance")), body.get("vr"), body.get("privateCreator")
        )
        key = await services.run_blocking(declare, services.engine, declaration)
    except QueryTagError as exc:
        raise (Conflict if "already declared" in str(exc) else BadRequest)(str(exc)) from exc
    headers = {"Location": f"{PATH}/{key.key.tag:08X}"}
    if key.state == READY:
        return _json(key.describe(), 200, headers)
    with _running_lock:
        if key.pk not in _running:
            _running.add(key.pk)
            threading.Thread(
                target=_backfill, args=(services, key), name="query-tag-backfill", daemon=True
            ).start()
    return _json(key.describe(), 202, headers)


@router.delete(PATH + "/{tag}", summary="Remove an extended query tag and drop its index (admin scope)")
async def remove_query_tag(request: Request, tag: str) -> Response:
    services = get_services(request)
    try:
        removed = await services.run_blocking(remove, services.engine, tag)
    except QueryTagError as exc:
        raise BadRequest(str(exc)) from exc
    if not removed:
        raise NotFound(f"{tag} is not an extended query tag")
    services.query_tags.forget()
    return Response(status_code=204)


def _declaration_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("tag"), str):
        raise BadRequest('the body is a JSON object with "tag" (keyword or tag) and "level"')
    unknown = set(body) - _FIELDS
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}; known: {', '.join(sorted(_FIELDS))}")
    for name in _FIELDS - {"tag"}:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequest(f"{name} is a string")
    return body


def _declared(services: Services) -> list[ExtendedKey]:
    with services.engine.connect() as connection:
        return declared_tags(connection)


def _find(services: Services, tag: str) -> ExtendedKey:
    try:
        with services.engine.connect() as connection:
            key = find_tag(connection, tag)
    except QueryTagError as exc:
        raise BadRequest(str(exc)) from exc
    if key is None:
        raise NotFound(f"{tag} is not an extended query tag")
    return key


def _backfill(services: Services, key: ExtendedKey) -> None:
    try:
        done = backfill(services.engine, key)
        log.info("extended query tag %s ready: %d instances indexed", done.name, done.instances_done)
    except Exception:  # the tag stays "backfilling"; declaring it again resumes
        log.exception("back-fill of extended query tag %s stopped", key.name)
    finally:
        with _running_lock:
            _running.discard(key.pk)
        services.query_tags.forget()
