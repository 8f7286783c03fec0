"""STOW-RS benchmark: many small CT instances, and one ~1 GiB multi-frame instance, against a live server.

Why: STOW-RS throughput and memory are properties of the whole server (uvicorn, the multipart spooler,
ingest, fsync, SQLite), so each case starts `fovea serve` on a fresh data folder and posts real Part 10
files over loopback HTTP (PS3.18 10.5). Prints one JSON line per case and writes them to
bench/results/stow.json. `--quick` shrinks every size so the smoke test runs it in seconds.

    .venv/bin/python bench/bench_stow.py [--quick] [--only small|large] [--workers N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import (
    MB,
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    RssSampler,
    add_server_arguments,
    emit,
    health_rtt_ms,
    machine_facts,
    memory_fields,
    server_arguments,
    stop_on_sigterm,
    write_results,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

PIXEL_DATA_TAG = (0x7FE0, 0x0010)
ROWS = COLUMNS = 512
FRAME_BYTES = ROWS * COLUMNS * 2  # 16 bits allocated, one sample
CHUNK = 1024 * 1024
STORED_SEQUENCE = "00081199"  # Referenced SOP Sequence
FAILED_SEQUENCE = "00081198"  # Failed SOP Sequence

TARGET_SMALL_INSTANCES_PER_S = 250.0
TARGET_LARGE_MB_PER_S = 150.0
TARGET_LARGE_RSS_GROWTH_MB = 100.0


@dataclass(frozen=True)
class Sizes:
    small_instances: int
    small_per_request: int
    large_frames: int


FULL = Sizes(small_instances=200, small_per_request=10, large_frames=2048)  # 1 GiB of pixel data
QUICK = Sizes(small_instances=10, small_per_request=5, large_frames=40)  # 20 MiB


# --- test data ----------------------------------------------------------------------------------------


# One patient for every benchmark data set: Fovea refuses a study whose patient contradicts one stored.
BENCH_PATIENT_NAME = "Bench^Patient"


def ct_dataset(study_uid: str, series_uid: str, instance_number: int, frames: int = 1) -> Dataset:
    """A CT Image Storage data set, 512x512 16-bit signed, Explicit VR Little Endian, no Pixel Data yet."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = "BENCH-1"
    ds.PatientName = BENCH_PATIENT_NAME
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "BENCH"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def random_frames(rng: np.random.Generator, count: int) -> bytes:
    return rng.integers(-1024, 3000, (count, ROWS, COLUMNS), dtype=np.int16).tobytes()


def small_instances(count: int) -> list[bytes]:
    """`count` single-frame Part 10 files in memory, spread over 4 studies of 2 series each."""
    rng = np.random.default_rng(12)
    studies = [generate_uid() for _ in range(4)]
    series = {(s, k): generate_uid() for s in range(4) for k in range(2)}
    files = []
    for i in range(count):
        ds = ct_dataset(studies[i % 4], series[(i % 4, (i // 4) % 2)], instance_number=i + 1)
        ds.PixelData = random_frames(rng, 1)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    return files


def write_large_instance(path: Path, frames: int) -> int:
    """Write a `frames`-frame Part 10 file without holding its pixels in memory; return its size.

    pydicom writes everything before Pixel Data; the (7FE0,0010) OW element header (explicit VR, 4-byte
    length, PS3.5 7.1.2) and the frames are appended in 16-frame chunks.
    """
    ds = ct_dataset(generate_uid(), generate_uid(), instance_number=1, frames=frames)
    ds.save_as(path, enforce_file_format=True)
    rng = np.random.default_rng(34)
    with open(path, "ab") as handle:
        handle.write(struct.pack("<HH2sHI", *PIXEL_DATA_TAG, b"OW", 0, frames * FRAME_BYTES))
        for start in range(0, frames, 16):
            handle.write(random_frames(rng, min(16, frames - start)))
        handle.flush()
        os.fsync(handle.fileno())  # no write-back of the test file competing with the server
    return path.stat().st_size


def multipart_envelope(boundary: str) -> tuple[bytes, bytes, bytes]:
    """(part head, part separator, closing delimiter) of a multipart/related body of DICOM parts."""
    head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    return head, b"\r\n" + head, f"\r\n--{boundary}--\r\n".encode()


def multipart_body(parts: Sequence[bytes], boundary: str) -> bytes:
    head, separator, closing = multipart_envelope(boundary)
    return head + separator.join(parts) + closing


def stow_headers(boundary: str) -> dict[str, str]:
    return {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }


def failed_instances(response: httpx.Response, expected: int) -> int:
    """Instances the Store Instances Response does not list as stored (all of them if it is unreadable)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return expected
    stored = len(body.get(STORED_SEQUENCE, {}).get("Value", []))
    failed = len(body.get(FAILED_SEQUENCE, {}).get("Value", []))
    return max(failed, expected - stored)


# --- cases --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw: one latency per request, and what did not get stored."""

    latencies: list[float] = field(default_factory=list)
    non_200: int = 0
    failed_instances: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: httpx.Response, elapsed: float, instances: int) -> None:
        with self.lock:
            self.latencies.append(elapsed)
            if response.status_code != 200:
                self.non_200 += 1
                print(f"stow: {response.status_code} {response.text[:300]}", file=sys.stderr)
            self.failed_instances += failed_instances(response, instances)


def post_concurrently(
    clients: Sequence[httpx.Client], url: str, requests: Sequence[tuple[bytes, int]]
) -> Tally:
    """POST every (body, instance count) with one thread per client, each taking the next body in turn."""
    pending: queue.SimpleQueue[tuple[bytes, int]] = queue.SimpleQueue()
    for item in requests:
        pending.put(item)
    tally = Tally()

    def post_until_empty(client: httpx.Client) -> None:
        while True:
            try:
                body, instances = pending.get_nowait()
            except queue.Empty:
                return
            start = time.perf_counter()
            response = client.post(url, content=body)
            tally.record(response, time.perf_counter() - start, instances)

    with ThreadPoolExecutor(len(clients)) as pool:
        for future in [pool.submit(post_until_empty, client) for client in clients]:
            future.result()
    return tally


def run_small(sizes: Sizes, concurrency: int, work: Path, server_args: Sequence[str]) -> dict[str, Any]:
    """`stow_small`: many requests of a few 512 KiB instances, from `concurrency` keep-alive clients."""
    files = small_instances(sizes.small_instances)
    per_request = sizes.small_per_request
    boundary = f"bench-{uuid.uuid4().hex}"
    batches = [files[i : i + per_request] for i in range(0, len(files), per_request)]
    requests = [(multipart_body(batch, boundary), len(batch)) for batch in batches]
    payload = sum(len(body) for body, _ in requests)
    instance_bytes = len(files[0])
    warm_up_body = multipart_body(small_instances(per_request), boundary)  # other UIDs, not timed
    del files, batches

    with FoveaServer(work / "data-small", server_args) as server:
        clients = [httpx.Client(timeout=120.0, headers=stow_headers(boundary)) for _ in range(concurrency)]
        try:
            rtt = health_rtt_ms(clients[0], server.base_url)
            for client in clients[1:]:  # open every keep-alive connection before timing
                client.get(f"{server.base_url}/health").raise_for_status()
            warm_up_start = time.perf_counter()  # the first store: steady state is what is timed
            clients[0].post(f"{server.base_url}/dicom-web/studies", content=warm_up_body).raise_for_status()
            warm_up_ms = (time.perf_counter() - warm_up_start) * 1000
            with RssSampler(server.pid) as sampler:
                start = time.perf_counter()
                tally = post_concurrently(clients, f"{server.base_url}/dicom-web/studies", requests)
                wall = time.perf_counter() - start
        finally:
            for client in clients:
                client.close()
        memory = memory_fields(server, sampler)

    n = sum(instances for _, instances in requests)
    instances_per_s = n / wall
    return {
        "case": "stow_small",
        "n": n,
        "requests": len(requests),
        "instances_per_request": per_request,
        "concurrency": concurrency,
        "instance_bytes": instance_bytes,
        "payload_bytes": payload,
        "wall_s": round(wall, 3),
        "instances_per_s": round(instances_per_s, 1),
        "mb_per_s": round(payload / MB / wall, 1),
        "request_p50_ms": round(statistics.median(tally.latencies) * 1000, 1),
        "request_max_ms": round(max(tally.latencies) * 1000, 1),
        "server_cpu_ms_per_instance": round(sampler.server_cpu_s * 1000 / n, 2),
        "first_request_ms": round(warm_up_ms, 1),
        "non_200": tally.non_200,
        "failed_instances": tally.failed_instances,
        **memory,
        "baseline": {"health_rtt_p50_ms": rtt},
        "target": {"instances_per_s": TARGET_SMALL_INSTANCES_PER_S},
        "meets_target": instances_per_s >= TARGET_SMALL_INSTANCES_PER_S,
    }


def disk_copy_mb_per_s(source: Path, directory: Path) -> float:
    """Copy + fsync of the test file on the data file system: what spool-then-store can at best reach."""
    target = directory / "disk-baseline.bin"
    start = time.perf_counter()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, CHUNK)
        writer.flush()
        os.fsync(writer.fileno())
    elapsed = time.perf_counter() - start
    size = target.stat().st_size
    target.unlink()
    return round(size / MB / elapsed, 1)


def streamed_body(path: Path, head: bytes, closing: bytes, sent: dict[str, float]) -> Iterator[bytes]:
    """The multipart body in 1 MiB chunks read from disk; records when the last byte was handed over."""
    yield head
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
    yield closing
    sent["at"] = time.perf_counter()


def run_large(sizes: Sizes, work: Path, server_args: Sequence[str]) -> dict[str, Any]:
    """`stow_large`: one multi-frame instance streamed from disk, with the server's RSS sampled."""
    source = work / "large.dcm"
    instance_bytes = write_large_instance(source, sizes.large_frames)
    copy_mb_per_s = disk_copy_mb_per_s(source, work)
    boundary = f"bench-{uuid.uuid4().hex}"
    head, _, closing = multipart_envelope(boundary)
    payload = len(head) + instance_bytes + len(closing)
    headers = {**stow_headers(boundary), "Content-Length": str(payload)}
    sent: dict[str, float] = {}

    with FoveaServer(work / "data-large", server_args) as server, httpx.Client(timeout=600.0) as client:
        client.get(f"{server.base_url}/health").raise_for_status()
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            response = client.post(
                f"{server.base_url}/dicom-web/studies",
                content=streamed_body(source, head, closing, sent),
                headers=headers,
            )
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)
    source.unlink()
    tally = Tally()
    tally.record(response, wall, instances=1)

    mb_per_s = payload / MB / wall
    growth = memory["server_rss_growth_mb"]
    upload = sent.get("at", start + wall) - start
    return {
        "case": "stow_large",
        "n": 1,
        "frames": sizes.large_frames,
        "instance_bytes": instance_bytes,
        "payload_bytes": payload,
        "wall_s": round(wall, 3),
        "upload_s": round(upload, 3),
        "response_wait_s": round(wall - upload, 3),
        "instances_per_s": round(1 / wall, 3),
        "mb_per_s": round(mb_per_s, 1),
        "status": response.status_code,
        "non_200": tally.non_200,
        "failed_instances": tally.failed_instances,
        **memory,
        "baseline": {"disk_copy_mb_per_s": copy_mb_per_s},
        "target": {"mb_per_s": TARGET_LARGE_MB_PER_S, "server_rss_growth_mb": TARGET_LARGE_RSS_GROWTH_MB},
        "meets_target": mb_per_s >= TARGET_LARGE_MB_PER_S and growth <= TARGET_LARGE_RSS_GROWTH_MB,
    }


# --- command line -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--only", choices=("small", "large"), help="run one case")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel clients in stow_small")
    parser.add_argument(
        "--instances", type=int, help="instances in stow_small (default 200; 10 with --quick)"
    )
    parser.add_argument("--per-request", type=int, help="instances per request in stow_small (default 10)")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "stow.json")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.workers < 1:
        parser.error("--concurrency and --workers must be at least 1")
    if (args.instances is not None and args.instances < 1) or (
        args.per_request is not None and args.per_request < 1
    ):
        parser.error("--instances and --per-request must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    sizes = QUICK if args.quick else FULL
    sizes = replace(
        sizes,
        small_instances=args.instances or sizes.small_instances,
        small_per_request=args.per_request or sizes.small_per_request,
    )
    server_args = server_arguments(args)
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-stow-", dir=args.tmp_dir))
    common_fields = {
        "quick": args.quick,
        "server_workers": args.workers,
        "server_args": server_args,
        "machine": machine_facts(work),
    }
    results: list[dict[str, Any]] = []
    try:
        cases: dict[str, Callable[[], dict[str, Any]]] = {
            "small": lambda: run_small(sizes, args.concurrency, work, server_args),
            "large": lambda: run_large(sizes, work, server_args),
        }
        for name, run in cases.items():
            if args.only not in (None, name):
                continue
            record = {**run(), **common_fields}
            emit(record, results)
            if record["non_200"] or record["failed_instances"]:
                raise BenchFailure(
                    f"{record['case']}: {record['non_200']} request(s) not 200, "
                    f"{record['failed_instances']} instance(s) not stored"
                )
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_stow: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
