"""Native (uncompressed) pixel data as `application/octet-stream` frames (PS3.18 8.7.3.3.1).

Why: octet-stream frames are little-endian, whatever the stored syntax; only Explicit VR Big Endian
stores words in the other order (PS3.5 A.3), so its 16/32/64-bit samples are swapped on the way out.
"""

from __future__ import annotations

import numpy as np

_WORD_TYPES = {16: ">u2", 32: ">u4", 64: ">u8"}


def little_endian_frame(frame: bytes, *, bits_allocated: int, big_endian: bool) -> bytes:
    """The frame's bytes in little-endian sample order (1- and 8-bit samples have no byte order)."""
    word = _WORD_TYPES.get(bits_allocated)
    if not big_endian or word is None:
        return frame
    usable = len(frame) // (bits_allocated // 8) * (bits_allocated // 8)
    swapped = np.frombuffer(frame, dtype=word, count=usable // (bits_allocated // 8)).byteswap()
    return swapped.tobytes() + frame[usable:]
