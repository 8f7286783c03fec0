"""What a retrieval says about a scope it cannot serve (its description, 404 and 410 messages), and
what it meets when the scope changed under it."""

from __future__ import annotations

from collections.abc import Iterable

from app.dicomweb.errors import Gone
from app.dicomweb.scope import Scope
from app.store.infra.blobs import BlobNotFound
from app.store.read.retrieval import InstanceChanged, StoredInstance

# What a read meets when a writer replaced an instance after the read looked it up: the frame table is
# gone at once; the blob only after the deletion grace period, so a slow read may still meet that.
CHANGED_SINCE_LOOKUP = (InstanceChanged, BlobNotFound)


def refuse_if_unavailable(instances: Iterable[StoredInstance]) -> None:
    """410 Gone when every one of `instances` has a flagged file (one instance: when it has)."""
    reasons = [instance.unavailable_reason for instance in instances]
    if reasons and all(reasons):
        raise Gone(str(reasons[0]) if len(reasons) == 1 else f"{len(reasons)} instances: {reasons[0]}")


def scope_description(scope: Scope) -> str:
    """`instance X in series Y`, `series Y in study Z` or `study Z`, for messages."""
    if scope.sop_instance_uid is not None:
        return f"instance {scope.sop_instance_uid} in series {scope.series_instance_uid}"
    if scope.series_instance_uid is not None:
        return f"series {scope.series_instance_uid} in study {scope.study_instance_uid}"
    return f"study {scope.study_instance_uid}"


def not_found_message(scope: Scope) -> str:
    return f"no {scope_description(scope)}"
