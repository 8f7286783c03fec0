"""Two `fovea serve` processes sharing a derivative cache in Redis: what one made, the other reads.

Node A transcodes a frame (native pixels into JPEG-LS) and renders an image; node B's first request for
each must be served from the shared cache, proved by B's own counters: a shared-cache hit and nothing
made (`fovea_derivatives_made_total` stays 0), and the same bytes as A's.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from pydicom.uid import JPEGLSLossless, generate_uid

from app.imaging.codecs.decode import FrameFormat, decode_to_native
from tests.conftest import REDIS_URL, Backend
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.server_processes import ServerProcess, running_server
from tests.integration.test_metrics import samples, value

FRAME_ACCEPT = f"image/jls; transfer-syntax={JPEGLSLossless}"


def made(server: ServerProcess, cache: str) -> float:
    return value(samples(server.base_url), "fovea_derivatives_made_total", cache=cache)


def shared_lookups(server: ServerProcess, cache: str, result: str) -> float:
    return value(
        samples(server.base_url), "fovea_cache_lookups_total", cache=f"{cache}-shared", result=result
    )


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_the_second_node_reads_what_the_first_made_instead_of_making_it(
    backend: Backend, redis_prefix: str, tmp_path: Path
) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    sent = make_instance(study_uid=study, series_uid=series, sop_uid=sop, frames=2, seed=3)
    settings = backend.settings(
        ingest_workers=1,
        codec_workers=1,
        shared_cache_url=REDIS_URL,
        shared_cache_prefix=redis_prefix,
    )
    log = tmp_path / "servers.log"
    with running_server(settings, log) as node_a, running_server(settings, log) as node_b:
        stored = httpx.post(
            f"{node_a.dicomweb}/studies",
            content=multipart_body([sent]),
            headers={"Content-Type": stow_content_type()},
            timeout=60,
        )
        assert stored.status_code == 200, stored.text
        instance = f"/studies/{study}/series/{series}/instances/{sop}"

        from_a = httpx.get(
            f"{node_a.dicomweb}{instance}/frames/2", headers={"Accept": FRAME_ACCEPT}, timeout=60
        )
        assert from_a.status_code == 200, from_a.text
        assert made(node_a, "transcoded-frames") == 1
        assert shared_lookups(node_a, "transcoded-frames", "miss") == 1
        assert value(samples(node_a.base_url), "fovea_shared_cache_bytes") >= len(from_a.content)

        from_b = httpx.get(
            f"{node_b.dicomweb}{instance}/frames/2", headers={"Accept": FRAME_ACCEPT}, timeout=60
        )
        assert from_b.status_code == 200, from_b.text
        assert from_b.headers["content-type"] == from_a.headers["content-type"]
        assert from_b.content == from_a.content
        assert made(node_b, "transcoded-frames") == 0
        assert shared_lookups(node_b, "transcoded-frames", "hit") == 1
        # bit-exact: the shared JPEG-LS frame decodes to the pixels that were sent
        fmt = FrameFormat(64, 64, 1, 16, 16, 1, "MONOCHROME2", 0)
        pixels = np.random.default_rng(3).integers(-1024, 3000, (2, 64, 64), dtype=np.int16)
        assert decode_to_native(from_b.content, JPEGLSLossless, fmt).data == pixels[1].astype("<i2").tobytes()

        rendered_a = httpx.get(
            f"{node_a.dicomweb}{instance}/rendered", headers={"Accept": "image/png"}, timeout=60
        )
        assert rendered_a.status_code == 200, rendered_a.text
        rendered_b = httpx.get(
            f"{node_b.dicomweb}{instance}/rendered", headers={"Accept": "image/png"}, timeout=60
        )
        assert rendered_b.status_code == 200, rendered_b.text
        assert rendered_b.content == rendered_a.content
        assert rendered_b.headers["fovea-window"] == rendered_a.headers["fovea-window"]
        assert made(node_a, "rendered-images") == 1
        assert made(node_b, "rendered-images") == 0
        assert shared_lookups(node_b, "rendered-images", "hit") == 1
