"""Fovea servers as real processes (`fovea serve`), each in its own process group so a test can kill
the server and every process it started (ingest workers, the fork server) at once, as a crash would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.settings import Settings
from tests.conftest import free_port

FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]


def settings_environment(settings: Settings) -> dict[str, str]:
    """FOVEA_* variables that give a process `settings` (the fields set explicitly)."""
    values = settings.model_dump(exclude_unset=True)
    return {f"FOVEA_{name.upper()}": str(value) for name, value in values.items() if value is not None}


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.base_url}/dicom-web"

    def kill(self) -> None:
        """SIGKILL to the whole process group: no clean-up code runs anywhere."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(settings: Settings, log: Path, *, startup_timeout_s: float = 60) -> ServerProcess:
    """`fovea serve` on a free loopback port, returned once `/health` answers 200."""
    port = free_port()
    environment = {
        **os.environ,
        **settings_environment(settings),
        "FOVEA_HOST": "127.0.0.1",
        "FOVEA_PORT": str(port),
    }
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [*FOVEA, "serve", "--log-level", "warning"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fovea serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"fovea serve did not answer within {startup_timeout_s} s: {log.read_text()[-2000:]}")


@contextmanager
def running_server(settings: Settings, log: Path) -> Iterator[ServerProcess]:
    server = start_server(settings, log)
    try:
        yield server
    finally:
        server.stop()
