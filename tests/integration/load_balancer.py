"""nginx from Debian's package as a round-robin load balancer in front of Fovea processes, for a test.

Everything nginx writes (its configuration, temporary files, logs, pid file) stays in one folder of the
test's. The access log names the upstream that answered each request. `make test` installs nginx
(`make load-balancer`, Debian package nginx-light); without it the tests that need it are skipped with a
message saying so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

_INSTALL_HINT = "run `make load-balancer` (Debian package nginx-light)"
_CONFIGURATION = """\
{user}worker_processes 2;
pid {folder}/nginx.pid;
daemon off;
error_log {folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format upstream '$status $upstream_addr $upstream_status $request_method $uri';
    access_log {folder}/access.log upstream;
    client_body_temp_path {folder}/client-body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 0;
    upstream fovea {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://fovea;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering off;
            proxy_read_timeout 120s;
            # never send a request to a second server after the first failed: a STOW-RS replayed
            # elsewhere would hide exactly the failures the test is looking for
            proxy_next_upstream off;
        }}
    }}
}}
"""


@dataclass
class LoadBalancer:
    base_url: str
    folder: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.base_url}/dicom-web"

    def upstreams_used(self) -> dict[str, int]:
        """Requests each upstream (host:port) answered, from the access log."""
        counts: dict[str, int] = {}
        for line in (self.folder / "access.log").read_text().splitlines():
            upstream = line.split(" ")[1]
            counts[upstream] = counts.get(upstream, 0) + 1
        return counts


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )
    if found is None:
        pytest.skip(f"nginx is not installed; {_INSTALL_HINT}")
    return found


@contextmanager
def round_robin(upstreams: Sequence[str], folder: Path) -> Iterator[LoadBalancer]:
    """nginx on a free loopback port dealing requests to `upstreams` (base URLs) in turn."""
    binary = nginx_binary()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # a master started as root hands its workers to `nobody` unless told otherwise: they could not
    # write the temporary files under the test's folder
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    servers = "\n".join(f"        server {url.removeprefix('http://')};" for url in upstreams)
    configuration = folder / "nginx.conf"
    configuration.write_text(_CONFIGURATION.format(user=user, folder=folder, servers=servers, port=port))
    with open(folder / "nginx.out", "wb") as output:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(configuration), "-e", str(folder / "error.log")],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    balancer = LoadBalancer(f"http://127.0.0.1:{port}", folder)
    try:
        _wait_until_answering(balancer, process)
        yield balancer
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def _wait_until_answering(balancer: LoadBalancer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = (
                (balancer.folder / "error.log").read_text()
                if (balancer.folder / "error.log").exists()
                else ""
            )
            raise RuntimeError(f"nginx exited with {process.returncode}: {errors[-2000:]}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{balancer.base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("nginx did not answer within 30 s")
