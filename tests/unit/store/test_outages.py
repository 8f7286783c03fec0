"""Which failures are outages, and the one-line reason a 503 gives for them."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.store.infra.blobs import BlobStoreError
from app.store.infra.outages import is_outage, outage_reason


def test_database_reason_is_the_driver_first_line_without_sql_or_parameters() -> None:
    driver_error = Exception("canceling statement due to statement timeout\nCONTEXT: while locking tuple")
    exc = OperationalError(
        "SELECT * FROM patient WHERE patient_name = %(name)s", {"name": "Doe^Jane"}, driver_error
    )

    reason = outage_reason(exc)

    assert reason == "index database unavailable: canceling statement due to statement timeout"
    assert is_outage(exc)


def test_pool_and_blob_store_reasons() -> None:
    assert outage_reason(PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached")) == (
        "index database unavailable: no free connection in time"
    )
    assert outage_reason(BlobStoreError("S3 read of instances/ab/x.dcm failed: Read timeout")) == (
        "blob store unavailable: S3 read of instances/ab/x.dcm failed: Read timeout"
    )


def test_a_constraint_violation_is_not_an_outage() -> None:
    assert not is_outage(IntegrityError("INSERT ...", {}, Exception("duplicate key")))
    assert not is_outage(OSError("disk full"))  # only the blob store's own error counts
