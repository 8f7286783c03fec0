"""The OHIF Viewer v3 finds a study stored through Fovea in its study list, opens it and draws it.

For a study stored as received (Explicit VR Little Endian) and one stored in JPEG 2000 Lossless. With
OHIF's own Accept (octet-stream, any syntax) Fovea decodes JPEG 2000 frames before sending them; with
image/jp2 accepted too, it sends them as stored and the viewer's JPEG 2000 decoder draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from e2e.canvas import canvas_stats
from e2e.conftest import SERVER_THUMBNAILS
from e2e.servers import Deployment
from e2e.study import StoredStudy, first_series_pixels, stored_transfer_syntaxes
from e2e.viewer import (
    open_study_from_study_list,
    part_transfer_syntaxes,
    study_row,
    viewport_canvas,
    wait_for_drawn_canvas,
)

STUDY_LIST_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class ViewerCase:
    study: str  # key of the `studies` fixture
    stored_syntax: str
    viewer: str  # key of the deployment's viewer URLs
    frames_syntax: str  # the syntax the viewer receives frames in

    def __str__(self) -> str:
        return f"{self.study}-{self.viewer}"


CASES = (
    ViewerCase("native", ExplicitVRLittleEndian, "default", ExplicitVRLittleEndian),
    ViewerCase("jpeg2000", JPEG2000Lossless, "default", ExplicitVRLittleEndian),
    ViewerCase("jpeg2000", JPEG2000Lossless, "jpeg2000-as-stored", JPEG2000Lossless),
)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_study_opened_from_study_list_is_drawn(
    case: ViewerCase,
    deployment: Deployment,
    studies: dict[str, StoredStudy],
    page: Page,
    artifacts: Path,
) -> None:
    study = studies[case.study]
    assert stored_transfer_syntaxes(deployment.fovea.dicomweb_url, study) == {case.stored_syntax}
    frame_responses: list[Response] = []
    thumbnail_responses: list[Response] = []

    def keep_frame_response(response: Response) -> None:
        if "/frames/" in response.url and "/rendered" not in response.url:
            frame_responses.append(response)
        if "/thumbnail" in response.url:
            thumbnail_responses.append(response)

    page.on("response", keep_frame_response)

    page.goto(deployment.viewer_urls[case.viewer])
    expect(study_row(page, study.patient_name)).to_be_visible(timeout=STUDY_LIST_TIMEOUT_MS)
    page.screenshot(path=artifacts / "study-list.png")
    open_study_from_study_list(page, study.patient_name, study.study_instance_uid)
    png = wait_for_drawn_canvas(page)

    (artifacts / "canvas.png").write_bytes(png)
    viewport_canvas(page).screenshot(path=artifacts / "viewport.png")
    page.screenshot(path=artifacts / "viewer.png")
    stats = canvas_stats(png, first_series_pixels())
    problems = stats.problems()
    assert not problems, f"the viewport does not show the image: {problems} ({stats})"
    received = set().union(
        *(part_transfer_syntaxes(r.headers["content-type"], r.body()) for r in frame_responses if r.ok)
    )
    assert received == {case.frames_syntax}, f"frames reached the viewer as {received or 'nothing'}"
    if case.viewer in SERVER_THUMBNAILS:  # OHIF's series thumbnails came from Fovea's thumbnail resource
        drawn = [r for r in thumbnail_responses if r.ok and r.headers["content-type"] == "image/jpeg"]
        assert drawn, f"no thumbnail reached the viewer: {[(r.url, r.status) for r in thumbnail_responses]}"
