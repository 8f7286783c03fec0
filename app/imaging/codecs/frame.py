"""One frame's layout and the values every codec family shares: what a decoder is given and gives back.

Why a module of its own: the family modules (`codecs.jpeg`, `codecs.jpegls`, ...) and the entry points
(`codecs.decode`, `codecs.encode`) all need these, and the entry points import the families.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.imaging.pixel_layout import PixelLayout
from app.imaging.syntaxes import TransferSyntax


class FrameDecodeError(ValueError):
    """A frame that cannot be decoded to native pixels; the message names the syntax and why."""


class FrameEncodeError(ValueError):
    """A native frame that cannot be encoded into a syntax; the message names the syntax and why."""


class DecoderRefused(Exception):
    """A decoder could not decode the frame; the next decoder of the family gets it.

    `reason` is reported when no decoder succeeds (None: say nothing, the next one speaks); the
    codec's own error is the `__cause__`.
    """

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """The Image Pixel attributes a decoder needs (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int  # 0 unsigned, 1 signed
    photometric_interpretation: str
    planar_configuration: int  # 0 when absent

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame (4:2:2 subsampled, Bits Allocated 1 rounded up)."""
        layout = PixelLayout(
            self.rows,
            self.columns,
            self.samples_per_pixel,
            self.bits_allocated,
            1,
            self.photometric_interpretation,
        )
        return layout.frame_bytes

    @property
    def description(self) -> str:
        """The layout in words, for messages: "512x512 MONOCHROME2, 1 sample(s) of 12 signed bits in 16"."""
        sign = "signed" if self.pixel_representation else "unsigned"
        return (
            f"{self.rows}x{self.columns} {self.photometric_interpretation}, {self.samples_per_pixel} "
            f"sample(s) of {self.bits_stored} {sign} bits in {self.bits_allocated}"
        )


@dataclass(frozen=True, slots=True)
class NativeFrame:
    """One frame as native little-endian bytes, with the colour attributes that describe them."""

    data: bytes
    photometric_interpretation: str  # of `data` (e.g. "RGB" after a JPEG YBR_FULL_422 decode)
    planar_configuration: int  # of `data`


# --- the decoders' shared tail: check the array, write its bytes -----------------------------------


def to_native(pixels: np.ndarray, syntax: TransferSyntax, fmt: FrameFormat, photometric: str) -> NativeFrame:
    """The decoded array as native little-endian bytes, once its shape is the frame's."""
    expected: tuple[int, ...] = (fmt.rows, fmt.columns)
    if fmt.samples_per_pixel != 1:
        expected += (fmt.samples_per_pixel,)
    if pixels.shape != expected:
        raise FrameDecodeError(
            f"{syntax.label}: decoded to shape {pixels.shape}, the frame is {expected} "
            "(rows, columns[, samples])"
        )
    if fmt.bits_allocated == 1:
        data = np.packbits(pixels, axis=None, bitorder="little").tobytes()
    else:
        data = pixels.astype(sample_dtype(syntax, fmt), copy=False).tobytes()
    return NativeFrame(data, photometric, 0)


def as_sample_type(pixels: np.ndarray, syntax: TransferSyntax, fmt: FrameFormat) -> np.ndarray:
    """A decoded integer array in the frame's sample type, unused high bits corrected.

    Why: pydicom corrects the bits above Bits Stored for every syntax but JPEG-LS and JPEG 2000
    (sign-extended when signed, zeroed when not; PS3.5 8.1.1), so decoders it lacks do the same.
    """
    if fmt.bits_allocated == 1:
        return pixels
    dtype = sample_dtype(syntax, fmt)
    if pixels.dtype.kind not in "ui" or pixels.dtype.itemsize > dtype.itemsize:
        raise FrameDecodeError(
            f"{syntax.label}: decoded {pixels.dtype} samples do not fit Bits Allocated {fmt.bits_allocated}"
        )
    samples = pixels.astype(dtype)  # a copy: corrected in place
    correct_unused_bits(samples, fmt)
    return samples


def correct_unused_bits(samples: np.ndarray, fmt: FrameFormat) -> None:
    """Sign-extend (signed) or zero (unsigned) the bits above Bits Stored, in place (PS3.5 8.1.1).

    The left shift drops the unused bits; the arithmetic (signed) or logical (unsigned) right shift
    brings the stored ones back, extended the way the sample type says.
    """
    unused = fmt.bits_allocated - fmt.bits_stored
    if unused > 0:
        np.left_shift(samples, unused, out=samples)
        np.right_shift(samples, unused, out=samples)


def sample_dtype(syntax: TransferSyntax, fmt: FrameFormat) -> np.dtype:
    if fmt.bits_allocated not in (8, 16, 32, 64):
        raise FrameDecodeError(f"{syntax.label}: Bits Allocated {fmt.bits_allocated} is not supported")
    kind = "i" if fmt.pixel_representation else "u"
    return np.dtype(f"<{kind}{fmt.bits_allocated // 8}")


# --- the encoders' shared head: read the samples ----------------------------------------------------


def samples_of(native: bytes, fmt: FrameFormat) -> np.ndarray:
    """The frame's samples as (rows, columns[, samples]), interleaved, high bits corrected."""
    kind = "i" if fmt.pixel_representation else "u"
    samples = np.frombuffer(native, f"<{kind}{fmt.bits_allocated // 8}")
    if fmt.samples_per_pixel == 1:
        samples = samples.reshape(fmt.rows, fmt.columns)
    elif fmt.planar_configuration == 1:
        samples = samples.reshape(fmt.samples_per_pixel, fmt.rows, fmt.columns).transpose(1, 2, 0)
    else:
        samples = samples.reshape(fmt.rows, fmt.columns, fmt.samples_per_pixel)
    samples = np.array(samples, order="C")  # a copy: corrected in place
    correct_unused_bits(samples, fmt)
    return samples


def unsigned_pattern(samples: np.ndarray, fmt: FrameFormat) -> np.ndarray:
    """Signed samples as their Bits Stored bit pattern, unsigned (JPEG-LS, JPEG lossless); else as is."""
    if not fmt.pixel_representation:
        return samples
    unsigned = samples.view(f"<u{samples.itemsize}")
    pattern: np.ndarray = unsigned & np.array((1 << fmt.bits_stored) - 1, unsigned.dtype)
    return pattern
