"""Rendered and thumbnail benchmark: JPEG renderings of a 512x512 CT slice and a 3000x3000 radiograph, and
their 128-pixel thumbnails, from a live server, each asked for cold and again (cached).

Why: a viewer's study list shows a thumbnail per series and some viewers show rendered frames while they
load the pixels (PS3.18 10.4.1.1.3); a rendering costs a read, the display pipeline (Modality LUT,
window, scaling) and a JPEG encode, so it must stay within interactive budgets: **512x512 rendered p50
<= 15 ms cold**, **3000x3000 thumbnail p50 <= 120 ms cold**. "Cold" is about Fovea's own caches (rendered
images keyed by stored file, frames and options; decoded frames of compressed instances): every timed cold
request names a stored file, or options, no earlier request named. The operating system's page cache
and the index database's cache are warm (the test data was just stored). The same rendering done in
this process (`bare_*`) shows what the server adds. The test data is stored through STOW-RS before any
timing. Prints one JSON line per case and writes them to bench/results/rendered.json. `--quick` shrinks
every size so the smoke test runs it in seconds.

    .venv/bin/python bench/bench_rendered.py [--quick] [--only CASE] [--workers N]
"""

from __future__ import annotations

import argparse
import io
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_frames import Answer, KeepAliveClient, Tally, get_all, instance_url, part10, store
from bench_stow import BENCH_PATIENT_NAME, ct_dataset
from bench_transcode import ct_frames
from common import (
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
    server_arguments,
    stop_on_sigterm,
    write_results,
)
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import encode_native_frame
from app.imaging.display import THUMBNAIL_SIZE, RenderOptions, encode_image, frame_samples, render_frame

JPEG = "image/jpeg"
IDENTITY = "identity"
CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
CT_SLICES = 16  # distinct CT pixel sets; the instances cycle through them (the caches key on the file)
CT_PER_REQUEST = 50  # CT instances per STOW request
QUALITY = 90  # Fovea's default JPEG quality; cold x-ray requests ask for qualities around it

TARGET_RENDERED_CT_P50_MS = 15.0
TARGET_THUMBNAIL_XRAY_P50_MS = 120.0
COLD_MEANS = (
    "neither the rendered image nor a decoded frame was in Fovea's caches: every timed cold request "
    "names a stored instance (CT) or an instance and quality= (x-ray) that no earlier request named; "
    "the OS page cache, the index database's cache and, for repeated instances, the frame-table cache "
    "were warm"
)


@dataclass(frozen=True)
class Sizes:
    ct_size: int  # rows = columns of the CT slices
    xray_size: int  # rows = columns of the radiographs
    ct_cold: int  # timed cold requests per CT case, one instance each
    xray_instances: int  # instances per x-ray case
    xray_qualities: int  # qualities asked of each x-ray instance: instances x qualities cold requests
    cached: int  # timed repeats of one request per case
    warm_ups: int  # untimed requests before each case, on an instance of their own


FULL = Sizes(512, 3000, ct_cold=100, xray_instances=6, xray_qualities=5, cached=50, warm_ups=3)
QUICK = Sizes(160, 400, ct_cold=10, xray_instances=2, xray_qualities=3, cached=5, warm_ups=2)


# --- test data: realistic pixels, stored through STOW-RS ----------------------------------------------


@dataclass(frozen=True)
class Source:
    """The image kind a case renders: its layout, stored syntax, and how it is windowed."""

    name: str  # "ct", "ct_j2k", "xray"
    modality: str
    fmt: FrameFormat
    transfer_syntax: str
    window: str  # what the data set says: "40/400" or "none (automatic)"

    def fields(self) -> dict[str, Any]:
        fmt = self.fmt
        return {
            "modality": self.modality,
            "rows": fmt.rows,
            "columns": fmt.columns,
            "bits_allocated": fmt.bits_allocated,
            "bits_stored": fmt.bits_stored,
            "pixel_representation": fmt.pixel_representation,
            "photometric_interpretation": fmt.photometric_interpretation,
            "transfer_syntax": self.transfer_syntax,
            "window_in_data_set": self.window,
        }


def sources(sizes: Sizes) -> dict[str, Source]:
    ct = FrameFormat(sizes.ct_size, sizes.ct_size, 1, 16, 16, 1, "MONOCHROME2", 0)
    xray = FrameFormat(sizes.xray_size, sizes.xray_size, 1, 16, 12, 0, "MONOCHROME1", 0)
    return {
        "ct": Source("ct", "CT", ct, ExplicitVRLittleEndian, "40/400"),
        "ct_j2k": Source("ct_j2k", "CT", ct, JPEG2000Lossless, "40/400"),
        "xray": Source("xray", "CR", xray, ExplicitVRLittleEndian, "none (automatic)"),
    }


def ct_slices(size: int) -> list[bytes]:
    """Axial CT slices, signed 16-bit stored values with Rescale Intercept -1024 (HU -1014..+1250)."""
    return [frame.astype(np.int16).tobytes() for frame in ct_frames(CT_SLICES, size, 41)]


def radiograph(size: int) -> np.ndarray:
    """A chest-radiograph-like CR image, 12 bits stored, MONOCHROME1 (low values white): open field,
    a body, two lungs with ribs, a spine, a heart shadow, a collimation border and quantum noise."""
    rng = np.random.default_rng(43)
    grid = np.mgrid[0:size, 0:size].astype(np.float32) / size * 2 - 1
    y, x = grid[0], grid[1]

    def soft_ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
        edge: np.ndarray = np.float32(0.5) - np.float32(0.5) * np.tanh((r - 1) * 20)
        return edge

    image = np.full((size, size), 3700, np.float32)  # direct exposure: dark
    body = soft_ellipse(0, 0.1, 0.8, 1.05)
    image -= body * 1700
    lungs = soft_ellipse(-0.35, -0.1, 0.27, 0.55) + soft_ellipse(0.35, -0.1, 0.27, 0.55)
    ribs = 0.5 + 0.5 * np.sin(y * 28 + np.abs(x) * 6)
    image += lungs * (900 - 250 * ribs)
    image -= soft_ellipse(0.0, 0.0, 0.07, 1.1) * 700  # spine
    image -= soft_ellipse(0.1, 0.25, 0.28, 0.25) * 450  # heart
    image += rng.normal(0, 25, (size, size)).astype(np.float32)
    border = size // 30  # collimator blades: unexposed, white
    image[:border], image[-border:], image[:, :border], image[:, -border:] = 300, 300, 300, 300
    return np.clip(image, 0, 4095).astype(np.uint16)


def image_dataset(source: Source, study: str, series: str, number: int, frame: bytes) -> Dataset:
    """One single-frame instance of `source` holding `frame` (native, or the one encoded fragment)."""
    fmt = source.fmt
    if source.modality == "CT":
        ds = ct_dataset(study, series, instance_number=number)
        ds.WindowCenter, ds.WindowWidth = "40", "400"
    else:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CR_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = CR_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName = "BENCH-1", BENCH_PATIENT_NAME
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "120000", "BENCH"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CR", 2, number
        ds.BodyPartExamined, ds.ViewPosition = "CHEST", "PA"
    ds.Rows, ds.Columns = fmt.rows, fmt.columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, fmt.photometric_interpretation
    ds.BitsAllocated, ds.BitsStored = fmt.bits_allocated, fmt.bits_stored
    ds.HighBit, ds.PixelRepresentation = fmt.bits_stored - 1, fmt.pixel_representation
    ds.file_meta.TransferSyntaxUID = UID(source.transfer_syntax)
    if source.transfer_syntax == ExplicitVRLittleEndian:
        ds.PixelData = frame
    else:
        ds.PixelData = encapsulate([frame], has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    return ds


@dataclass(frozen=True)
class Holding:
    """The instances stored for one case, as WADO-RS URLs, and one native frame to render in-process."""

    source: Source
    urls: list[str]
    stored_frame: bytes  # as stored (the J2K codestream for ct_j2k)


def store_instances(
    client: httpx.Client, base_url: str, source: Source, frames: Sequence[bytes], count: int, per_request: int
) -> list[str]:
    """`count` instances of `source` in a series of their own, cycling through `frames`."""
    study, series = generate_uid(), generate_uid()
    urls, parts = [], []
    for number, frame in zip(range(1, count + 1), itertools.cycle(frames), strict=False):
        ds = image_dataset(source, study, series, number, frame)
        parts.append(part10(ds))
        urls.append(instance_url(base_url, study, series, ds.SOPInstanceUID))
        if len(parts) == per_request or number == count:
            store(client, base_url, parts)
            parts = []
    return urls


def store_holdings(server: FoveaServer, cases: Sequence[Case], sizes: Sizes) -> dict[str, Holding]:
    """Every case's instances, each its own: no case's requests warm another's."""
    kinds = sources(sizes)
    needed = {case.source for case in cases}
    frames: dict[str, list[bytes]] = {}
    if needed & {"ct", "ct_j2k"}:
        frames["ct"] = ct_slices(sizes.ct_size)
    if "ct_j2k" in needed:
        fmt = kinds["ct_j2k"].fmt
        frames["ct_j2k"] = [encode_native_frame(frame, JPEG2000Lossless, fmt) for frame in frames["ct"]]
    if "xray" in needed:
        image = radiograph(sizes.xray_size)  # instances differ by a shift: distinct files, same cost
        shifts = range(sizes.xray_instances + 1)
        frames["xray"] = [np.roll(image, 7 * shift, axis=1).tobytes() for shift in shifts]
    holdings = {}
    with httpx.Client(timeout=600.0) as client:
        for case in cases:
            source = kinds[case.source]
            count, per_request = (
                (sizes.xray_instances + 1, 1)
                if source.name == "xray"
                else (sizes.ct_cold + sizes.warm_ups, CT_PER_REQUEST)
            )
            urls = store_instances(client, server.base_url, source, frames[source.name], count, per_request)
            holdings[case.name] = Holding(source, urls, frames[source.name][0])
    return holdings


# --- requests and their checks ------------------------------------------------------------------------


def expected_size(fmt: FrameFormat, *, thumbnail: bool) -> tuple[int, int]:
    """(width, height): the source's for /rendered; a thumbnail's longest side is 128 (never enlarged)."""
    if not thumbnail:
        return fmt.columns, fmt.rows
    scale = min(THUMBNAIL_SIZE / fmt.columns, THUMBNAIL_SIZE / fmt.rows, 1.0)
    return max(1, round(fmt.columns * scale)), max(1, round(fmt.rows * scale))


def jpeg_of(size: tuple[int, int]) -> Callable[[Answer], bytes | None]:
    def payload(response: Answer) -> bytes | None:
        """a JPEG of the expected size"""
        if response.headers.get("content-type", "").split(";")[0].strip() != JPEG:
            return None
        try:
            with Image.open(io.BytesIO(response.content)) as image:
                image.load()
                right = image.format == "JPEG" and image.size == size
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        return response.content if right else None

    payload.__doc__ = f"a {size[0]}x{size[1]} JPEG"
    return payload


def same_as(first: bytes) -> Callable[[Answer], bytes | None]:
    def payload(response: Answer) -> bytes | None:
        """the same JPEG as the first answer"""
        right = response.headers.get("content-type", "").split(";")[0].strip() == JPEG
        return response.content if right and response.content == first else None

    return payload


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # a key of `sources`
    resource: str  # "rendered" or "thumbnail"
    target_ms: float | None  # of cold_p50_ms

    @property
    def thumbnail(self) -> bool:
        return self.resource == "thumbnail"


CASES = (
    Case("rendered_ct_512", "ct", "rendered", TARGET_RENDERED_CT_P50_MS),
    Case("thumbnail_ct_512", "ct", "thumbnail", None),
    Case("rendered_ct_512_j2k", "ct_j2k", "rendered", None),
    Case("rendered_xray_3000", "xray", "rendered", None),
    Case("thumbnail_xray_3000", "xray", "thumbnail", TARGET_THUMBNAIL_XRAY_P50_MS),
)


def qualities(count: int) -> list[int]:
    """`count` JPEG qualities around the default: 90, 89, 91, 88, 92, ..."""
    return [QUALITY + (offset + 1) // 2 * (1 if offset % 2 == 0 else -1) for offset in range(count)]


def cold_urls(case: Case, holding: Holding, sizes: Sizes) -> tuple[list[str], list[str]]:
    """(warm-ups, timed) URLs, none asked twice. CT: one instance per request, default options; x-ray:
    each instance at several qualities. The warm-ups use an instance the timed requests never name."""
    resource = f"/{case.resource}"
    warm, timed = holding.urls[0], holding.urls[1:]
    if holding.source.name != "xray":
        return [url + resource for url in holding.urls[: sizes.warm_ups]], [
            url + resource for url in holding.urls[sizes.warm_ups :]
        ]
    warm_ups = [f"{warm}{resource}?quality={quality}" for quality in qualities(sizes.warm_ups)]
    levels = qualities(sizes.xray_qualities)
    return warm_ups, [f"{url}{resource}?quality={quality}" for quality in levels for url in timed]


def bare_render_ms(holding: Holding, repeats: int, *, thumbnail: bool) -> float:
    """Median ms of the same rendering in this process: decode (JPEG 2000), samples, pipeline, JPEG."""
    source, fmt = holding.source, holding.source.fmt
    ds = Dataset()
    if source.modality == "CT":
        ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = "-1024", "1", "40", "400"
    ds.PhotometricInterpretation = fmt.photometric_interpretation
    ds.BitsAllocated, ds.BitsStored = fmt.bits_allocated, fmt.bits_stored
    ds.PixelRepresentation = fmt.pixel_representation
    options = RenderOptions(thumbnail=thumbnail)
    times = []
    for _ in range(repeats + 1):  # the first one untimed
        start = time.perf_counter()
        native = (
            holding.stored_frame
            if source.transfer_syntax == ExplicitVRLittleEndian
            else decode_to_native(holding.stored_frame, source.transfer_syntax, fmt).data
        )
        frame = frame_samples(
            native,
            rows=fmt.rows,
            columns=fmt.columns,
            samples_per_pixel=1,
            bits_allocated=fmt.bits_allocated,
            bits_stored=fmt.bits_stored,
            pixel_representation=fmt.pixel_representation,
            planar_configuration=0,
            photometric_interpretation=fmt.photometric_interpretation,
        )
        encode_image([render_frame(frame, ds, options).image], options)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times[1:]) * 1000, 2)


class FirstAnswer:
    """A payload check that also keeps the first answer it sees (the cached repeats must equal it)."""

    def __init__(self, check: Callable[[Answer], bytes | None]) -> None:
        self.check = check
        self.answer: Answer | None = None
        self.__doc__ = check.__doc__

    def __call__(self, response: Answer) -> bytes | None:
        if self.answer is None:
            self.answer = response
        return self.check(response)


def run_case(server: FoveaServer, case: Case, holding: Holding, sizes: Sizes) -> dict[str, Any]:
    """Warm-ups, the timed cold requests, then the first cold request again and again (cached)."""
    size = expected_size(holding.source.fmt, thumbnail=case.thumbnail)
    warm_ups, timed = cold_urls(case, holding, sizes)
    cold, cached, first = Tally(), Tally(), FirstAnswer(jpeg_of(size))
    with KeepAliveClient() as client:
        rtt = health_rtt_ms(client, server.base_url)
        get_all(client, warm_ups, Tally(), JPEG, jpeg_of(size))
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            get_all(client, timed, cold, JPEG, first)
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)
        answer = first.answer
        if answer is None:
            raise BenchFailure(f"{case.name}: no timed request was sent")
        get_all(client, [timed[0]] * sizes.cached, cached, JPEG, same_as(answer.content))
    cold_stats = latency_fields(cold.latencies, percents=(50, 95))
    good = len(timed) - cold.non_200 - cold.bad_payloads
    repeats = 20 if holding.source.name != "xray" else 5
    return {
        "case": case.name,
        "resource": case.resource,
        "source": holding.source.fields(),
        "output_size": list(size),
        "example": "GET " + timed[0].removeprefix(server.base_url),
        "fovea_window": answer.headers.get("fovea-window"),
        "cold_means": COLD_MEANS,
        "cold_instances": len({url.split(f"/{case.resource}")[0] for url in timed}),
        "cold_n": len(timed),
        "cold_wall_s": round(wall, 3),
        **{f"cold_{key}": value for key, value in cold_stats.items()},
        "cached_n": sizes.cached,
        **{f"cached_{key}": value for key, value in latency_fields(cached.latencies, (50, 95)).items()},
        "jpeg_bytes_mean": cold.payload_bytes // max(1, good),
        "bare_render_p50_ms": bare_render_ms(holding, repeats, thumbnail=case.thumbnail),
        "server_cpu_ms_per_cold_request": round(sampler.server_cpu_s * 1000 / len(timed), 2),
        "non_200": cold.non_200 + cached.non_200,
        "bad_payloads": cold.bad_payloads + cached.bad_payloads,
        **memory,
        "baseline": {"health_rtt_p50_ms": rtt},
        "target": None if case.target_ms is None else {"cold_p50_ms": case.target_ms},
        "meets_target": None if case.target_ms is None else cold_stats["p50_ms"] <= case.target_ms,
    }


# --- command line -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    names = tuple(case.name for case in CASES)
    parser.add_argument("--only", choices=names, action="append", help="run this case (repeatable)")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "rendered.json")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    sizes = QUICK if args.quick else FULL
    server_args = server_arguments(args)
    selected = [case for case in CASES if args.only is None or case.name in args.only]
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-rendered-", dir=args.tmp_dir))
    common_fields = {
        "quick": args.quick,
        "server_workers": args.workers,
        "server_args": server_args,
        "machine": machine_facts(work),
    }
    results: list[dict[str, Any]] = []
    try:
        with FoveaServer(work / "data", server_args) as server:
            holdings = store_holdings(server, selected, sizes)
            for case in selected:
                record = {**run_case(server, case, holdings[case.name], sizes), **common_fields}
                emit(record, results)
                if record["non_200"] or record["bad_payloads"]:
                    raise BenchFailure(
                        f"{record['case']}: {record['non_200']} request(s) not 200, "
                        f"{record['bad_payloads']} answer(s) without the expected JPEG"
                    )
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_rendered: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
