"""The JPEG 2000 family (ISO/IEC 15444-1 and -2; PS3.5 8.2.4, 8.2.9): .90, .91, .92, .93.

Decoding: pydicom's plugins (pylibjpeg-openjpeg holds the GIL: decodes run in a process). pydicom
3.0.2 has no Part 2 decoders; OpenJPEG, behind the Part 1 ones, reads Part 2 codestreams.
Encoding: OpenJPEG through imagecodecs (releases the GIL), a J2K codestream with the precision and
sign of Bits Stored and Pixel Representation. Not pylibjpeg-openjpeg: its encoder crashes when two
threads call it at once. Part 2 is not encoded: no installed encoder writes its transforms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import MappingProxyType

import imagecodecs
import numpy as np
from pydicom.uid import JPEG2000, JPEG2000MC, JPEG2000Lossless, JPEG2000MCLossless

from app.imaging.codecs.family import CodecFamily, Encoder
from app.imaging.codecs.frame import FrameFormat
from app.imaging.codecs.j2k_header import j2k_header
from app.imaging.codecs.layouts import full_resolution, intensities, psnr, ranges
from app.imaging.codecs.pydicom_decoding import pydicom_decoder

_JPEG2000_PSNR_DB = 50  # rate-allocation target, against the range the frame's samples span
_JPEG2000_PSNR_FLOOR_DB = 44  # below this on decoding, re-encode with every bit-plane kept
_ISO_15444_1 = "ISO_15444_1"  # the Lossy Image Compression Method
# The first bytes of a codestream, SOC then SIZ; HTJ2K's are the same.
CODESTREAM_START = b"\xff\x4f\xff\x51"

_PART_2_DECODED_AS: Mapping[str, str] = MappingProxyType(
    {JPEG2000MCLossless: JPEG2000Lossless, JPEG2000MC: JPEG2000}
)
_NO_PART_2_ENCODER = "no installed encoder writes JPEG 2000 Part 2 multi-component transforms"
# OpenJPEG codes a frame's code-blocks in this many threads: a lone request's frame in about half the
# time on two cores, the same codestream byte for byte, and no fewer frames per second when every core
# is already busy encoding (measured on 512x512 CT frames: 33 ms against 18.5 ms; 57 against 55 frames/s).
ENCODE_THREADS = min(4, os.cpu_count() or 1)


def _jpeg2k(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Reversible 5/3 wavelet, no colour transform, J2K codestream (not a JP2 file)."""
    return bytes(
        imagecodecs.jpeg2k_encode(
            samples,
            level=0,
            codecformat=imagecodecs.JPEG2K.CODEC.J2K,
            reversible=True,
            mct=False,
            bitspersample=fmt.bits_stored,
            numthreads=ENCODE_THREADS,
        )
    )


def _jpeg2k_lossy(samples: np.ndarray, fmt: FrameFormat) -> bytes:
    """Irreversible 9/7 at a PSNR target; colour through the irreversible component transform.

    imagecodecs' `level` is OpenJPEG's fixed-quality target in dB (None: no rate allocation, every
    bit-plane coded). The decode that checks the result costs about a fifth of the encode.
    """

    def encode(target_db: int | None) -> bytes:
        return bytes(
            imagecodecs.jpeg2k_encode(
                samples,
                level=target_db,
                codecformat=imagecodecs.JPEG2K.CODEC.J2K,
                reversible=False,
                mct=fmt.samples_per_pixel == 3,
                bitspersample=fmt.bits_stored,
                numthreads=ENCODE_THREADS,
            )
        )

    # OpenJPEG measures PSNR against the Bits Stored range: raise the target by what it adds
    full_range, span = ranges(samples, fmt)
    encoded = encode(math.ceil(_JPEG2000_PSNR_DB + 20 * math.log10(full_range / span)))
    decoded = imagecodecs.jpeg2k_decode(encoded, numthreads=ENCODE_THREADS)
    if psnr(samples, decoded, span) < _JPEG2000_PSNR_FLOOR_DB:
        encoded = encode(None)
    return encoded


def jpeg2k_layout(fmt: FrameFormat) -> bool:
    """Interleaved full-resolution samples of 8 or 16 bits (HTJ2K starts from the same)."""
    return full_resolution(fmt) and fmt.bits_allocated in (8, 16)


def _jpeg2k_lossy_layout(fmt: FrameFormat) -> bool:
    return jpeg2k_layout(fmt) and intensities(fmt)


FAMILY: CodecFamily = CodecFamily(
    name="jpeg2000",
    decoders=(pydicom_decoder(decoded_as=_PART_2_DECODED_AS),),
    encoders=MappingProxyType(
        {
            JPEG2000Lossless: Encoder(jpeg2k_layout, _jpeg2k),
            JPEG2000: Encoder(_jpeg2k_lossy_layout, _jpeg2k_lossy, method=_ISO_15444_1, colour="YBR_ICT"),
        }
    ),
    no_encoder=MappingProxyType({JPEG2000MCLossless: _NO_PART_2_ENCODER, JPEG2000MC: _NO_PART_2_ENCODER}),
    decode_in_process=True,
    start_markers=(CODESTREAM_START,),
    header_reader=j2k_header,
)
