"""What a viewport canvas shows: brightness, contrast, and how closely it matches the expected image.

Why a reference match on top of contrast: a canvas can be bright and contrasty yet show the wrong thing
(a stretched thumbnail, garbled decoded pixels, the wrong series). Correlation with the stored pixels,
scaled the way the viewer fits an image (whole image, centred, aspect kept), checks it is the image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Thresholds on 8-bit luminance, loose enough for any window the viewer picks, strict enough that a
# blank, black, uniformly grey or noise-filled canvas fails.
MIN_MEAN = 20.0  # a black canvas is ~0
MIN_STD = 25.0  # a uniform canvas is 0
MIN_SPREAD = 80.0  # 99th minus 1st percentile
MIN_CORRELATION = 0.9  # with the expected image, resampled to its size


@dataclass(frozen=True)
class CanvasStats:
    width: int
    height: int
    mean: float
    std: float
    spread: float  # 99th minus 1st percentile of the drawn image's luminance
    correlation: float  # Pearson correlation of the drawn image with the expected one

    def problems(self) -> list[str]:
        """Why this canvas does not show the expected image; empty when it does."""
        checks = (
            (self.mean >= MIN_MEAN, f"mean luminance {self.mean:.1f} < {MIN_MEAN} (black?)"),
            (self.std >= MIN_STD, f"standard deviation {self.std:.1f} < {MIN_STD} (blank?)"),
            (self.spread >= MIN_SPREAD, f"1-99 percentile spread {self.spread:.1f} < {MIN_SPREAD}"),
            (
                self.correlation >= MIN_CORRELATION,
                f"correlation with the expected image {self.correlation:.3f} < {MIN_CORRELATION}",
            ),
        )
        return [message for passed, message in checks if not passed]


def luminance(png: bytes) -> np.ndarray:
    """The PNG as a float 2-D array of 8-bit luminance (alpha dropped)."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


def fitted_region(canvas: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """The part of the canvas an image of rows x columns square pixels occupies when fitted and centred."""
    height, width = canvas.shape
    scale = min(height / rows, width / columns)
    drawn_height, drawn_width = round(rows * scale), round(columns * scale)
    top, left = (height - drawn_height) // 2, (width - drawn_width) // 2
    return canvas[top : top + drawn_height, left : left + drawn_width]


def canvas_stats(png: bytes, expected: np.ndarray) -> CanvasStats:
    """Statistics of a canvas screenshot against the expected image's stored pixel values."""
    canvas = luminance(png)
    region = fitted_region(canvas, *expected.shape)
    rows, columns = expected.shape
    with Image.fromarray(region.astype(np.uint8)) as drawn:
        resampled = np.asarray(drawn.resize((columns, rows), Image.Resampling.BOX), dtype=np.float64)
    low, high = np.percentile(region, (1, 99))
    return CanvasStats(
        width=canvas.shape[1],
        height=canvas.shape[0],
        mean=float(region.mean()),
        std=float(region.std()),
        spread=float(high - low),
        correlation=_correlation(resampled, expected.astype(np.float64)),
    )


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0  # a uniform image correlates with nothing
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
