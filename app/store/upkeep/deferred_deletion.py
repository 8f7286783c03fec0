"""Deferred blob deletion: the one way a blob is removed once the index has published it.

Why deferred: a read looks an instance up, then reads its blob, maybe minutes later (a large study
streams one instance after another). If a replacement removed the old blob at once, that read would fail
(NoSuchKey, a missing file). So whatever unlinks a blob from the index (a replacement, a
deletion: store/upkeep/deletion.py) calls `schedule_blob_deletion` in the same transaction: the blob is
then either still referenced or recorded here, never lost track of, whatever crashes when.
`delete_due_blobs` removes it once its grace period has passed; server processes run it periodically
and `fovea gc` on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, select, union

from app.store.infra.blobs import BlobNotFound, BlobStore
from app.store.infra.db import write_serializer_for
from app.store.infra.spool import Reclaimed
from app.store.tables import BlobDeletion, Instance

log = logging.getLogger(__name__)
_BATCH = 500


def schedule_blob_deletion(connection: Connection, key: str, after: datetime) -> None:
    """Record in the caller's transaction that blob `key` is to be deleted once `after` has passed."""
    connection.execute(insert(BlobDeletion).values(blob_key=key, delete_after=after))


def schedule_blob_deletions(connection: Connection, keys: Iterable[str], after: datetime) -> None:
    """`schedule_blob_deletion` for many keys at once (one statement, many rows)."""
    rows = [{"blob_key": key, "delete_after": after} for key in keys]
    if rows:
        connection.execute(insert(BlobDeletion), rows)


def referenced_keys(connection: Connection, keys: Iterable[str]) -> set[str]:
    """Those of `keys` that an instance row still refers to (as received or as its data blob)."""
    wanted = list(keys)
    if not wanted:
        return set()
    as_received = select(Instance.blob_key).where(Instance.blob_key.in_(wanted))
    as_data = select(Instance.data_blob_key).where(Instance.data_blob_key.in_(wanted))
    rows = connection.execute(union(as_received, as_data)).scalars()
    return {key for key in rows if key is not None}


def pending_keys(connection: Connection, keys: Iterable[str]) -> set[str]:
    """Those of `keys` that wait here for their deletion time."""
    wanted = list(keys)
    if not wanted:
        return set()
    query = select(BlobDeletion.blob_key).where(BlobDeletion.blob_key.in_(wanted))
    return set(connection.execute(query).scalars())


def delete_due_blobs(
    engine: Engine, blobs: BlobStore, *, now: datetime | None = None, dry_run: bool = False
) -> Reclaimed:
    """Delete every blob whose deletion time has come, then its row (a crash in between only means
    deleting an absent blob next time). A blob an instance refers to again is never deleted."""
    now = now or datetime.now(UTC)
    serialized_writes = write_serializer_for(engine)
    reclaimed = Reclaimed()
    after = ""
    while True:
        with engine.connect() as connection:
            keys = list(
                connection.execute(
                    select(BlobDeletion.blob_key)
                    .where(BlobDeletion.delete_after <= now, BlobDeletion.blob_key > after)
                    .order_by(BlobDeletion.blob_key)
                    .limit(_BATCH)
                ).scalars()
            )
            still_used = referenced_keys(connection, keys)
        if not keys:
            return reclaimed
        after = keys[-1]
        for key in keys:
            if key in still_used:
                log.warning("blob %s is scheduled for deletion but still referenced; kept", key)
            else:
                reclaimed += _delete_blob(blobs, key, dry_run=dry_run)
        if not dry_run:
            with serialized_writes(), engine.begin() as connection:
                connection.execute(delete(BlobDeletion).where(BlobDeletion.blob_key.in_(keys)))


def _delete_blob(blobs: BlobStore, key: str, *, dry_run: bool) -> Reclaimed:
    try:
        size = blobs.size(key)
    except BlobNotFound:  # deleted before a crash kept its row: only the row is left to remove
        return Reclaimed()
    if not dry_run:
        blobs.delete(key)
    return Reclaimed(1, size)
