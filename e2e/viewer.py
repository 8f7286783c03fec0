"""Steps a user takes in the OHIF Viewer v3: pick a study in the study list, open it, look at the image.

Why read the canvas's own pixels: a screenshot of the viewport also captures what OHIF lays over it
(text overlays, the onboarding tour), which would pass a contrast check on a blank canvas.
"""

from __future__ import annotations

import base64
import re
import time

from playwright.sync_api import Locator, Page

from e2e.canvas import luminance

MODE_BUTTON = "Basic Viewer"  # OHIF's default longitudinal mode, shown once a study row is selected
VIEWPORT_CANVAS = ".viewport-element canvas.cornerstone-canvas"
DRAW_TIMEOUT_S = 60.0


def study_row(page: Page, patient_name: str) -> Locator:
    """The study list row of a patient; the list shows PatientName Family^Given as "Family, Given"."""
    return page.locator("tr", has_text=patient_name.replace("^", ", "))


def open_study_from_study_list(page: Page, patient_name: str, study_instance_uid: str) -> None:
    """Select the patient's study in the study list and launch it in the default mode."""
    study_row(page, patient_name).first.click()
    page.get_by_role("button", name=MODE_BUTTON).click()
    page.wait_for_url(re.compile(rf"/viewer\?.*StudyInstanceUIDs={re.escape(study_instance_uid)}"))


def viewport_canvas(page: Page) -> Locator:
    return page.locator(VIEWPORT_CANVAS).first


def canvas_png(page: Page) -> bytes:
    """The viewport canvas's pixels as PNG, read from the canvas itself (no DOM overlays)."""
    data_url = viewport_canvas(page).evaluate("canvas => canvas.toDataURL('image/png')")
    return base64.b64decode(data_url.split(",", 1)[1])


def wait_for_drawn_canvas(page: Page, timeout_s: float = DRAW_TIMEOUT_S) -> bytes:
    """The canvas once it shows something and two reads half a second apart agree; at the deadline,
    whatever it shows (the caller's checks then say what is wrong)."""
    viewport_canvas(page).wait_for(state="visible", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    previous = b""
    while True:
        png = canvas_png(page)
        if (png == previous and luminance(png).std() > 0) or time.monotonic() > deadline:
            return png
        previous = png
        time.sleep(0.5)


def part_transfer_syntaxes(content_type: str, body: bytes) -> set[str]:
    """The transfer-syntax parameters of a multipart/related response's parts (PS3.18 8.7.3.5)."""
    boundary = _parameter(content_type, "boundary")
    syntaxes = set()
    for part in body.split(b"--" + boundary.encode())[1:]:
        headers, _, _ = part.partition(b"\r\n\r\n")
        for line in headers.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type" and "transfer-syntax" in value:
                syntaxes.add(_parameter(value, "transfer-syntax"))
    return syntaxes


def _parameter(media_type: str, name: str) -> str:
    for parameter in media_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == name:
            return value.strip('"')
    raise ValueError(f"no {name} parameter in {media_type!r}")
