"""A share link opens one study in the OHIF Viewer while anonymous access is off.

Fovea runs with an API key in its index (so anonymous requests get 401) and a share secret. The study
is stored with the API key; `fovea share` prints a token; OHIF opened at
`/viewer?StudyInstanceUIDs=<uid>&token=<token>` sends it as `Authorization: Bearer` on every request
and draws the study. Another study stored on the same server stays out of reach of that token.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Request, Response

from e2e.canvas import canvas_stats
from e2e.ohif import ohif_config, ohif_static_app
from e2e.servers import FOVEA_COMMAND, FoveaProcess, free_port, run_fovea, serve_in_thread
from e2e.study import StoredStudy, first_series_pixels, store_instances, write_study
from e2e.viewer import viewport_canvas, wait_for_drawn_canvas

SHARE_SECRET = "e2e-share-secret-" + "s" * 32


@dataclass(frozen=True)
class SecuredDeployment:
    fovea: FoveaProcess
    viewer_url: str
    env: dict[str, str]
    shared: StoredStudy
    other: StoredStudy


def fovea_cli(env: dict[str, str], *args: str) -> str:
    """A `fovea` command with the server's settings; its last output line (the key or token)."""
    completed = subprocess.run(
        [str(FOVEA_COMMAND), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredDeployment]:
    data_dir = tmp_path_factory.mktemp("fovea-secured")
    viewer_port = free_port()
    env = {
        "FOVEA_DATA_DIR": str(data_dir),
        "FOVEA_SHARE_SECRETS": SHARE_SECRET,
        "FOVEA_CORS_ORIGINS": f"http://127.0.0.1:{viewer_port}",
    }
    writer = fovea_cli(env, "api-key", "create", "--name", "e2e-writer", "--scopes", "dicom.write")
    folder = tmp_path_factory.mktemp("shared-studies")
    shared = write_study(folder / "shared", "Fovea^Shared", "Fovea e2e shared")
    other = write_study(folder / "other", "Fovea^Private", "Fovea e2e private")
    dist = Path(os.environ.get("FOVEA_E2E_OHIF_DIST", "<unset>"))
    if not (dist / "index.html").is_file():
        pytest.fail(f"no OHIF build in FOVEA_E2E_OHIF_DIST={dist}: `make e2e` fetches one and sets it")
    with run_fovea(data_dir, env) as fovea:
        for study in (shared, other):
            response = store_instances(fovea.dicomweb_url, study.files, {"Authorization": f"Bearer {writer}"})
            assert response.status_code == 200, response.text
        with serve_in_thread(ohif_static_app(dist, ohif_config(fovea.dicomweb_url)), viewer_port) as viewer:
            yield SecuredDeployment(fovea, viewer, env, shared, other)


def test_anonymous_access_is_off(secured: SecuredDeployment) -> None:
    response = httpx.get(f"{secured.fovea.dicomweb_url}/studies")
    assert response.status_code == 401


def test_share_link_opens_the_study_in_ohif(secured: SecuredDeployment, page: Page, artifacts: Path) -> None:
    token = fovea_cli(secured.env, "share", secured.shared.study_instance_uid, "--expires", "1h")
    fovea_requests: list[Request] = []
    fovea_responses: list[Response] = []
    page.on("request", lambda r: fovea_requests.append(r) if r.url.startswith(secured.fovea.url) else None)
    page.on("response", lambda r: fovea_responses.append(r) if r.url.startswith(secured.fovea.url) else None)

    page.goto(
        f"{secured.viewer_url}/viewer?StudyInstanceUIDs={secured.shared.study_instance_uid}&token={token}"
    )
    png = wait_for_drawn_canvas(page)

    (artifacts / "canvas.png").write_bytes(png)
    viewport_canvas(page).screenshot(path=artifacts / "viewport.png")
    stats = canvas_stats(png, first_series_pixels())
    assert not stats.problems(), f"the viewport does not show the image: {stats.problems()} ({stats})"
    refused = [(r.url, r.status) for r in fovea_responses if r.status in (401, 403)]
    assert not refused, f"Fovea refused the share link's requests: {refused}"
    data_requests = [r for r in fovea_requests if r.method == "GET"]
    assert data_requests, "the viewer asked Fovea for nothing"
    assert all(r.headers.get("authorization") == f"Bearer {token}" for r in data_requests)
    other = httpx.get(
        f"{secured.fovea.dicomweb_url}/studies/{secured.other.study_instance_uid}/metadata",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert other.status_code == 403
