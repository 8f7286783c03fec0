"""Fixtures: a live Fovea with the test studies stored, the OHIF Viewer served next to it, and a browser.

`make e2e` prepares what these need (Debian's chromium, the OHIF build in .e2e-cache/) and runs them
with FOVEA_E2E_OHIF_DIST set to that build's dist/; screenshots and logs land in test-artifacts/e2e/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Page
from pydicom.uid import JPEG2000Lossless

from e2e.browser import PageLog, chromium_context
from e2e.ohif import AS_STORED_JPEG2000_ACCEPT, ohif_config, ohif_static_app
from e2e.servers import Deployment, free_port, run_fovea, serve_in_thread
from e2e.study import StoredStudy, store_instances, transcode_study, write_study

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "e2e"


# Viewer configurations, each served on its own origin: OHIF's own frames Accept, and one that lets
# Fovea send JPEG 2000 frames as stored and draw the series thumbnails itself.
VIEWER_FRAMES_ACCEPT = {"default": None, "jpeg2000-as-stored": AS_STORED_JPEG2000_ACCEPT}
SERVER_THUMBNAILS = {"jpeg2000-as-stored"}


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Fovea (`fovea serve`, fresh SQLite and folder) and each OHIF configuration on its own port.

    OHIF's origins differ from Fovea's, so Fovea must allow them by CORS, as it would a real viewer.
    """
    ohif_dist = Path(os.environ.get("FOVEA_E2E_OHIF_DIST", "<unset>"))
    if not (ohif_dist / "index.html").is_file():
        pytest.fail(f"no OHIF build in FOVEA_E2E_OHIF_DIST={ohif_dist}: `make e2e` fetches one and sets it")
    ports = {name: free_port() for name in VIEWER_FRAMES_ACCEPT}
    cors = {"FOVEA_CORS_ORIGINS": ",".join(f"http://127.0.0.1:{port}" for port in ports.values())}
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # no screenshot of an earlier run is left to mislead
    ARTIFACTS.mkdir(parents=True)
    with run_fovea(tmp_path_factory.mktemp("fovea"), cors) as fovea, ExitStack() as viewers:
        try:
            urls = {
                name: viewers.enter_context(
                    serve_in_thread(
                        ohif_static_app(
                            ohif_dist,
                            ohif_config(
                                fovea.dicomweb_url, accept, server_thumbnails=name in SERVER_THUMBNAILS
                            ),
                        ),
                        port,
                    )
                )
                for (name, accept), port in zip(VIEWER_FRAMES_ACCEPT.items(), ports.values(), strict=True)
            }
            yield Deployment(fovea, urls)
        finally:
            shutil.copyfile(fovea.log_path, ARTIFACTS / "fovea.log")


@pytest.fixture(scope="session")
def studies(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, StoredStudy]:
    """The two studies the tests open, stored by STOW-RS: one as received, one in JPEG 2000 Lossless."""
    folder = tmp_path_factory.mktemp("studies")
    native = write_study(folder / "native", "Fovea^Native", "Fovea e2e native")
    jpeg2000 = transcode_study(
        write_study(folder / "jpeg2000-source", "Fovea^Jpeg2000", "Fovea e2e JPEG 2000"),
        folder / "jpeg2000",
        JPEG2000Lossless,
    )
    for study in (native, jpeg2000):
        response = store_instances(deployment.fovea.dicomweb_url, study.files)
        assert response.status_code == 200, f"STOW-RS answered {response.status_code}: {response.text}"
    return {"native": native, "jpeg2000": jpeg2000}


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A fresh folder for this test's screenshots and logs under test-artifacts/e2e/."""
    test_name: str = request.node.name
    folder = ARTIFACTS / test_name.replace("[", "-").rstrip("]")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def page(tmp_path: Path, artifacts: Path) -> Iterator[Page]:
    """A page in a fresh Chromium profile; what went wrong in it is printed (shown on failure) and saved."""
    log = PageLog()
    with chromium_context(tmp_path / "chromium-profile") as context:
        page = context.new_page()
        log.attach(page)
        try:
            yield page
        finally:
            (artifacts / "browser.log").write_text(str(log) + "\n")
            print(f"browser log ({artifacts / 'browser.log'}):\n{log}")
