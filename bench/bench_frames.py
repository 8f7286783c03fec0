"""WADO-RS retrieval benchmark: single frames of a 1 GiB multi-frame instance and of a one-frame instance,
and the metadata of a 500-instance series, from one live server.

Why: a frame must cost an index lookup and one ranged read wherever it lies in the instance, never a
parse of the file (PS3.18 10.4.1.1.4), and series metadata must come from the DICOM JSON
stored at ingest (PS3.18 10.4.1.1.2). The test data is stored through STOW-RS before any timing. Prints
one JSON line per case and writes them to bench/results/frames.json. `--quick` shrinks every size so the
smoke test runs it in seconds.

    .venv/bin/python bench/bench_frames.py [--quick] [--only CASE] [--workers N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import re
import shutil
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import brotli
import httpx
import numpy as np
import orjson
import urllib3
from bench_stow import (
    FRAME_BYTES,
    ct_dataset,
    failed_instances,
    multipart_body,
    multipart_envelope,
    random_frames,
    stow_headers,
    streamed_body,
    write_large_instance,
)
from common import (
    MB,
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    RssSampler,
    add_server_arguments,
    emit,
    health_rtt_ms,
    latency_fields,
    machine_facts,
    memory_fields,
    percentile_ms,
    server_arguments,
    stop_on_sigterm,
    write_results,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

OCTET_STREAM = "application/octet-stream"
MULTIPART_OCTET_STREAM = f'multipart/related; type="{OCTET_STREAM}"; transfer-syntax=*'
DICOM_JSON = "application/dicom+json"
# Timed requests ask for bodies as they are, so the figures measure retrieval, not compression; the
# "compressed" variants send what browsers (and httpx, by default) send.
IDENTITY, ANY_CODING = "identity", "gzip, deflate, br"
SERIES_ROWS = SERIES_COLUMNS = 64  # only the series' metadata is read: small pixels keep the STOW quick
SERIES_PER_REQUEST = 50
METADATA_WARM_UPS = 3

TARGET_FRAME_P50_MS = 3.0
TARGET_LAST_VS_FIRST_RATIO = 1.2
TARGET_METADATA_P50_MS = 50.0
# What one client gets from a server meeting the 3 ms target: several clients must not get less in all.
TARGET_CONCURRENT_FRAMES_PER_S = round(1000 / TARGET_FRAME_P50_MS, 1)


@dataclass(frozen=True)
class Sizes:
    big_frames: int
    series_instances: int
    sequential_requests: int  # frames_big_random, frames_small
    variant_requests: int  # their multipart and compressed variants
    pair_requests: int  # frame_last_vs_first, of each frame
    concurrent_requests: int  # frames_concurrent, all clients together
    metadata_requests: int  # and as many of its compressed variant
    warm_ups: int  # untimed frame requests before each case (and per client)


FULL = Sizes(2000, 500, 500, 100, 200, 2000, 50, warm_ups=20)  # ~1 GiB of pixel data
QUICK = Sizes(40, 20, 100, 20, 50, 200, 10, warm_ups=5)  # 20 MiB


# --- test data, stored through STOW-RS ----------------------------------------------------------------


@dataclass(frozen=True)
class Holdings:
    """What the server holds, as WADO-RS URLs (None where the selected cases do not need it)."""

    big_instance_url: str | None = None
    big_frames: int = 0
    small_instance_url: str | None = None
    series_url: str | None = None
    series_instances: int = 0


def instance_url(base_url: str, study: str, series: str, sop: str) -> str:
    return f"{base_url}/dicom-web/studies/{study}/series/{series}/instances/{sop}"


def part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def store(client: httpx.Client, base_url: str, parts: Sequence[bytes]) -> None:
    """STOW `parts` in one request; BenchFailure unless every one was stored."""
    boundary = f"bench-{uuid.uuid4().hex}"
    body = multipart_body(parts, boundary)
    response = client.post(f"{base_url}/dicom-web/studies", content=body, headers=stow_headers(boundary))
    check_stored(response, len(parts))


def check_stored(response: httpx.Response, instances: int) -> None:
    if response.status_code != 200 or failed_instances(response, instances):
        raise BenchFailure(f"storing the test data: {response.status_code} {response.text[:300]}")


def store_big(client: httpx.Client, base_url: str, frames: int, work: Path) -> str:
    """Write the multi-frame instance to disk in chunks, stream it in, check frames; return its URL."""
    source = work / "big.dcm"
    size = write_large_instance(source, frames)
    ds = dcmread(source, stop_before_pixels=True)
    boundary = f"bench-{uuid.uuid4().hex}"
    head, _, closing = multipart_envelope(boundary)
    headers = {**stow_headers(boundary), "Content-Length": str(len(head) + size + len(closing))}
    response = client.post(
        f"{base_url}/dicom-web/studies", content=streamed_body(source, head, closing, {}), headers=headers
    )
    check_stored(response, 1)
    url = instance_url(base_url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    pixels_at = size - frames * FRAME_BYTES  # Pixel Data is the file's last element
    with open(source, "rb") as handle:
        for number in sorted({1, 2, frames // 2, frames}):
            handle.seek(pixels_at + (number - 1) * FRAME_BYTES)
            check_frame(client, f"{url}/frames/{number}", handle.read(FRAME_BYTES))
    source.unlink()
    return url


def store_small(client: httpx.Client, base_url: str) -> str:
    """One single-frame 512x512 16-bit instance; its frame is checked byte for byte."""
    ds = ct_dataset(generate_uid(), generate_uid(), instance_number=1)
    ds.PixelData = random_frames(np.random.default_rng(78), 1)
    store(client, base_url, [part10(ds)])
    url = instance_url(base_url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    check_frame(client, f"{url}/frames/1", ds.PixelData)
    return url


def store_series(client: httpx.Client, base_url: str, count: int) -> str:
    """`count` small single-frame instances in one series, SERIES_PER_REQUEST per STOW request."""
    rng = np.random.default_rng(90)
    study, series = generate_uid(), generate_uid()
    files = []
    for number in range(1, count + 1):
        ds = ct_dataset(study, series, instance_number=number)
        ds.Rows, ds.Columns = SERIES_ROWS, SERIES_COLUMNS
        ds.PixelData = rng.integers(-1024, 3000, (SERIES_ROWS, SERIES_COLUMNS), dtype=np.int16).tobytes()
        files.append(part10(ds))
    for start in range(0, count, SERIES_PER_REQUEST):
        store(client, base_url, files[start : start + SERIES_PER_REQUEST])
    return f"{base_url}/dicom-web/studies/{study}/series/{series}"


def check_frame(client: httpx.Client, url: str, expected: bytes) -> None:
    """BenchFailure unless the frame served as octet-stream is, byte for byte, the one sent."""
    response = client.get(url, headers={"Accept": OCTET_STREAM})
    if response.status_code != 200:
        raise BenchFailure(f"GET {url}: {response.status_code} {response.text[:300]}")
    if response.content != expected:
        raise BenchFailure(f"GET {url}: {len(response.content)} bytes, not the frame that was stored")


def store_holdings(server: FoveaServer, needs: set[str], sizes: Sizes, work: Path) -> Holdings:
    with httpx.Client(timeout=600.0) as client:
        base = server.base_url
        return Holdings(
            big_instance_url=store_big(client, base, sizes.big_frames, work) if "big" in needs else None,
            big_frames=sizes.big_frames,
            small_instance_url=store_small(client, base) if "small" in needs else None,
            series_url=store_series(client, base, sizes.series_instances) if "series" in needs else None,
            series_instances=sizes.series_instances,
        )


# --- requests and their figures -----------------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


class Answer:
    """What a timed request got: status, headers, the decoded body and the bytes that went over the wire."""

    def __init__(self, status_code: int, headers: Any, content: bytes, wire_bytes: int) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content
        self.num_bytes_downloaded = wire_bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise BenchFailure(f"HTTP {self.status_code}: {self.text[:200]}")


class KeepAliveClient:
    """One keep-alive HTTP/1.1 connection per host, on urllib3, for the timed requests.

    Why not httpx: on this 2-core machine httpx spends about 2 ms of client CPU taking in a 512 KiB body,
    more than the server needs to produce it, so its latencies would mostly measure the client. The
    response body is read raw and decoded here, which also gives the bytes on the wire.
    """

    _DECODERS: ClassVar[dict[str, Callable[[bytes], bytes]]] = {
        "gzip": gzip.decompress,
        "br": brotli.decompress,
        "deflate": zlib.decompress,
    }

    def __init__(self, timeout: float = 60.0) -> None:
        self._pools = urllib3.PoolManager(maxsize=1, timeout=timeout, retries=False)

    def get(self, url: str, headers: dict[str, str] | None = None) -> Answer:
        response = self._pools.request(
            "GET", url, headers=headers or {}, preload_content=False, decode_content=False
        )
        raw = response.read()
        response.release_conn()
        coding = response.headers.get("content-encoding", "")
        content = self._DECODERS[coding](raw) if coding in self._DECODERS else raw
        return Answer(response.status, response.headers, content, len(raw))

    def close(self) -> None:
        self._pools.clear()

    def __enter__(self) -> KeepAliveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Payload = Callable[[Any], bytes | None]  # what a 200 answer should carry; None: something else


def single_part_frame(response: Answer) -> bytes | None:
    """One whole frame as `application/octet-stream`."""
    right_type = response.headers.get("content-type", "").startswith(OCTET_STREAM)
    return response.content if right_type and len(response.content) == FRAME_BYTES else None


def multipart_frame(response: Answer) -> bytes | None:
    """One whole frame as the only part of a multipart/related answer."""
    content_type = response.headers.get("content-type", "")
    found = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/related") or found is None:
        return None
    body, closing = response.content, f"\r\n--{found.group(1)}--\r\n".encode()
    head_end = body.find(b"\r\n\r\n")
    if not body.startswith(f"--{found.group(1)}\r\n".encode()) or head_end < 0 or not body.endswith(closing):
        return None
    part = body[head_end + 4 : -len(closing)]
    return part if len(part) == FRAME_BYTES else None


def series_metadata(instances: int) -> Payload:
    """A DICOM JSON array with one object per instance of the series (PS3.18 F.2)."""

    def payload(response: Answer) -> bytes | None:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None
        return response.content if isinstance(body, list) and len(body) == instances else None

    return payload


@dataclass
class Tally:
    """What one client saw: a latency per request, failures, the payload and the wire bytes received."""

    latencies: list[float] = field(default_factory=list)
    non_200: int = 0
    bad_payloads: int = 0
    payload_bytes: int = 0
    wire_bytes: int = 0  # the bodies as sent, before any content coding was undone


def get_all(
    client: KeepAliveClient | httpx.Client,
    urls: Sequence[str],
    tally: Tally,
    accept: str = OCTET_STREAM,
    payload: Payload = single_part_frame,
    coding: str = IDENTITY,
) -> None:
    """GET each URL in turn, timing each; an answer that is not 200 with its payload is a failure."""
    for url in urls:
        start = time.perf_counter()
        response = client.get(url, headers={"Accept": accept, "Accept-Encoding": coding})
        tally.latencies.append(time.perf_counter() - start)  # the payload is checked after the timer
        tally.wire_bytes += response.num_bytes_downloaded
        if response.status_code != 200:
            tally.non_200 += 1
            print(f"GET {url}: {response.status_code} {response.text[:300]}", file=sys.stderr)
        elif (body := payload(response)) is None:
            tally.bad_payloads += 1
            print(f"GET {url}: not {payload.__doc__ or 'the expected payload'}", file=sys.stderr)
        else:
            tally.payload_bytes += len(body)


def throughput_fields(tallies: Sequence[Tally], wall: float) -> dict[str, Any]:
    """How many frames and bytes the clients received per second, and each request's latency."""
    latencies = [latency for tally in tallies for latency in tally.latencies]
    payload_bytes = sum(tally.payload_bytes for tally in tallies)
    return {
        "frame_bytes": FRAME_BYTES,
        "payload_bytes": payload_bytes,
        "wall_s": round(wall, 3),
        "frames_per_s": round(len(latencies) / wall, 1),
        "mb_per_s": round(payload_bytes / MB / wall, 1),
        **latency_fields(latencies),
    }


def outcome_fields(tallies: Sequence[Tally], memory: dict[str, Any], rtt_ms: float) -> dict[str, Any]:
    """What every record holds before its target: failures, server figures, the HTTP floor."""
    return {
        "non_200": sum(tally.non_200 for tally in tallies),
        "bad_payloads": sum(tally.bad_payloads for tally in tallies),
        **memory,
        "baseline": {"health_rtt_p50_ms": rtt_ms},
    }


def frame_urls(instance: str, numbers: Sequence[int]) -> list[str]:
    return [f"{instance}/frames/{number}" for number in numbers]


def random_numbers(seed: int, count: int, frames: int) -> list[int]:
    """`count` frame numbers drawn uniformly from 1..frames, the same for every run."""
    return [int(number) for number in np.random.default_rng(seed).integers(1, frames + 1, count)]


# --- cases --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What every case gets: the live server, what it holds, the sizes, the number of parallel clients."""

    server: FoveaServer
    holdings: Holdings
    sizes: Sizes
    concurrency: int


def run_sequential(
    run: Run, case: str, instance: str, instance_frames: int, numbers: Sequence[int]
) -> dict[str, Any]:
    """`numbers` frames one after the other over one keep-alive client; then the two variants."""
    server, sizes = run.server, run.sizes
    variant_urls = frame_urls(instance, numbers[: sizes.variant_requests])
    with KeepAliveClient() as client:
        rtt = health_rtt_ms(client, server.base_url)
        get_all(client, frame_urls(instance, numbers[: sizes.warm_ups]), Tally())
        tally = Tally()
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            get_all(client, frame_urls(instance, numbers), tally)
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)
        multipart, compressed = Tally(), Tally()
        get_all(client, variant_urls[: sizes.warm_ups], Tally(), MULTIPART_OCTET_STREAM, multipart_frame)
        get_all(client, variant_urls, multipart, MULTIPART_OCTET_STREAM, multipart_frame)
        get_all(client, variant_urls[: sizes.warm_ups], Tally(), coding=ANY_CODING)
        get_all(client, variant_urls, compressed, coding=ANY_CODING)
    with_httpx = Tally()  # the same requests through httpx: how much of a latency a client can add
    with httpx.Client(timeout=60.0) as httpx_client:
        get_all(httpx_client, variant_urls[: sizes.warm_ups], Tally())
        get_all(httpx_client, variant_urls, with_httpx)

    p50 = percentile_ms(tally.latencies, 50)
    return {
        "case": case,
        "n": len(numbers),
        "instance_frames": instance_frames,
        **throughput_fields([tally], wall),
        "variant_n": len(variant_urls),
        "multipart_p50_ms": percentile_ms(multipart.latencies, 50),
        "compressed_p50_ms": percentile_ms(compressed.latencies, 50),
        "compressed_wire_bytes": compressed.wire_bytes // len(variant_urls),
        "httpx_client_p50_ms": percentile_ms(with_httpx.latencies, 50),
        **outcome_fields([tally, multipart, compressed, with_httpx], memory, rtt),
        "target": {"p50_ms": TARGET_FRAME_P50_MS},
        "meets_target": p50 <= TARGET_FRAME_P50_MS,
    }


def run_big_random(run: Run) -> dict[str, Any]:
    """`frames_big_random`: frames drawn at random from the whole multi-frame instance."""
    instance, frames = held(run.holdings.big_instance_url), run.holdings.big_frames
    numbers = random_numbers(56, run.sizes.sequential_requests, frames)
    return run_sequential(run, "frames_big_random", instance, frames, numbers)


def run_small(run: Run) -> dict[str, Any]:
    """`frames_small`: frame 1 of the single-frame instance, again and again."""
    numbers = [1] * run.sizes.sequential_requests
    return run_sequential(run, "frames_small", held(run.holdings.small_instance_url), 1, numbers)


def run_last_vs_first(run: Run) -> dict[str, Any]:
    """`frame_last_vs_first`: the big instance's last frame against the small one's only frame.

    The two alternate, so drift on the machine weighs on both alike; equal medians show that a frame's
    cost does not grow with its position (no parse of what comes before it).
    """
    server, holdings, sizes = run.server, run.holdings, run.sizes
    last_url = f"{held(holdings.big_instance_url)}/frames/{holdings.big_frames}"
    first_url = f"{held(holdings.small_instance_url)}/frames/1"
    last, first = Tally(), Tally()
    with KeepAliveClient() as client:
        rtt = health_rtt_ms(client, server.base_url)
        get_all(client, [last_url, first_url] * sizes.warm_ups, Tally())
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            for _ in range(sizes.pair_requests):
                get_all(client, [last_url], last)
                get_all(client, [first_url], first)
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)

    last_p50, first_p50 = percentile_ms(last.latencies, 50), percentile_ms(first.latencies, 50)
    ratio = round(last_p50 / first_p50, 3)
    return {
        "case": "frame_last_vs_first",
        "n": sizes.pair_requests,
        "last_frame_number": holdings.big_frames,
        "payload_bytes": last.payload_bytes + first.payload_bytes,
        "wall_s": round(wall, 3),
        "last_frame_p50_ms": last_p50,
        "small_frame_p50_ms": first_p50,
        "ratio": ratio,
        **outcome_fields([last, first], memory, rtt),
        "target": {"ratio": TARGET_LAST_VS_FIRST_RATIO},
        "meets_target": ratio <= TARGET_LAST_VS_FIRST_RATIO,
    }


def run_concurrent(run: Run) -> dict[str, Any]:
    """`frames_concurrent`: `concurrency` keep-alive clients, each in its own thread, random frames."""
    server, holdings, sizes, concurrency = run.server, run.holdings, run.sizes, run.concurrency
    instance = held(holdings.big_instance_url)
    per_client = max(1, sizes.concurrent_requests // concurrency)
    plans = [
        frame_urls(instance, random_numbers(100 + index, per_client, holdings.big_frames))
        for index in range(concurrency)
    ]
    tallies = [Tally() for _ in range(concurrency)]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(KeepAliveClient()) for _ in range(concurrency)]
        rtt = health_rtt_ms(clients[0], server.base_url)
        for client, urls in zip(clients, plans, strict=True):  # every connection open before timing
            get_all(client, urls[: sizes.warm_ups], Tally())
        with ThreadPoolExecutor(concurrency) as pool, RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            list(pool.map(get_all, clients, plans, tallies))  # re-raises what any client raised
            wall = time.perf_counter() - start
    memory = memory_fields(server, sampler)

    throughput = throughput_fields(tallies, wall)
    return {
        "case": "frames_concurrent",
        "n": per_client * concurrency,
        "concurrency": concurrency,
        "instance_frames": holdings.big_frames,
        **throughput,
        **outcome_fields(tallies, memory, rtt),
        "target": {"frames_per_s": TARGET_CONCURRENT_FRAMES_PER_S},
        "meets_target": throughput["frames_per_s"] >= TARGET_CONCURRENT_FRAMES_PER_S,
    }


def run_series_metadata(run: Run) -> dict[str, Any]:
    """`series_metadata`: the whole series' DICOM JSON; each answer must list every instance."""
    server, holdings, sizes = run.server, run.holdings, run.sizes
    url = f"{held(holdings.series_url)}/metadata"
    payload, tally, compressed = series_metadata(holdings.series_instances), Tally(), Tally()
    with KeepAliveClient() as client:
        rtt = health_rtt_ms(client, server.base_url)
        get_all(client, [url] * METADATA_WARM_UPS, Tally(), DICOM_JSON, payload)
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            get_all(client, [url] * sizes.metadata_requests, tally, DICOM_JSON, payload)
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)
        get_all(client, [url] * METADATA_WARM_UPS, Tally(), DICOM_JSON, payload, ANY_CODING)
        get_all(client, [url] * sizes.metadata_requests, compressed, DICOM_JSON, payload, ANY_CODING)

    p50 = percentile_ms(tally.latencies, 50)
    return {
        "case": "series_metadata",
        "n": sizes.metadata_requests,
        "instances": holdings.series_instances,
        "response_bytes": tally.payload_bytes // sizes.metadata_requests,
        "wall_s": round(wall, 3),
        **latency_fields(tally.latencies, percents=(50, 95)),
        "compressed_p50_ms": percentile_ms(compressed.latencies, 50),
        "compressed_wire_bytes": compressed.wire_bytes // sizes.metadata_requests,
        **outcome_fields([tally, compressed], memory, rtt),
        "target": {"p50_ms": TARGET_METADATA_P50_MS},
        "meets_target": p50 <= TARGET_METADATA_P50_MS,
    }


def run_frames_uncached(run: Run) -> dict[str, Any]:
    """`frames_uncached`: frame 1 of each instance of the series, once each.

    Every timed request is the first for its instance, so none is helped by the server's frame-table
    cache: each costs an index lookup. The frames are 64x64 (8 KiB), so transfer weighs less here.
    """
    server, holdings, sizes = run.server, run.holdings, run.sizes
    series = held(holdings.series_url)
    expected = SERIES_ROWS * SERIES_COLUMNS * 2

    def small_frame(response: Any) -> bytes | None:
        """One whole 64x64 frame as `application/octet-stream`."""
        right_type = response.headers.get("content-type", "").startswith(OCTET_STREAM)
        return response.content if right_type and len(response.content) == expected else None

    with KeepAliveClient() as client:
        rtt = health_rtt_ms(client, server.base_url)
        listing = client.get(f"{series}/metadata", {"Accept": DICOM_JSON, "Accept-Encoding": IDENTITY})
        sops = [item["00080018"]["Value"][0] for item in orjson.loads(listing.content)]
        urls = [f"{series}/instances/{sop}/frames/1" for sop in sops]
        warm, timed = urls[: sizes.warm_ups], urls[sizes.warm_ups :]
        get_all(client, warm, Tally(), payload=small_frame)
        tally = Tally()
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            get_all(client, timed, tally, payload=small_frame)
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)

    p50 = percentile_ms(tally.latencies, 50)
    return {
        "case": "frames_uncached",
        "n": len(timed),
        "frame_bytes": expected,
        "payload_bytes": tally.payload_bytes,
        "wall_s": round(wall, 3),
        **latency_fields(tally.latencies),
        **outcome_fields([tally], memory, rtt),
        "target": {"p50_ms": TARGET_FRAME_P50_MS},
        "meets_target": p50 <= TARGET_FRAME_P50_MS,
    }


def held(url: str | None) -> str:
    if url is None:
        raise BenchFailure("the server does not hold the test data this case needs")
    return url


# --- command line -------------------------------------------------------------------------------------

# name -> (the test data it needs, how to run it)
CASES: dict[str, tuple[set[str], Callable[[Run], dict[str, Any]]]] = {
    "frames_big_random": ({"big"}, run_big_random),
    "frames_small": ({"small"}, run_small),
    "frame_last_vs_first": ({"big", "small"}, run_last_vs_first),
    "frames_concurrent": ({"big"}, run_concurrent),
    "series_metadata": ({"series"}, run_series_metadata),
    "frames_uncached": ({"series"}, run_frames_uncached),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--only", choices=tuple(CASES), action="append", help="run this case (repeatable)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel clients in frames_concurrent")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "frames.json")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.workers < 1:
        parser.error("--concurrency and --workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    sizes = QUICK if args.quick else FULL
    server_args = server_arguments(args)
    selected = [name for name in CASES if args.only is None or name in args.only]
    needs = set().union(*(CASES[name][0] for name in selected))
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-frames-", dir=args.tmp_dir))
    common_fields = {
        "quick": args.quick,
        "server_workers": args.workers,
        "server_args": server_args,
        "machine": machine_facts(work),
    }
    results: list[dict[str, Any]] = []
    try:
        with FoveaServer(work / "data", server_args) as server:
            run = Run(server, store_holdings(server, needs, sizes, work), sizes, args.concurrency)
            for name in selected:
                record = {**CASES[name][1](run), **common_fields}
                emit(record, results)
                if record["non_200"] or record["bad_payloads"]:
                    raise BenchFailure(
                        f"{record['case']}: {record['non_200']} request(s) not 200, "
                        f"{record['bad_payloads']} answer(s) without the expected payload"
                    )
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_frames: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
