"""STOW-RS with metadata and bulk data: the spooled parts of a `type="application/dicom+json"` (or
`+xml`) body turned into one Part 10 file per instance (PS3.18 10.5.1.2.2), or why one was refused.

Why here: the body is read and checked like a Part 10 body (api/multipart.py); what differs is only how
parts become instances, and after that the same ingest runs. The JSON (or XML) parts are the metadata (a part
without a Content-Type counts as metadata when it comes first); every other part is bulk data, found by
its Content-Location (or `cid:` and its Content-ID, RFC 2392). Parts no instance points at are ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from python_multipart.multipart import parse_options_header

from app.api.multipart import SpooledPart
from app.dicomweb.errors import BadRequest, ServiceUnavailable
from app.dicomweb.json_part10 import BulkPart, BulkParts, read_metadata_part, write_part10
from app.dicomweb.mediatypes import canonical_media_type
from app.store.write.ingest import IngestResult, Outcome
from app.store.write.parse import InstanceProblem, Problem

Instance = Path | IngestResult  # a Part 10 file to ingest, or why there is none


def instances_from_parts(
    parts: Sequence[SpooledPart], directory: Path, max_instance_bytes: int, metadata_type: str
) -> list[Instance]:
    """One entry per data set of the metadata parts (of `metadata_type`, DICOM JSON or XML), in order;
    the files are written into `directory`."""
    metadata = [part for part in parts if _is_metadata(part, metadata_type)]
    if not metadata:
        raise BadRequest(f"the body has no {metadata_type} part: nothing describes an instance")
    metadata_indexes = {part.index for part in metadata}
    bulk = _bulk_parts(part for part in parts if part.index not in metadata_indexes)
    instances: list[Instance] = []
    try:
        for part in metadata:
            _add_instances(part, metadata_type, bulk, directory, max_instance_bytes, instances)
    except OSError as exc:  # the spool volume is full or failing: nothing is stored, the client may retry
        for instance in instances:
            if isinstance(instance, Path):
                instance.unlink(missing_ok=True)
        raise ServiceUnavailable(f"cannot write the instances described: {exc.strerror or exc}") from exc
    if not instances:
        raise BadRequest(f"the {metadata_type} parts describe no instance (empty arrays)")
    return instances


def _add_instances(
    part: SpooledPart,
    metadata_type: str,
    bulk: BulkParts,
    directory: Path,
    max_instance_bytes: int,
    instances: list[Instance],
) -> None:
    """Append the instances of one metadata part (one by one: after a failure the caller removes them)."""
    if part.too_large:
        instances.append(_refused(InstanceProblem(Problem.TOO_LARGE, _too_large(part, max_instance_bytes))))
        return
    try:
        data_sets = read_metadata_part(part.path.read_bytes(), metadata_type)
    except InstanceProblem as problem:
        instances.append(_refused(problem))
        return
    for data_set in data_sets:
        instances.append(_instance(data_set, bulk, directory, max_instance_bytes))


def _instance(data_set: object, bulk: BulkParts, directory: Path, max_instance_bytes: int) -> Instance:
    path = directory / f"stow-{uuid.uuid4().hex}.dcm"
    try:
        write_part10(data_set, bulk, path)
    except InstanceProblem as problem:
        return _refused(problem)
    size = path.stat().st_size
    if size > max_instance_bytes:
        path.unlink(missing_ok=True)
        message = (
            f"the instance built from the metadata ({size} bytes) exceeds the limit of {max_instance_bytes}"
        )
        return _refused(InstanceProblem(Problem.TOO_LARGE, message))
    return path


def _is_metadata(part: SpooledPart, metadata_type: str) -> bool:
    return part.content_type == metadata_type or (part.index == 0 and not part.content_type)


def _bulk_parts(parts: Iterable[SpooledPart]) -> BulkParts:
    found: dict[str, list[BulkPart]] = {}
    for part in parts:
        media_type, params = parse_options_header(part.headers.get("content-type", ""))
        syntax = params.get(b"transfer-syntax")
        bulk = BulkPart(
            part.path,
            canonical_media_type(media_type.decode("latin-1")) if media_type else "",
            syntax.decode("latin-1").strip() if syntax else None,
            part.size,
            part.too_large,
        )
        for key in _locations(part):
            found.setdefault(key, []).append(bulk)
    return found


def _locations(part: SpooledPart) -> list[str]:
    keys = []
    if location := part.headers.get("content-location", "").strip():
        keys.append(location)
    if content_id := part.headers.get("content-id", "").strip().removeprefix("<").removesuffix(">"):
        keys.append(f"cid:{content_id}")
    return keys


def _too_large(part: SpooledPart, max_instance_bytes: int) -> str:
    return f"metadata part {part.index + 1} exceeds the instance size limit of {max_instance_bytes} bytes"


def _refused(problem: InstanceProblem) -> IngestResult:
    return IngestResult(
        Outcome.FAILED,
        problem.sop_class_uid,
        problem.sop_instance_uid,
        problem=problem.problem,
        message=problem.message,
    )
