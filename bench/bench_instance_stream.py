"""Whole-instance transcoding: time to the first byte and to the last, against the bare encoder.

Why: a whole instance asked for in another encapsulated syntax (`Accept: application/dicom;
transfer-syntax=...`) is re-encoded frame by frame. The first byte should go out once the first frame
is encoded: **TTFB <= one frame's encode time + 20 ms**; and the frames should keep every codec worker
busy: **total <= frames x encode time / codec workers + 10 %**. The encode time is measured here, by
the bare encoder on the same frames in this process, one frame at a time.

One `fovea serve` is given one multi-frame CT instance (Explicit VR Little Endian, 512x512, unsigned
12-bit-like values in 16 bits) through STOW-RS, then the instance is asked for whole, once per target
syntax (after one untimed warm-up request per syntax), and every frame of the answer is decoded and
compared with what was stored. Prints one JSON line per target syntax and writes them to
bench/results/instance_stream.json.

    .venv/bin/python bench/bench_instance_stream.py [--quick] [--frames N] [--workers N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom
from bench_frames import instance_url, part10, store
from bench_stow import ct_dataset
from bench_transcode import ct_frames
from common import (
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    add_server_arguments,
    emit,
    machine_facts,
    server_arguments,
    stop_on_sigterm,
    write_results,
)
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import encode_native_frame

TARGETS = {
    "jls": "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "j2k": "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "htj2k": "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "rle": "1.2.840.10008.1.2.5",  # RLE Lossless
}
TTFB_SLACK_S = 0.020
TOTAL_SLACK = 1.10


def encode_seconds(frames: list[bytes], syntax: str, fmt: FrameFormat) -> float:
    """Median seconds the bare encoder takes for one frame, over (up to) the first 16 frames."""
    times = []
    for frame in frames[:16]:
        started = time.perf_counter()
        encode_native_frame(frame, syntax, fmt)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fetch(client: httpx.Client, url: str, syntax: str) -> tuple[float, float, bytes]:
    """Seconds to the first body byte and to the last, and the body."""
    headers = {"Accept": f"application/dicom; transfer-syntax={syntax}", "Accept-Encoding": "identity"}
    started = time.perf_counter()
    first = None
    chunks = []
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise BenchFailure(f"{syntax}: {response.status_code} {response.read()[:300]!r}")
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - started
            chunks.append(chunk)
    total = time.perf_counter() - started
    return first or total, total, b"".join(chunks)


def check_frames(body: bytes, syntax: str, stored: list[bytes], fmt: FrameFormat) -> None:
    ds = pydicom.dcmread(io.BytesIO(body))
    if ds.file_meta.TransferSyntaxUID != syntax:
        raise BenchFailure(f"asked for {syntax}, got {ds.file_meta.TransferSyntaxUID}")
    frames = list(generate_frames(ds.PixelData, number_of_frames=len(stored)))
    for number, (frame, native) in enumerate(zip(frames, stored, strict=True), 1):
        if decode_to_native(frame, syntax, fmt).data != native:
            raise BenchFailure(f"{syntax}: frame {number} does not decode to the stored pixels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 frames of 64x64, for the smoke test")
    parser.add_argument("--frames", type=int, help="frames in the instance (default 200)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "instance_stream.json")
    add_server_arguments(parser)
    args = parser.parse_args()
    stop_on_sigterm()
    count = args.frames or (16 if args.quick else 200)
    size = 64 if args.quick else 512
    pixels = ct_frames(count, size, seed=41)
    stored = [frame.tobytes() for frame in pixels]
    fmt = FrameFormat(size, size, 1, 16, 16, 0, "MONOCHROME2", 0)
    ds = ct_dataset(generate_uid(), generate_uid(), instance_number=1, frames=count)
    ds.Rows = ds.Columns = size
    ds.PixelRepresentation = 0
    ds.PixelData = b"".join(stored)
    workers = os.cpu_count() or 1  # the server's codec pool: one worker per core
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(dir=args.tmp_dir) as work,
        FoveaServer(Path(work) / "data", server_arguments(args)) as server,
        httpx.Client(timeout=600.0) as client,
    ):
        store(client, server.base_url, [part10(ds)])
        url = instance_url(server.base_url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        for name, syntax in TARGETS.items():
            encode_s = encode_seconds(stored, syntax, fmt)
            fetch(client, url, syntax)  # warm-up: codec workers started, imports done
            ttfb_s, total_s, body = fetch(client, url, syntax)
            check_frames(body, syntax, stored, fmt)
            ttfb_target_s = encode_s + TTFB_SLACK_S
            total_target_s = count * encode_s / workers * TOTAL_SLACK
            emit(
                {
                    "case": "instance_stream",
                    "target": name,
                    "frames": count,
                    "frame_bytes": len(stored[0]),
                    "codec_workers": workers,
                    "bare_encode_ms": round(encode_s * 1000, 2),
                    "ttfb_ms": round(ttfb_s * 1000, 2),
                    "ttfb_target_ms": round(ttfb_target_s * 1000, 2),
                    "total_s": round(total_s, 3),
                    "total_target_s": round(total_target_s, 3),
                    "body_bytes": len(body),
                    "meets_target": ttfb_s <= ttfb_target_s and total_s <= total_target_s,
                    "quick": args.quick,
                    "server_workers": args.workers,
                    "machine": machine_facts(),
                },
                results,
            )
    write_results(results, args.out)


if __name__ == "__main__":
    try:
        main()
    except BenchFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
