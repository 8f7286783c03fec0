"""The server's background fixity check: it flags a damaged file on its own, one process at a time."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY
from pydicom.uid import generate_uid

from app.services import open_services
from app.store.upkeep.verification import Status
from app.store.upkeep.verification_job import FixityVerifier, verifier_turn
from tests.conftest import Backend
from tests.dicom_files import make_instance
from tests.integration.fixity_helpers import blob_key_of, fixity_state, flip_byte, ingest

BOTH = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)


def wait_for(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the background check did not get there"
        time.sleep(0.05)


@BOTH
def test_the_background_check_flags_a_damaged_file_and_leaves_the_good_one(backend: Backend) -> None:
    study, damaged, good = generate_uid(), generate_uid(), generate_uid()
    ingestor = backend.ingestor()
    for n, sop in enumerate((damaged, good)):
        ingest(ingestor, make_instance(study_uid=study, sop_uid=sop, seed=n))
    flip_byte(backend, blob_key_of(backend, damaged), 1500)

    corrupt_before = REGISTRY.get_sample_value("fovea_fixity_checks_total", {"status": "corrupt"}) or 0
    verifier = FixityVerifier(
        backend.engine, backend.blobs, interval_s=3600, bytes_per_s=100_000_000, idle_s=0.05
    )
    verifier.start()
    try:
        wait_for(lambda: fixity_state(backend, good)[1] and fixity_state(backend, damaged)[1])
    finally:
        verifier.stop()
    assert fixity_state(backend, damaged) == ("corrupt", True)
    assert fixity_state(backend, good) == (None, True)
    assert verifier.tally.counts[Status.CORRUPT] == verifier.tally.counts[Status.INTACT] == 1
    corrupt_after = REGISTRY.get_sample_value("fovea_fixity_checks_total", {"status": "corrupt"})
    assert corrupt_after == corrupt_before + 1


@BOTH
def test_one_process_holds_the_turn_at_a_time(backend: Backend) -> None:
    # The second holder uses another connection (or descriptor), as another process would.
    with verifier_turn(backend.engine) as first, verifier_turn(backend.engine) as second:
        assert (first, second) == (True, False)
    with verifier_turn(backend.engine) as again:
        assert again  # given back


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_server_runs_the_check_only_when_an_interval_is_set(backend: Backend) -> None:
    services = open_services(backend.settings(gc_interval_s=0, ingest_workers=1))
    try:
        assert services.verifier is None  # the default: off
    finally:
        services.close()
    services = open_services(backend.settings(gc_interval_s=0, ingest_workers=1, verify_interval_s=86400))
    try:
        assert services.verifier is not None
    finally:
        services.close()
