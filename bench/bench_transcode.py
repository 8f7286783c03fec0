"""Frame transcoding benchmark: a live server's frames per second for every (stored -> requested) pair it
transcodes, next to the bare codecs' frames per second on the same frames in the same run, and the
latency of a transcoded frame asked for again.

Why: a transcoded frame (PS3.18 8.7.3.5) costs a decode and an encode. The server must add little to
that (HTTP, the frame table, the codec pool's hand-offs): **server ≥ 0.85 x bare codec** frames/s with
both using every core; and a frame asked for again must come from the transcoded-frame cache about as
fast as a native frame is read: **cached repeat p50 ≤ 1.2 x a native frame's p50**.

Two layouts, each stored through STOW-RS as one multi-frame instance per stored syntax (Explicit VR
Little Endian, JPEG-LS, JPEG 2000 and RLE Lossless): a 512x512 CT (MONOCHROME2, 16 bits allocated and
stored, unsigned) and a 256x256 RGB tile (8 bits). Requested syntaxes are every one `can_encode` takes
for the layout, plus `application/octet-stream` (decode only) from the compressed ones. Prints one JSON
line per pair and a summary line, and writes them to bench/results/transcode.json. `--quick` shrinks
every size so the smoke test runs it in seconds.

    .venv/bin/python bench/bench_transcode.py [--quick] [--frames N] [--pairs 'ct/*->jxl'] [--workers N]
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_frames import Answer, KeepAliveClient, instance_url, part10, store
from bench_stow import BENCH_PATIENT_NAME, ct_dataset
from common import (
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    RssSampler,
    add_server_arguments,
    cpu_seconds,
    emit,
    machine_facts,
    percentile_ms,
    process_tree,
    server_arguments,
    stop_on_sigterm,
    system_cpu_seconds,
    write_results,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, generate_uid

from app.dicomweb.mediatypes import bulk_media_type_for
from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import can_encode, encode_native_frame
from app.imaging.syntaxes import find_transfer_syntax

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
STORED_SYNTAXES = (EXPLICIT_VR_LE, JPEG_LS_LOSSLESS, JPEG_2000_LOSSLESS, RLE_LOSSLESS)
# Asked for wherever `can_encode` takes the layout, so encoders added later show up by themselves.
CANDIDATE_TARGETS = (
    JPEG_LS_LOSSLESS,
    JPEG_2000_LOSSLESS,
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
    RLE_LOSSLESS,
    "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.4.112",  # JPEG XL
)
SHORT_NAMES = {
    EXPLICIT_VR_LE: "native",
    JPEG_LS_LOSSLESS: "jls",
    JPEG_2000_LOSSLESS: "j2k",
    "1.2.840.10008.1.2.4.201": "htj2k",
    "1.2.840.10008.1.2.4.110": "jxl",
    RLE_LOSSLESS: "rle",
    "1.2.840.10008.1.2.8.1": "deflate",
    "1.2.840.10008.1.2.4.50": "jpeg-baseline",
    "1.2.840.10008.1.2.4.51": "jpeg-extended",
    "1.2.840.10008.1.2.4.81": "jls-near",
    "1.2.840.10008.1.2.4.91": "j2k-lossy",
    "1.2.840.10008.1.2.4.203": "htj2k-lossy",
    "1.2.840.10008.1.2.4.112": "jxl-lossy",
}
OCTET_STREAM_NAME = "octet"  # Explicit VR LE as a requested syntax: decoded, application/octet-stream

TARGET_SERVER_VS_BARE = 0.85
TARGET_CACHED_VS_NATIVE = 1.2
# A measurement during which the rest of the machine used more than this share of the CPUs is noisy.
NOISE = 0.1


@dataclass(frozen=True)
class Sizes:
    frames: int  # in every stored instance
    ct_size: int  # rows = columns of the CT layout
    rgb_size: int  # rows = columns of the RGB layout
    budget_s: float  # a server throughput measurement stops taking new frames after this long
    cached_requests: int  # of the transcoded frame, and as many of the native one, per pair
    warm_ups: int = 2  # untimed frames per client per pair (frames 1..warm_ups * concurrency)


FULL = Sizes(frames=128, ct_size=512, rgb_size=256, budget_s=2.0, cached_requests=40)
QUICK = Sizes(frames=12, ct_size=64, rgb_size=32, budget_s=0.3, cached_requests=5)


# --- test data: realistic pixels, stored through STOW-RS ----------------------------------------------


@dataclass(frozen=True)
class Layout:
    name: str  # "ct" or "rgb"
    fmt: FrameFormat

    @property
    def shape(self) -> str:
        return f"{self.fmt.rows}x{self.fmt.columns}x{self.fmt.samples_per_pixel}x{self.fmt.bits_allocated}"


def layouts(sizes: Sizes) -> list[Layout]:
    ct, rgb = sizes.ct_size, sizes.rgb_size
    return [
        Layout("ct", FrameFormat(ct, ct, 1, 16, 16, 0, "MONOCHROME2", 0)),
        Layout("rgb", FrameFormat(rgb, rgb, 3, 8, 8, 0, "RGB", 0)),
    ]


def _soft_ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """1 inside the ellipse, 0 outside, with an edge a few pixels wide (tanh, so no overflow)."""
    r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    edge: np.ndarray = 0.5 - 0.5 * np.tanh((r - 1) * 25)
    return edge


def ct_frames(count: int, size: int, seed: int) -> np.ndarray:
    """`count` axial-CT-like slices, unsigned with 1024 = water (Rescale Intercept -1024): a body with
    soft edges, two lungs, a spine, a few organs and texture, which drift slowly from slice to slice,
    plus quantum-like noise inside the body. They compress losslessly about 3:1, as CT does."""
    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:size, 0:size].astype(np.float32) / size * 2 - 1
    y, x = grid[0], grid[1]
    frames = np.empty((count, size, size), np.uint16)
    for index in range(count):
        t = index / max(1, count - 1)
        body = _soft_ellipse(x, y, 0, 0.05, 0.85 - 0.05 * t, 0.65)
        image = body * 1064 + 10  # air ~10 (-1014 HU), soft tissue ~1074 (+50 HU)
        image -= _soft_ellipse(x, y, -0.4, -0.05, 0.25, 0.35 + 0.05 * t) * 850  # lungs
        image -= _soft_ellipse(x, y, 0.4, -0.05, 0.25, 0.35 - 0.03 * t) * 850
        image += _soft_ellipse(x, y, 0.0, 0.45, 0.12, 0.08) * 1200  # vertebra, cortical bone
        image -= _soft_ellipse(x, y, 0.0, 0.45, 0.08, 0.05) * 900
        image += _soft_ellipse(x, y, 0.15 + 0.1 * t, 0.2, 0.2, 0.15) * 60  # an organ
        image += _soft_ellipse(x, y, 0.0, -0.1, 0.08, 0.08) * 300  # contrast in a vessel
        image += body * 20 * np.sin(7 * x + 3 * t) * np.cos(5 * y)
        image += rng.normal(0, 12, (size, size)) * body + rng.normal(0, 3, (size, size))
        frames[index] = np.clip(image, 0, 4095).astype(np.uint16)
    return frames


def rgb_tiles(count: int, size: int, seed: int) -> np.ndarray:
    """`count` H&E-like tiles: pink stroma with slow variation, purple nuclei blobs, sensor noise."""
    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    y, x = grid[0], grid[1]
    scale = size / 256
    pink = np.array([232, 170, 200], np.float32)
    purple = np.array([90, 50, 140], np.float32)
    tiles = np.empty((count, size, size, 3), np.uint8)
    for index in range(count):
        shade = 0.5 + 0.25 * np.sin(x / (23 * scale) + index) * np.cos(y / (31 * scale) - index)
        image = pink * (0.85 + 0.15 * shade[..., None])
        nuclei = np.zeros((size, size), np.float32)
        for _ in range(40):
            cx, cy = rng.uniform(0, size, 2)
            radius = rng.uniform(3, 8) * scale
            d2 = ((x - cx) ** 2 + (y - cy) ** 2) / radius**2
            nuclei = np.maximum(nuclei, np.exp(-d2 * d2))
        image = image * (1 - nuclei[..., None]) + purple * nuclei[..., None]
        image += rng.normal(0, 4, (size, size, 3))
        tiles[index] = np.clip(image, 0, 255).astype(np.uint8)
    return tiles


def native_frames(layout: Layout, count: int) -> list[bytes]:
    fmt = layout.fmt
    pixels = ct_frames(count, fmt.rows, 31) if layout.name == "ct" else rgb_tiles(count, fmt.rows, 32)
    return [frame.tobytes() for frame in pixels]


def layout_dataset(layout: Layout, study: str, series: str, frames: int) -> Dataset:
    """The data set of one multi-frame instance of `layout`, Explicit VR LE, no Pixel Data yet."""
    fmt = layout.fmt
    if layout.name == "ct":
        ds = ct_dataset(study, series, instance_number=1, frames=frames)
        ds.PixelRepresentation = 0  # unsigned, Bits Stored 16: every encoder holds it, HTJ2K included
    else:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7.4")  # Multi-frame True Color SC
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName = "BENCH-1", BENCH_PATIENT_NAME
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "120000", "BENCH"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "OT", 2, 1
        ds.NumberOfFrames = frames
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = fmt.rows, fmt.columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = fmt.samples_per_pixel, fmt.photometric_interpretation
    ds.BitsAllocated, ds.BitsStored = fmt.bits_allocated, fmt.bits_stored
    ds.HighBit, ds.PixelRepresentation = fmt.bits_stored - 1, fmt.pixel_representation
    return ds


def stored_instance(layout: Layout, syntax: str, frames: Sequence[bytes], series: str, study: str) -> Dataset:
    """One instance holding `frames` (as stored: native, or one encoded fragment per frame)."""
    ds = layout_dataset(layout, study, series, len(frames))
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    if syntax == EXPLICIT_VR_LE:
        ds.PixelData = b"".join(frames)
    else:
        ds.PixelData = encapsulate(list(frames), has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    return ds


@dataclass(frozen=True)
class Holding:
    """One stored instance: its URL, and its frames as stored (index 0 is frame 1)."""

    url: str
    stored: list[bytes]


Holdings = dict[tuple[str, str], Holding]  # (layout name, stored syntax UID) -> what the server holds


def store_holdings(
    server: FoveaServer,
    pool: ProcessPoolExecutor,
    plan: Sequence[Layout],
    syntaxes: dict[str, set[str]],
    sizes: Sizes,
) -> tuple[Holdings, dict[str, list[bytes]]]:
    """Store one instance per (layout, stored syntax) needed; every layout gets its native one."""
    holdings: Holdings = {}
    natives: dict[str, list[bytes]] = {}
    study = generate_uid()
    with httpx.Client(timeout=600.0) as client:
        for layout in plan:
            natives[layout.name] = native = native_frames(layout, sizes.frames)
            for syntax in sorted(syntaxes[layout.name] | {EXPLICIT_VR_LE}):
                frames = (
                    native
                    if syntax == EXPLICIT_VR_LE
                    else list(
                        pool.map(
                            encode_native_frame,
                            native,
                            itertools.repeat(syntax),
                            itertools.repeat(layout.fmt),
                        )
                    )
                )
                ds = stored_instance(layout, syntax, frames, generate_uid(), study)
                store(client, server.base_url, [part10(ds)])
                url = instance_url(server.base_url, study, ds.SeriesInstanceUID, ds.SOPInstanceUID)
                holdings[layout.name, syntax] = Holding(url, frames)
    return holdings, natives


# --- the pairs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    layout: Layout
    stored: str  # UID
    requested: str  # UID; Explicit VR LE means application/octet-stream (decode only)

    @property
    def name(self) -> str:
        return f"{self.layout.name}/{short_name(self.stored)}->{requested_name(self.requested)}"

    @property
    def media_type(self) -> str:
        media_type = bulk_media_type_for(self.requested)
        if media_type is None:
            raise BenchFailure(f"{self.requested}: no media type for frames in this syntax")
        return media_type

    @property
    def accept(self) -> str:
        return f'multipart/related; type="{self.media_type}"; transfer-syntax={self.requested}'

    @property
    def lossy(self) -> bool:
        syntax = find_transfer_syntax(self.requested)
        return syntax is None or syntax.lossless is not True


def short_name(uid: str) -> str:
    syntax = find_transfer_syntax(uid)
    return SHORT_NAMES.get(uid) or (syntax.keyword if syntax else uid)


def requested_name(uid: str) -> str:
    return OCTET_STREAM_NAME if uid == EXPLICIT_VR_LE else short_name(uid)


def all_pairs(plan: Sequence[Layout], patterns: Sequence[str] | None) -> list[Pair]:
    """Every (stored -> requested) pair that transcodes, as `can_encode` says now; the filter applied."""
    pairs: list[Pair] = []
    for layout in plan:
        for stored in STORED_SYNTAXES:
            if stored != EXPLICIT_VR_LE and not can_encode(stored, layout.fmt):
                continue
            targets = [uid for uid in CANDIDATE_TARGETS if uid != stored and can_encode(uid, layout.fmt)]
            if stored != EXPLICIT_VR_LE:
                targets.append(EXPLICIT_VR_LE)  # decode only
            pairs.extend(Pair(layout, stored, target) for target in targets)
    if patterns:
        pairs = [pair for pair in pairs if any(fnmatch.fnmatch(pair.name, pattern) for pattern in patterns)]
    return pairs


# --- requests ----------------------------------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def content_type_parts(value: str) -> tuple[str, dict[str, str]]:
    """`media/type; key=value; ...` as the lower-case media type and its parameters (quotes removed)."""
    media_type, *parameters = (piece.strip() for piece in value.split(";"))
    found = {}
    for parameter in parameters:
        key, _, raw = parameter.partition("=")
        found[key.strip().lower()] = raw.strip().strip('"')
    return media_type.lower(), found


def frame_part(answer: Answer, url: str, pair: Pair) -> bytes:
    """The one part of a 200 multipart answer, labelled with the requested media type and syntax.

    BenchFailure otherwise: a figure for frames that were not what was asked for means nothing.
    """
    if answer.status_code != 200:
        raise BenchFailure(f"GET {url} ({pair.accept}): {answer.status_code} {answer.text[:300]}")
    content_type = answer.headers.get("content-type", "")
    found = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/related") or found is None:
        raise BenchFailure(f"GET {url} ({pair.accept}): answered {content_type!r}")
    boundary = found.group(1).encode()
    body, opening, closing = answer.content, b"--" + boundary + b"\r\n", b"\r\n--" + boundary + b"--"
    head_end = body.find(b"\r\n\r\n")
    end = body.rfind(closing)
    if not body.startswith(opening) or head_end < 0 or end < head_end:
        raise BenchFailure(f"GET {url} ({pair.accept}): not a well-formed multipart/related body")
    part = body[head_end + 4 : end]
    if b"\r\n--" + boundary + b"\r\n" in part:
        raise BenchFailure(f"GET {url} ({pair.accept}): more than one part for one frame")
    headers = body[len(opening) : head_end].decode("latin-1").split("\r\n")
    part_type = next(
        (line.split(":", 1)[1] for line in headers if line.lower().startswith("content-type:")), ""
    )
    media_type, parameters = content_type_parts(part_type)
    if media_type != pair.media_type or parameters.get("transfer-syntax") != pair.requested:
        raise BenchFailure(
            f"GET {url} ({pair.accept}): the part is {part_type.strip()!r}, not {pair.media_type} "
            f"with transfer-syntax={pair.requested}"
        )
    if not part:
        raise BenchFailure(f"GET {url} ({pair.accept}): an empty part")
    return part


@dataclass
class Tally:
    """What one client got in a timed run: a latency per frame, the frames' numbers and payload bytes."""

    latencies: list[float] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    payload_bytes: int = 0


class FrameNumbers:
    """Hands out frame numbers in order to several clients, none twice, until a deadline or the end."""

    def __init__(self, first: int, last: int, budget_s: float | None) -> None:
        self._numbers: Iterator[int] = iter(range(first, last + 1))
        self._lock = threading.Lock()
        self._deadline = None if budget_s is None else time.perf_counter() + budget_s

    def next(self) -> int | None:
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            return None
        with self._lock:
            return next(self._numbers, None)


def fetch_frames(
    client: KeepAliveClient, pair: Pair, instance: str, numbers: FrameNumbers, tally: Tally
) -> None:
    """GET frames one after the other until `numbers` runs out; each answer checked after its timer."""
    headers = {"Accept": pair.accept, "Accept-Encoding": "identity"}
    while (number := numbers.next()) is not None:
        url = f"{instance}/frames/{number}"
        start = time.perf_counter()
        answer = client.get(url, headers)
        tally.latencies.append(time.perf_counter() - start)
        tally.numbers.append(number)
        tally.payload_bytes += len(frame_part(answer, url, pair))


def fetch_concurrently(
    clients: Sequence[KeepAliveClient], pair: Pair, instance: str, numbers: FrameNumbers
) -> tuple[list[Tally], float]:
    """Every client in its own thread, all taking numbers from `numbers`; the tallies and the wall time."""
    tallies = [Tally() for _ in clients]
    with ThreadPoolExecutor(len(clients)) as pool:
        start = time.perf_counter()
        futures = [
            pool.submit(fetch_frames, client, pair, instance, numbers, tally)
            for client, tally in zip(clients, tallies, strict=True)
        ]
        for future in futures:
            future.result()  # re-raises what a client raised
        wall = time.perf_counter() - start
    return tallies, wall


def check_frame(part: bytes, pair: Pair, native: bytes) -> None:
    """A lossless answer must decode to the frame that was stored; a lossy one must at least decode."""
    fmt = pair.layout.fmt
    if pair.requested == EXPLICIT_VR_LE:
        decoded = part
    else:
        try:
            with warnings.catch_warnings():  # e.g. JPEG's JFIF marker against RGB: only the size is checked
                warnings.simplefilter("ignore")
                decoded = decode_to_native(part, pair.requested, fmt).data
        except ValueError as exc:
            raise BenchFailure(f"{pair.name}: the frame served does not decode: {exc}") from exc
    if len(decoded) != len(native) or (not pair.lossy and decoded != native):
        raise BenchFailure(f"{pair.name}: the frame served is not the frame stored")


# --- the bare codec ------------------------------------------------------------------------------------


def bare_job(stored: bytes, source: str, target: str, fmt: FrameFormat) -> int:
    """What the server's codec work is for one frame, and nothing else: decode unless native, then
    encode unless the target is native pixels. Returns a size, so that little travels back."""
    if source == EXPLICIT_VR_LE:
        native, native_fmt = stored, fmt
    else:
        decoded = decode_to_native(stored, source, fmt)
        if target == EXPLICIT_VR_LE:
            return len(decoded.data)
        native = decoded.data
        native_fmt = replace(
            fmt,
            photometric_interpretation=decoded.photometric_interpretation,
            planar_configuration=decoded.planar_configuration,
        )
    return len(encode_native_frame(native, target, native_fmt))


@dataclass(frozen=True)
class Bare:
    """The bare codec's run over the timed frames: frames/s, wall time, and who used the CPUs."""

    fps: float
    wall_s: float
    cpu_s: float  # this benchmark's processes (the workers; the idle server and clients too)
    other_cpu_s: float  # the rest of the machine
    steal_cpu_s: float


def bare_run(pool: ProcessPoolExecutor, pair: Pair, frames: Sequence[bytes]) -> Bare:
    """`bare_job` over `frames` in the process pool, timed."""
    fmt = pair.layout.fmt
    cpu_before, (busy_before, steal_before) = cpu_seconds(process_tree(os.getpid())), system_cpu_seconds()
    start = time.perf_counter()
    sizes = list(
        pool.map(
            bare_job,
            frames,
            itertools.repeat(pair.stored),
            itertools.repeat(pair.requested),
            itertools.repeat(fmt),
        )
    )
    wall = time.perf_counter() - start
    cpu = cpu_seconds(process_tree(os.getpid())) - cpu_before
    busy, steal = system_cpu_seconds()
    if not all(sizes):
        raise BenchFailure(f"{pair.name}: the bare codec made an empty frame")
    return Bare(len(frames) / wall, wall, cpu, max(0.0, busy - busy_before - cpu), steal - steal_before)


# --- one pair ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    server: FoveaServer
    pool: ProcessPoolExecutor
    holdings: Holdings
    natives: dict[str, list[bytes]]
    sizes: Sizes
    concurrency: int
    bare_workers: int


def run_pair(run: Run, pair: Pair) -> dict[str, Any]:
    sizes, layout = run.sizes, pair.layout
    holding = run.holdings[layout.name, pair.stored]
    native_pair = Pair(layout, EXPLICIT_VR_LE, EXPLICIT_VR_LE)
    native_url = f"{run.holdings[layout.name, EXPLICIT_VR_LE].url}/frames/1"
    warm_frames = sizes.warm_ups * run.concurrency
    clients = [KeepAliveClient() for _ in range(run.concurrency)]
    try:
        # Warm-up: connections open, codec workers started; frames 1..warm_frames, never timed.
        fetch_concurrently(clients, pair, holding.url, FrameNumbers(1, warm_frames, None))
        with RssSampler(run.server.pid, interval=0.1) as sampler:
            numbers = FrameNumbers(warm_frames + 1, sizes.frames, sizes.budget_s)
            tallies, wall = fetch_concurrently(clients, pair, holding.url, numbers)
        cached, native = cached_latencies(clients[0], pair, holding.url, native_pair, native_url, run)
    finally:
        for client in clients:
            client.close()

    timed = sorted(number for tally in tallies for number in tally.numbers)
    if not timed:
        raise BenchFailure(f"{pair.name}: no frame was timed (raise --budget-s)")
    latencies = [latency for tally in tallies for latency in tally.latencies]
    server_fps = len(timed) / wall
    list(
        run.pool.map(
            bare_job,
            holding.stored[: run.bare_workers * 2],
            itertools.repeat(pair.stored),
            itertools.repeat(pair.requested),
            itertools.repeat(layout.fmt),
        )
    )  # warm-up
    bare = bare_run(run.pool, pair, [holding.stored[number - 1] for number in timed])

    ratio = server_fps / bare.fps
    cores = os.cpu_count() or 1
    noisy = sampler.other_cpu_s > NOISE * wall * cores or bare.other_cpu_s > NOISE * bare.wall_s * cores
    cached_p50, native_p50 = percentile_ms(cached, 50), percentile_ms(native, 50)
    cached_ratio = cached_p50 / native_p50
    meets_throughput = ratio >= TARGET_SERVER_VS_BARE
    meets_cached = cached_ratio <= TARGET_CACHED_VS_NATIVE
    return {
        "case": "transcode",
        "pair": pair.name,
        "layout": layout.name,
        "shape": layout.shape,
        "stored": short_name(pair.stored),
        "stored_uid": pair.stored,
        "requested": requested_name(pair.requested),
        "requested_uid": pair.requested,
        "media_type": pair.media_type,
        "lossy": pair.lossy,
        "n": len(timed),
        "wall_s": round(wall, 3),
        "server_fps": round(server_fps, 1),
        "bare_fps": round(bare.fps, 1),
        "ratio": round(ratio, 3),
        "server_p50_ms": percentile_ms(latencies, 50),
        "server_p99_ms": percentile_ms(latencies, 99),
        "frame_bytes_mean": round(sum(tally.payload_bytes for tally in tallies) / len(timed)),
        "server_cpu_ms_per_frame": round(sampler.server_cpu_s * 1000 / len(timed), 2),
        "bare_wall_s": round(bare.wall_s, 3),
        "bare_cpu_ms_per_frame": round(bare.cpu_s * 1000 / len(timed), 2),
        "cached_n": len(cached),
        "cached_p50_ms": cached_p50,
        "cached_p99_ms": percentile_ms(cached, 99),
        "native_p50_ms": native_p50,
        "native_p99_ms": percentile_ms(native, 99),
        "cached_ratio": round(cached_ratio, 3),
        "server_cpu_s": round(sampler.server_cpu_s, 2),
        "client_cpu_s": round(sampler.client_cpu_s, 2),
        "other_cpu_s": round(sampler.other_cpu_s, 2),
        "steal_cpu_s": round(sampler.steal_cpu_s, 2),
        "bare_cpu_s": round(bare.cpu_s, 2),
        "bare_other_cpu_s": round(bare.other_cpu_s, 2),
        "bare_steal_cpu_s": round(bare.steal_cpu_s, 2),
        "noisy": noisy,
        "target": {"ratio": TARGET_SERVER_VS_BARE, "cached_ratio": TARGET_CACHED_VS_NATIVE},
        "meets_throughput_target": meets_throughput,
        "meets_cached_target": meets_cached,
        "meets_target": meets_throughput and meets_cached,
    }


def cached_latencies(
    client: KeepAliveClient, pair: Pair, instance: str, native_pair: Pair, native_url: str, run: Run
) -> tuple[list[float], list[float]]:
    """Frame 1 (made in the warm-up) again and again, alternating with the native instance's frame 1
    as `application/octet-stream`, so that drift on the machine weighs on both alike."""
    url = f"{instance}/frames/1"
    transcoded_headers = {"Accept": pair.accept, "Accept-Encoding": "identity"}
    native_headers = {"Accept": native_pair.accept, "Accept-Encoding": "identity"}
    natives = run.natives[pair.layout.name]
    check_frame(frame_part(client.get(url, transcoded_headers), url, pair), pair, natives[0])
    check_frame(
        frame_part(client.get(native_url, native_headers), native_url, native_pair), native_pair, natives[0]
    )
    cached: list[float] = []
    native: list[float] = []
    for _ in range(run.sizes.cached_requests):
        for target, headers, which, times in (
            (url, transcoded_headers, pair, cached),
            (native_url, native_headers, native_pair, native),
        ):
            start = time.perf_counter()
            answer = client.get(target, headers)
            times.append(time.perf_counter() - start)
            frame_part(answer, target, which)
    return cached, native


def summary(records: Sequence[dict[str, Any]], wall: float) -> dict[str, Any]:
    """How many pairs met each target, and the worst of each ratio."""
    worst = min(records, key=lambda record: record["ratio"])
    slowest_cache = max(records, key=lambda record: record["cached_ratio"])
    return {
        "case": "transcode_summary",
        "pairs": len(records),
        "layouts": sorted({record["layout"] for record in records}),
        "meeting_throughput_target": sum(record["meets_throughput_target"] for record in records),
        "meeting_cached_target": sum(record["meets_cached_target"] for record in records),
        "noisy_pairs": sum(record["noisy"] for record in records),
        "ratio_median": round(statistics.median(record["ratio"] for record in records), 3),
        "worst_ratio": {"pair": worst["pair"], "ratio": worst["ratio"]},
        "cached_ratio_median": round(statistics.median(record["cached_ratio"] for record in records), 3),
        "worst_cached_ratio": {"pair": slowest_cache["pair"], "cached_ratio": slowest_cache["cached_ratio"]},
        "wall_s": round(wall, 1),
        "target": {"ratio": TARGET_SERVER_VS_BARE, "cached_ratio": TARGET_CACHED_VS_NATIVE},
        "meets_target": all(record["meets_target"] for record in records),
    }


def print_table(records: Sequence[dict[str, Any]]) -> None:
    """A readable table of the pairs on stderr (stdout holds the JSON lines); `*` marks a missed target,
    `~` a noisy measurement."""
    print(
        f"\n{'pair':28} {'n':>4} {'server/s':>9} {'bare/s':>9} {'ratio':>6}  {'cached p50':>10} "
        f"{'native p50':>10} {'ratio':>6}",
        file=sys.stderr,
    )
    for record in records:
        missed = " " if record["meets_throughput_target"] else "*"
        noisy = "~" if record["noisy"] else " "
        print(
            f"{record['pair']:28} {record['n']:4} {record['server_fps']:9.1f} {record['bare_fps']:9.1f} "
            f"{record['ratio']:6.2f}{missed}{noisy}{record['cached_p50_ms']:10.2f} "
            f"{record['native_p50_ms']:10.2f} {record['cached_ratio']:6.2f}"
            f"{'' if record['meets_cached_target'] else '*'}",
            file=sys.stderr,
        )


# --- command line -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--frames", type=int, help="frames in every stored instance (default 128; quick 12)")
    parser.add_argument(
        "--pairs", action="append", metavar="PATTERN", help="only pairs matching this glob, e.g. 'ct/*->jxl'"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2 * (os.cpu_count() or 1),
        help="parallel keep-alive clients (default: twice the cores, so the codec workers never wait)",
    )
    parser.add_argument(
        "--bare-workers", type=int, default=2, help="processes for the bare codec (default 2)"
    )
    parser.add_argument(
        "--budget-s", type=float, help="seconds per server throughput measurement (default 2)"
    )
    parser.add_argument(
        "--cached-requests", type=int, help="repeats of the cached frame per pair (default 40)"
    )
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "transcode.json")
    args = parser.parse_args(argv)
    if min(args.concurrency, args.bare_workers, args.workers) < 1:
        parser.error("--concurrency, --bare-workers and --workers must be at least 1")
    return args


def chosen_sizes(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    if args.frames is not None:
        sizes = replace(sizes, frames=args.frames)
    if args.budget_s is not None:
        sizes = replace(sizes, budget_s=args.budget_s)
    if args.cached_requests is not None:
        sizes = replace(sizes, cached_requests=args.cached_requests)
    if sizes.frames <= sizes.warm_ups * args.concurrency or sizes.cached_requests < 1:
        raise BenchFailure(
            f"--frames must exceed the {sizes.warm_ups * args.concurrency} warm-up frames, and "
            "--cached-requests be at least 1"
        )
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    started = time.perf_counter()
    server_args = server_arguments(args)
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-transcode-", dir=args.tmp_dir))
    results: list[dict[str, Any]] = []
    try:
        sizes = chosen_sizes(args)
        plan = layouts(sizes)
        pairs = all_pairs(plan, args.pairs)
        if not pairs:
            raise BenchFailure("no pair matches --pairs")
        needed = {layout.name: {pair.stored for pair in pairs if pair.layout == layout} for layout in plan}
        plan = [layout for layout in plan if needed[layout.name]]
        common_fields = {
            "quick": args.quick,
            "frames": sizes.frames,
            "concurrency": args.concurrency,
            "bare_workers": args.bare_workers,
            "server_workers": args.workers,
            "server_args": server_args,
            "machine": machine_facts(work),
        }
        context = multiprocessing.get_context("spawn")  # no inherited threads or server state
        with (
            ProcessPoolExecutor(args.bare_workers, mp_context=context) as pool,
            FoveaServer(work / "data", server_args) as server,
        ):
            holdings, natives = store_holdings(server, pool, plan, needed, sizes)
            run = Run(server, pool, holdings, natives, sizes, args.concurrency, args.bare_workers)
            for pair in pairs:
                emit({**run_pair(run, pair), **common_fields}, results)
        emit({**summary(results, time.perf_counter() - started), **common_fields}, results)
        write_results(results, args.out)
        print_table(results[:-1])
    except BenchFailure as exc:
        print(f"bench_transcode: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
