"""Which failures mean "the index or the blob store is unavailable", and the one line that says so.

Why one place: an outage is not the client's fault and not a bug; every route answers it the same way
(503, Retry-After, this reason), and ingest reports it per instance the same way (0x0110). The reason
never carries SQL, parameters or URLs with credentials: only the driver's own first line.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.store.infra.blobs import BlobStoreError

INDEX_OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeoutError)
OUTAGES: tuple[type[Exception], ...] = (*INDEX_OUTAGES, BlobStoreError)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGES)


def outage_reason(exc: BaseException) -> str:
    """One line naming the part that failed and how, e.g. "index database unavailable: timeout"."""
    if isinstance(exc, PoolTimeoutError):
        return "index database unavailable: no free connection in time"
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        return f"index database unavailable: {detail}"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"blob store unavailable: {first_line}"
