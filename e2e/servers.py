"""The two servers a browser test needs: Fovea as a real process, and any ASGI app in a thread.

Why a process for Fovea: the browser test should exercise what `fovea serve` really runs (settings from
FOVEA_* variables, its own lifespan and worker pools), not an app assembled by the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

FOVEA_COMMAND = Path(sys.executable).with_name("fovea")
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class FoveaProcess:
    url: str  # http://127.0.0.1:PORT, without /dicom-web
    log_path: Path

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class Deployment:
    """Fovea and the viewer that shows what it stores, each on its own loopback port."""

    fovea: FoveaProcess
    viewer_urls: dict[str, str]  # OHIF's URL by viewer configuration name


@contextmanager
def run_fovea(data_dir: Path, env: Mapping[str, str]) -> Iterator[FoveaProcess]:
    """`fovea serve` on a free loopback port with its data in data_dir; stopped on exit."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "fovea.log"
    process_env = {**os.environ, "FOVEA_DATA_DIR": str(data_dir), **env}
    command = [str(FOVEA_COMMAND), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=process_env, stdout=log, stderr=subprocess.STDOUT)
    fovea = FoveaProcess(f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_healthy(fovea, process)
        yield fovea
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(fovea: FoveaProcess, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fovea serve exited with {process.returncode}:\n{fovea.log()}")
        try:
            if httpx.get(f"{fovea.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    raise RuntimeError(f"fovea serve not healthy after {START_TIMEOUT_S:.0f} s:\n{fovea.log()}")


@contextmanager
def serve_in_thread(app: ASGIApp, port: int) -> Iterator[str]:
    """Serve an ASGI app on a loopback port in a daemon thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("static server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
