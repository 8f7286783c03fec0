"""The size header and image metadata at the start of a JPEG XL codestream (ISO/IEC 18181-1).

Why: the codestream opens with the signature FF 0A, then bit-packed fields, least significant bit
first: SizeHeader, then ImageMetadata, whose leading fields give the bit depth, the number of extra
channels and the colour space (grey: 1 channel, else 3). Fields use the standard's U32 coding: two
selector bits choose one of four distributions, each a constant or a number of bits plus an offset.
A codestream in the ISO BMFF-style container (18181-2) is found in its `jxlc` box, or its first
`jxlp` box (after that box's 4-byte part index).

Read here: SizeHeader; ImageMetadata up to its colour encoding, when it has no extra channels (with
extra channels, their descriptions come first: only the size and bit depth are read then).
"""

from __future__ import annotations

from app.imaging.codecs.stream_header import CodestreamHeader, HeaderError, HeaderTruncated

CODESTREAM_SIGNATURE = b"\xff\x0a"
CONTAINER_SIGNATURE = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_GREY = 1  # ColourEncoding.colour_space: 0 RGB, 1 grey, 2 XYB, 3 unknown
# xsize = ysize * numerator / denominator for the SizeHeader ratios 1..7
_RATIOS = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))

# U32 distributions: an int is a constant, (bits, offset) is that many bits plus the offset.
_Distribution = int | tuple[int, int]
_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
_PREVIEW_DIV8 = (16, 32, (5, 1), (9, 33))
_PREVIEW = ((6, 1), (8, 65), (10, 321), (12, 1345))
_TPS_NUMERATOR = (100, 1000, (10, 1), (30, 1))
_TPS_DENOMINATOR = (1, 1001, (8, 1), (10, 1))
_NUM_LOOPS = (0, (3, 0), (16, 0), (32, 0))
_INTEGER_BITS = (8, 10, 12, (6, 1))
_FLOAT_BITS = (32, 16, 24, (6, 1))
_EXTRA_CHANNELS = (0, 1, (4, 2), (12, 1))
_ENUM = (0, 1, (4, 2), (6, 18))


class _Bits:
    """Reads bits least significant first, as 18181-1 packs them."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def read(self, count: int) -> int:
        end = self.position + count
        if end > len(self.data) * 8:
            raise HeaderTruncated("the JPEG XL header runs past the bytes given")
        value = int.from_bytes(self.data[self.position // 8 : -(-end // 8)], "little")
        value = (value >> (self.position % 8)) & ((1 << count) - 1)
        self.position = end
        return value

    def flag(self) -> bool:
        return bool(self.read(1))

    def u32(self, distributions: tuple[_Distribution, ...]) -> int:
        chosen = distributions[self.read(2)]
        if isinstance(chosen, int):
            return chosen
        bits, offset = chosen
        return self.read(bits) + offset


def jpegxl_header(data: bytes, _frame_length: int) -> CodestreamHeader:
    """Size, bit depth and (without extra channels) colour channel count of a JPEG XL frame."""
    codestream = _codestream(data)
    if not codestream.startswith(CODESTREAM_SIGNATURE):
        if len(codestream) < 2:
            raise HeaderTruncated("the JPEG XL header runs past the bytes given")
        raise HeaderError("not a JPEG XL codestream: it does not start with FF0A or the container box")
    bits = _Bits(codestream[2:])
    columns, rows = _size(bits)
    if bits.flag():  # all_default: 8-bit samples, no extra channels, sRGB (3 channels)
        return CodestreamHeader("JPEG XL size", columns, rows, 3, 8)
    if bits.flag():  # extra_fields
        bits.read(3)  # orientation
        if bits.flag():  # intrinsic size: a display hint, not the decoded size
            _size(bits)
        if bits.flag():
            _preview(bits)
        if bits.flag():  # animation
            bits.u32(_TPS_NUMERATOR), bits.u32(_TPS_DENOMINATOR), bits.u32(_NUM_LOOPS), bits.flag()
    precision = bits.u32(_FLOAT_BITS) if bits.flag() else bits.u32(_INTEGER_BITS)
    bits.flag()  # modular_16_bit_buffer_sufficient
    extra_channels = bits.u32(_EXTRA_CHANNELS)
    if extra_channels:
        if extra_channels > 3:  # DICOM images have at most 3 samples per pixel
            raise HeaderError(f"the JPEG XL header declares {extra_channels} extra channels")
        return CodestreamHeader("JPEG XL size", columns, rows, None, precision)
    bits.flag()  # xyb_encoded
    channels = 3
    if not bits.flag():  # colour encoding not all_default (sRGB)
        bits.flag()  # want_icc
        channels = 1 if bits.u32(_ENUM) == _GREY else 3
    return CodestreamHeader("JPEG XL size", columns, rows, channels, precision)


def _size(bits: _Bits) -> tuple[int, int]:
    """SizeHeader: (xsize, ysize)."""
    small = bits.flag()
    rows = (bits.read(5) + 1) * 8 if small else bits.u32(_SIZE)
    ratio = bits.read(3)
    if ratio:
        numerator, denominator = _RATIOS[ratio - 1]
        return rows * numerator // denominator, rows
    columns = (bits.read(5) + 1) * 8 if small else bits.u32(_SIZE)
    return columns, rows


def _preview(bits: _Bits) -> None:
    """PreviewHeader, skipped."""
    div8 = bits.flag()
    bits.u32(_PREVIEW_DIV8 if div8 else _PREVIEW)
    if bits.read(3) == 0:
        bits.u32(_PREVIEW_DIV8 if div8 else _PREVIEW)


def _codestream(data: bytes) -> bytes:
    """The codestream's first bytes: `data` itself, or the contents of its jxlc or first jxlp box."""
    if not data.startswith(CONTAINER_SIGNATURE[:8]):
        return data
    position = 0
    while True:
        if len(data) < position + 8:
            raise HeaderTruncated("the JPEG XL container runs past the bytes given")
        size, kind = int.from_bytes(data[position : position + 4], "big"), data[position + 4 : position + 8]
        header = 8
        if size == 1:
            if len(data) < position + 16:
                raise HeaderTruncated("the JPEG XL container runs past the bytes given")
            size, header = int.from_bytes(data[position + 8 : position + 16], "big"), 16
        if kind == b"jxlc":
            return data[position + header :]
        if kind == b"jxlp":
            return data[position + header + 4 :]
        if size == 0 or size < header:
            raise HeaderError("a JPEG XL container without a codestream box (jxlc or jxlp)")
        position += size
