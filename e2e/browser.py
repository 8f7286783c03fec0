"""Debian's Chromium driven by Playwright, and a log of what went wrong in the page.

Why the system browser: Playwright's own browser download is not reachable here, so Playwright is only
the driver; the flags keep Chromium from reaching out (updates, sync, QUIC) and from needing a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)

CHROMIUM_PATH = Path(os.environ.get("FOVEA_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = ViewportSize(width=1280, height=800)


@contextmanager
def chromium_context(user_data_dir: Path) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile in user_data_dir, closed on exit."""
    if not CHROMIUM_PATH.is_file():
        raise RuntimeError(f"{CHROMIUM_PATH} not found: `make e2e` installs Debian's chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir,
            executable_path=CHROMIUM_PATH,
            args=list(CHROMIUM_ARGS),
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class PageLog:
    """Console errors, failed requests and HTTP errors seen by a page, in order."""

    lines: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.lines.append(f"page error: {error}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.lines.append(f"console error: {message.text}")

    def _request_failed(self, request: Request) -> None:
        self.lines.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            request = response.request
            accept = request.headers.get("accept")
            self.lines.append(f"HTTP {response.status}: {request.method} {request.url} (Accept: {accept})")

    def __str__(self) -> str:
        return "\n".join(self.lines) or "(nothing logged)"
