"""What authentication costs: native frame latency with auth off and on, in one run.

Two `fovea serve` processes hold the same 512x512 16-bit instance: one anonymous (loopback, nothing
configured), one with API keys, an OIDC issuer (a key set served by this script) and share tokens.
Requests alternate between them, so both see the same machine load. Target (issue 13): authentication
costs <= 0.1 ms per request once a token's decision is cached; the precise figure is
`authenticate_in_process` (the middleware called in this process with a cached token), the HTTP cases
show it end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import numpy as np
from common import (
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    emit,
    health_rtt_ms,
    latency_fields,
    machine_facts,
    stop_on_sigterm,
    write_results,
)
from cryptography.hazmat.primitives.asymmetric import ec
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(REPO_ROOT))

from app.security.share_tokens import issue_share_token

TARGET_MS = 0.1
AUDIENCE = "urn:fovea-bench"
SHARE_SECRET = "bench-share-secret-" + "x" * 32
SIZE = 512


def frame_instance() -> tuple[bytes, str, str, str, bytes]:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = "BENCH", "CT"
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    pixels = np.random.default_rng(0).integers(-1024, 3000, (SIZE, SIZE), dtype=np.int16).tobytes()
    ds.PixelData = pixels
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, pixels


@contextmanager
def key_set_server(public_jwk: dict[str, Any]) -> Iterator[str]:
    """Discovery and JWKS for the bench's own signing key: an OIDC issuer without a provider."""
    holder: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = holder["issuer"]
            documents = {
                "/.well-known/openid-configuration": {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"},
                "/jwks": {"keys": [public_jwk]},
            }
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["issuer"] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["issuer"]
    finally:
        server.shutdown()
        server.server_close()


def create_api_key(data_dir: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "api-key", "create", "--name", "bench",
         "--scopes", "dicom.read,dicom.write", "--data-dir", str(data_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise BenchFailure(f"fovea api-key create failed: {completed.stderr}")
    return completed.stdout.strip().splitlines()[-1]


def store(client: httpx.Client, base_url: str, part10: bytes, headers: dict[str, str]) -> None:
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + part10 + b"\r\n--b--\r\n"
    content_type = 'multipart/related; type="application/dicom"; boundary=b'
    response = client.post(
        f"{base_url}/dicom-web/studies", content=body, headers={"Content-Type": content_type, **headers}
    )
    if response.status_code != 200:
        raise BenchFailure(f"STOW-RS answered {response.status_code}: {response.text[:200]}")


def in_process_cost_ms(token: str, path: str, repeats: int) -> float:
    """The middleware's own time per request with a cached decision (median of 5 rounds)."""
    from app.security.middleware import AuthenticationMiddleware
    from app.settings import Settings

    async def endpoint(_scope: Any, _receive: Any, _send: Any) -> None:
        return None

    async def no_receive() -> dict[str, Any]:  # the endpoint reads nothing
        return {"type": "http.disconnect"}

    async def no_send(_message: Any) -> None:  # and sends nothing
        return None

    middleware = AuthenticationMiddleware(endpoint, Settings(share_secrets=SHARE_SECRET))
    headers = [(b"host", b"127.0.0.1"), (b"accept", b"application/octet-stream"),
               (b"authorization", f"Bearer {token}".encode())]  # fmt: skip
    app = SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(engine=None)))  # no key lookups

    async def run() -> list[float]:
        rounds = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                scope = {"type": "http", "method": "GET", "path": path, "query_string": b"",
                         "headers": list(headers), "client": ("127.0.0.1", 5000),
                         "server": ("127.0.0.1", 8080), "app": app}  # fmt: skip
                await middleware(scope, no_receive, no_send)
            rounds.append((time.perf_counter() - start) / repeats)
        return rounds

    rounds = asyncio.run(run())
    return round(sorted(rounds)[2] * 1000, 4)


def measure(
    client: httpx.Client, requests: dict[str, tuple[str, dict[str, str]]], pixels: bytes, n: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {case: [] for case in requests}
    for _ in range(n):
        for case, (url, headers) in requests.items():  # interleaved: same load for every case
            start = time.perf_counter()
            response = client.get(url, headers={"Accept": "application/octet-stream", **headers})
            elapsed = time.perf_counter() - start
            if response.status_code != 200 or pixels not in response.content:
                raise BenchFailure(f"{case}: {response.status_code}, not the frame")
            times[case].append(elapsed)
    return times


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests, for the smoke test")
    parser.add_argument("--tmp-dir", type=Path, help="where the data folders go (default: $TMPDIR)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "auth.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    n, repeats = (20, 2_000) if args.quick else (500, 50_000)
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-auth-", dir=args.tmp_dir))
    results: list[dict[str, Any]] = []
    signing_key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing_key.public_key())), "kid": "bench",
                  "alg": "ES256", "use": "sig"}  # fmt: skip
    try:
        part10, study, series, sop, pixels = frame_instance()
        api_key = create_api_key(work / "on")
        with (
            key_set_server(public_jwk) as issuer,
            FoveaServer(work / "off", ["--log-level", "warning"]) as off,
            FoveaServer(
                work / "on",
                ["--log-level", "warning"],
                env={
                    "FOVEA_OIDC_ISSUER": issuer,
                    "FOVEA_OIDC_AUDIENCE": AUDIENCE,
                    "FOVEA_SHARE_SECRETS": SHARE_SECRET,
                },
            ) as on,
            httpx.Client(timeout=30) as client,
        ):
            store(client, off.base_url, part10, {})
            store(client, on.base_url, part10, {"Authorization": f"Bearer {api_key}"})
            now = int(time.time())
            claims = {"iss": issuer, "aud": AUDIENCE, "sub": "bench", "exp": now + 3600, "iat": now}
            oidc_token = jwt.encode(
                {**claims, "scope": "dicom.read"}, signing_key, algorithm="ES256", headers={"kid": "bench"}
            )
            share = issue_share_token([SHARE_SECRET], study, timedelta(hours=1)).token
            path = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/1"
            requests = {
                "frame_auth_off": (off.base_url + path, {}),
                "frame_api_key": (on.base_url + path, {"Authorization": f"Bearer {api_key}"}),
                "frame_oidc": (on.base_url + path, {"Authorization": f"Bearer {oidc_token}"}),
                "frame_share_token": (on.base_url + path, {"Authorization": f"Bearer {share}"}),
            }
            measure(client, requests, pixels, 3)  # warm: decisions cached, keys fetched
            rtt = health_rtt_ms(client, on.base_url)
            times = measure(client, requests, pixels, n)
            common = {
                "quick": args.quick,
                "machine": machine_facts(work),
                "baseline": {"health_rtt_p50_ms": rtt},
            }
            off_p50 = latency_fields(times["frame_auth_off"])["p50_ms"]
            for case, seconds in times.items():
                fields = latency_fields(seconds)
                added = round(fields["p50_ms"] - off_p50, 3)
                emit({"case": case, "n": n, **fields, "added_p50_ms": added, **common}, results)
        cost = in_process_cost_ms(share, path, repeats)
        emit(
            {"case": "authenticate_in_process", "n": repeats, "per_request_ms": cost,
             "target": {"per_request_ms": TARGET_MS}, "meets_target": cost <= TARGET_MS, **common},
            results,
        )  # fmt: skip
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_auth: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
