"""The shared derivative cache across two server processes: what the second pays for a frame the first
transcoded.

Two `fovea serve` processes share one index and blob store (SQLite + folder) and one Redis
(`FOVEA_SHARED_CACHE_URL`, a key prefix of this run, removed afterwards). One multi-frame CT instance is
stored through A. Each frame is then asked for, one request at a time, as JPEG 2000 lossless (or
`--syntax`): cold on A (a transcode), first on B (read from Redis), again on B (from B's memory), and
as native octet-stream on B (the floor). B's own counters must show every first request as a shared hit
and nothing made; otherwise the run fails, since its figures would not measure the cache. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
from bench_frames import part10, store
from bench_stow import ct_dataset
from bench_transcode import ct_frames
from common import (
    BenchFailure,
    FoveaServer,
    add_server_arguments,
    health_rtt_ms,
    machine_facts,
    percentile_ms,
    run_in_scratch_folder,
    server_arguments,
)
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


def counter(base_url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def remove_keys(redis_url: str, prefix: str) -> None:
    """Every key of this run: Fovea's keys all start with its prefix as a hash tag."""
    client = redis.Redis.from_url(redis_url)
    try:
        names = list(client.scan_iter(match="{" + prefix + "}*"))
        if names:
            client.delete(*names)
    finally:
        client.close()


def timed_frames(client: httpx.Client, url: str, count: int, accept: str) -> tuple[list[float], int]:
    """Seconds for frames 1..count asked one at a time, and the bytes received."""
    seconds, received = [], 0
    for number in range(1, count + 1):
        start = time.perf_counter()
        response = client.get(f"{url}/frames/{number}", headers={"Accept": accept})
        seconds.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise BenchFailure(f"frame {number} ({accept}): {response.status_code} {response.text[:300]}")
        received += len(response.content)
    return seconds, received


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    size, frames = (64, 8) if args.quick else (512, 40)
    prefix = f"fovea-bench-{uuid.uuid4().hex[:12]}"
    shared = root / "shared"
    shared.mkdir(parents=True)
    env = {
        "FOVEA_DATABASE_URL": f"sqlite:///{shared / 'fovea.db'}",
        "FOVEA_STORAGE_URL": str(shared / "blobs"),
        "FOVEA_SHARED_CACHE_URL": args.redis_url,
        "FOVEA_SHARED_CACHE_PREFIX": prefix,
    }
    study, series = generate_uid(), generate_uid()
    ds = ct_dataset(study, series, instance_number=1, frames=frames)
    ds.Rows = ds.Columns = size
    ds.PixelRepresentation = 0  # unsigned CT-like slices that compress about 3:1, as CT does
    ds.PixelData = ct_frames(frames, size, 7).tobytes()
    sop = ds.SOPInstanceUID
    accept = (
        f"image/jp2; transfer-syntax={args.syntax}"
        if args.syntax == JPEG_2000_LOSSLESS
        else (f"application/octet-stream; transfer-syntax={args.syntax}")
    )
    extra = server_arguments(args)
    try:
        with (
            FoveaServer(root / "a", extra, env=env) as node_a,
            FoveaServer(root / "b", extra, env=env) as node_b,
            httpx.Client(timeout=120) as client,
        ):
            store(client, node_a.base_url, [part10(ds)])
            path = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
            for node in (node_a, node_b):  # warm: connections, frame tables
                client.get(f"{node.base_url}{path}/metadata").raise_for_status()
            baseline = health_rtt_ms(client, node_b.base_url)
            native, native_bytes = timed_frames(
                client, node_b.base_url + path, frames, "application/octet-stream"
            )
            cold, encoded_bytes = timed_frames(client, node_a.base_url + path, frames, accept)
            first_on_b, _ = timed_frames(client, node_b.base_url + path, frames, accept)
            again_on_b, _ = timed_frames(client, node_b.base_url + path, frames, accept)
            made_on_b = counter(node_b.base_url, "fovea_derivatives_made_total", cache="transcoded-frames")
            shared_hits = counter(
                node_b.base_url, "fovea_cache_lookups_total", cache="transcoded-frames-shared", result="hit"
            )
            made_on_a = counter(node_a.base_url, "fovea_derivatives_made_total", cache="transcoded-frames")
    finally:
        remove_keys(args.redis_url, prefix)
    if made_on_b != 0 or shared_hits != frames or made_on_a != frames:
        raise BenchFailure(
            f"the shared cache did not answer: A made {made_on_a}, B made {made_on_b}, B's shared hits "
            f"{shared_hits}, of {frames} frames"
        )
    return {
        "case": "shared_transcode",
        "frames": frames,
        "rows": size,
        "columns": size,
        "syntax": args.syntax,
        "native_frame_bytes": native_bytes // frames,
        "encoded_frame_bytes_mean": encoded_bytes // frames,
        "native_p50_ms": percentile_ms(native, 50),
        "cold_p50_ms": percentile_ms(cold, 50),
        "shared_first_p50_ms": percentile_ms(first_on_b, 50),
        "local_again_p50_ms": percentile_ms(again_on_b, 50),
        "cold_to_shared_ratio": round(percentile_ms(cold, 50) / max(percentile_ms(first_on_b, 50), 0.01), 1),
        "made_on_a": made_on_a,
        "made_on_b": made_on_b,
        "shared_hits_on_b": shared_hits,
        "baseline": {"health_rtt_p50_ms": baseline},
        "quick": args.quick,
        "machine": machine_facts(root),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 frames of 64x64: a few seconds")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="the shared cache's Redis")
    parser.add_argument(
        "--syntax", default=JPEG_2000_LOSSLESS, help="transfer syntax UID frames are asked in"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/shared_cache.json"))
    add_server_arguments(parser)
    args = parser.parse_args()
    return run_in_scratch_folder("shared", args, lambda root: [run(args, root)])


if __name__ == "__main__":
    raise SystemExit(main())
