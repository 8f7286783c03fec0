"""Layout tests and measures the encoders of several families share.

Why: "which layouts does this encoder hold" is answered in each family's module, from these few
facts (PS3.3 C.7.6.3); the lossy encoders measure a frame's span the same way.
"""

from __future__ import annotations

import numpy as np

from app.imaging.codecs.frame import FrameFormat

COLOUR = frozenset({"RGB", "YBR_FULL"})  # three full-resolution samples a codec may take as is
GREY = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"})
INTENSITY = frozenset({"MONOCHROME1", "MONOCHROME2"})  # grey a lossy codec may approximate


def any_layout(_fmt: FrameFormat) -> bool:
    return True


def plausible(fmt: FrameFormat) -> bool:
    """Attributes any native frame has (PS3.3 C.7.6.3): a size, a sample width, stored bits that fit."""
    if fmt.rows < 1 or fmt.columns < 1 or fmt.samples_per_pixel not in (1, 3):
        return False
    if fmt.bits_allocated != 1 and fmt.bits_allocated % 8:
        return False
    return 1 <= fmt.bits_stored <= fmt.bits_allocated and fmt.pixel_representation in (0, 1)


def full_resolution(fmt: FrameFormat) -> bool:
    """One sample per pixel and component (no YBR_*_422 subsampling), in a photometric a codec keeps."""
    photometric = GREY if fmt.samples_per_pixel == 1 else COLOUR
    return fmt.photometric_interpretation in photometric


def intensities(fmt: FrameFormat, *, colour: frozenset[str] = frozenset({"RGB"})) -> bool:
    """Samples a lossy codec may approximate: MONOCHROME1/2 (not palette indices) or `colour`.

    RGB only by default: the irreversible transforms (ICT, XYB) assume RGB input.
    """
    allowed = INTENSITY if fmt.samples_per_pixel == 1 else colour
    return fmt.photometric_interpretation in allowed


def ranges(samples: np.ndarray, fmt: FrameFormat) -> tuple[float, float]:
    """The Bits Stored range and the range the samples span (at least 1), as floats."""
    full_range = float((1 << fmt.bits_stored) - 1)
    span = float(max(1, int(samples.max()) - int(samples.min())))
    return full_range, min(span, full_range)


def psnr(original: np.ndarray, decoded: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB against `peak` (inf when identical)."""
    error = np.mean(np.square(decoded.astype(np.float64) - original.astype(np.float64)))
    if error == 0:
        return float("inf")
    return float(10 * np.log10(peak * peak / error))
