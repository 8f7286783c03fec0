"""The Image Pixel attributes that size a native frame (PS3.3 C.7.6.3).

Why a module of its own: the frame table and the codecs both size native frames by it, and the
codec registry sits below the frame table's item scanner.
"""

from __future__ import annotations

from dataclasses import dataclass

# Native frames of these carry 2 samples per pixel on average (PS3.3 C.7.6.3.1.2).
_SUBSAMPLED_422 = frozenset({"YBR_FULL_422", "YBR_PARTIAL_422"})


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """The Image Pixel attributes that size a native frame (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    number_of_frames: int
    photometric_interpretation: str

    @property
    def frame_bits(self) -> int:
        """Bits of one native frame; YBR_FULL_422 / YBR_PARTIAL_422 store 2 samples per pixel."""
        subsampled = self.photometric_interpretation in _SUBSAMPLED_422
        samples = 2 if subsampled else self.samples_per_pixel
        return self.rows * self.columns * samples * self.bits_allocated

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame on its own (Bits Allocated 1: rounded up)."""
        return -(-self.frame_bits // 8)

    @property
    def native_value_bytes(self) -> int:
        """Bytes all native frames need together, pad byte excluded (PS3.5 8.1.1)."""
        return -(-(self.frame_bits * self.number_of_frames) // 8)
