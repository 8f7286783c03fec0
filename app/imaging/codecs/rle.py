"""The RLE Lossless family (PS3.5 8.2.2, Annex G).

Decoding: pydicom (pylibjpeg-rle, else its own numpy decoder). pylibjpeg-rle holds the GIL, but at
under 1 ms per 512 KiB frame it costs less than the hand-off to a process, so it runs in a thread.
Encoding: pylibjpeg-rle, PackBits segments, most significant byte of each sample first; 8, 16 or 32
bits, 1 or 3 samples, at most 15 segments. It holds the GIL: encodes run in a process.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from pydicom.uid import RLELossless
from rle.utils import encode_pixel_data as rle_encode_pixel_data

from app.imaging.codecs.family import CodecFamily, Encoder
from app.imaging.codecs.frame import FrameFormat
from app.imaging.codecs.layouts import full_resolution
from app.imaging.codecs.pydicom_decoding import pydicom_decoder
from app.imaging.codecs.rle_header import rle_header

_RLE_MAX_SEGMENTS = 15  # PS3.5 G.2: the RLE header has room for 15 segment offsets


def _rle(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """PackBits segments, most significant byte of each sample first (PS3.5 G.2)."""
    return bytes(
        rle_encode_pixel_data(
            samples.tobytes(),
            byteorder="<",
            rows=fmt.rows,
            columns=fmt.columns,
            samples_per_pixel=fmt.samples_per_pixel,
            bits_allocated=fmt.bits_allocated,
        )
    )


def _rle_layout(fmt: FrameFormat) -> bool:
    segments = fmt.samples_per_pixel * fmt.bits_allocated // 8
    return fmt.bits_allocated in (8, 16, 32) and full_resolution(fmt) and segments <= _RLE_MAX_SEGMENTS


FAMILY: CodecFamily = CodecFamily(
    name="rle",
    decoders=(pydicom_decoder(),),
    encoders=MappingProxyType({RLELossless: Encoder(_rle_layout, _rle)}),
    encode_in_process=True,
    header_reader=rle_header,
)
