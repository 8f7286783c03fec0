"""WADO-RS never serves a file a fixity check flagged: 410 Gone with the reason for the instance, its
frames, bulk data and rendering; a series leaves it out (206); its metadata, from the index, stays."""

from __future__ import annotations

import httpx
import pytest
from pydicom.uid import generate_uid

from app.store.tools.verify_run import run_verify
from app.store.upkeep.verification import Selection
from tests.conftest import Backend, LiveServer
from tests.dicom_files import make_instance
from tests.integration.fixity_helpers import blob_key_of, flip_byte, remove
from tests.integration.stow_helpers import post_stow
from tests.integration.test_wado_instances import multipart_parts

ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def verify(backend: Backend) -> None:
    run_verify(
        backend.engine,
        backend.blobs,
        Selection(),
        orphan_grace_s=3600,
        emit=lambda _line: None,
    )


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_a_flagged_instance_answers_410_and_its_series_leaves_it_out(
    live_server: LiveServer, backend: Backend
) -> None:
    study, series = generate_uid(), generate_uid()
    corrupt, missing, good = generate_uid(), generate_uid(), generate_uid()
    sent = {
        sop: make_instance(study_uid=study, series_uid=series, sop_uid=sop, seed=n)
        for n, sop in enumerate((corrupt, missing, good))
    }
    assert post_stow(live_server, list(sent.values())).status_code == 200
    flip_byte(backend, blob_key_of(backend, corrupt), 2000)
    remove(backend, blob_key_of(backend, missing))
    verify(backend)

    series_url = f"{live_server.dicomweb}/studies/{study}/series/{series}"
    for sop, problem in ((corrupt, "corrupt"), (missing, "missing")):
        instance_url = f"{series_url}/instances/{sop}"
        for resource in ("", "/frames/1", "/rendered", "/thumbnail", "/bulkdata/7FE00010", "/pixeldata"):
            response = httpx.get(instance_url + resource, headers={"Accept": "*/*"})
            assert response.status_code == 410, (resource, response.text)
            assert response.json() == {
                "status": 410,
                "error": f"instance {sop} is unavailable: a fixity check found its stored file {problem}; "
                "it can be stored again, or its file restored and verified",
            }
        metadata = httpx.get(f"{instance_url}/metadata")
        assert metadata.status_code == 200  # the index still describes it

    whole = httpx.get(series_url, headers={"Accept": ANY_SYNTAX})
    assert whole.status_code == 206  # PS3.18 10.4.3: only some of the instances could be returned
    [(headers, body)] = multipart_parts(whole)
    assert body == sent[good]
    assert headers["content-location"].endswith(f"/instances/{good}")
    good_frame = httpx.get(f"{series_url}/instances/{good}/frames/1", headers={"Accept": "*/*"})
    assert good_frame.status_code == 200


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_series_whose_every_instance_is_flagged_answers_410(
    live_server: LiveServer, backend: Backend
) -> None:
    study, series = generate_uid(), generate_uid()
    sops = [generate_uid(), generate_uid()]
    instances = [make_instance(study_uid=study, series_uid=series, sop_uid=sop, seed=1) for sop in sops]
    assert post_stow(live_server, instances).status_code == 200
    for sop in sops:
        remove(backend, blob_key_of(backend, sop))
    verify(backend)
    series_url = f"{live_server.dicomweb}/studies/{study}/series/{series}"
    for resource in ("", "/pixeldata", "/rendered"):
        response = httpx.get(series_url + resource, headers={"Accept": "*/*"})
        assert response.status_code == 410, (resource, response.text)
        assert "missing" in response.json()["error"]
