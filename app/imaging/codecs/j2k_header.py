"""The SIZ segment of a JPEG 2000 or HTJ2K codestream (ISO/IEC 15444-1 A.5.1; 15444-15 keeps it).

Why: SIZ follows SOC (FF4F) immediately and fixes the image the decoder builds: Lsiz (2 bytes),
Rsiz (2), Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz (4 each), Csiz (2), then per
component Ssiz (1: sign bit and precision - 1), XRsiz, YRsiz (1 each). The image is
(Xsiz - XOsiz) x (Ysiz - YOsiz). A codestream wrapped in the JP2 file format (15444-1 Annex I;
not what DICOM stores, but seen in the wild and read by the decoders) is found in its `jp2c` box.
"""

from __future__ import annotations

from app.imaging.codecs.stream_header import CodestreamHeader, HeaderError, need

SOC_SIZ = b"\xff\x4f\xff\x51"
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_SIZ_FIXED = 38  # Lsiz through Csiz
_MAX_TILES = 65535  # Isot is 16 bits (A.4.2)


def j2k_header(data: bytes, _frame_length: int) -> CodestreamHeader:
    """SIZ of the codestream at the start of `data` (or in the `jp2c` box of a JP2 file)."""
    start = _codestream_start(data)
    need(data, start + 4)
    if data[start : start + 4] != SOC_SIZ:
        raise HeaderError("not a JPEG 2000 codestream: it does not start with SOC and SIZ (FF4F FF51)")
    siz = start + 4
    need(data, siz + _SIZ_FIXED)
    length = _u16(data, siz)
    (xsiz, ysiz, x_origin, y_origin, tile_width, tile_height, tile_x, tile_y) = (
        _u32(data, siz + 4 + 4 * i) for i in range(8)
    )
    components = _u16(data, siz + 36)
    if length != _SIZ_FIXED + 3 * components:
        expected = _SIZ_FIXED + 3 * components
        raise HeaderError(f"SIZ is {length} bytes long, {expected} for {components} components")
    need(data, siz + length)
    if xsiz <= x_origin or ysiz <= y_origin or not tile_width or not tile_height:
        raise HeaderError(f"SIZ gives an empty image or tile ({xsiz}x{ysiz} from {x_origin},{y_origin})")
    if tile_x > x_origin or tile_y > y_origin:
        raise HeaderError("SIZ puts the tile grid's origin after the image's")
    tiles = -(-(xsiz - tile_x) // tile_width) * -(-(ysiz - tile_y) // tile_height)
    if tiles > _MAX_TILES:
        raise HeaderError(f"SIZ makes {tiles} tiles, more than a codestream can number ({_MAX_TILES})")
    precision = 0
    for index in range(components):
        ssiz, x_step, y_step = data[siz + _SIZ_FIXED + 3 * index : siz + _SIZ_FIXED + 3 * index + 3]
        if not x_step or not y_step:
            raise HeaderError(f"SIZ gives component {index} a sub-sampling of 0")
        precision = max(precision, (ssiz & 0x7F) + 1)
    return CodestreamHeader("JPEG 2000 SIZ", xsiz - x_origin, ysiz - y_origin, components, precision)


def _codestream_start(data: bytes) -> int:
    """0 for a bare codestream; the contents of the `jp2c` box for a JP2 file."""
    if not data.startswith(JP2_SIGNATURE[:4]) or data[4:8] != b"jP  ":
        return 0
    position = 0
    while True:
        need(data, position + 8)
        size, kind = _u32(data, position), data[position + 4 : position + 8]
        header = 8
        if size == 1:  # a 64-bit length follows the type
            need(data, position + 16)
            size, header = int.from_bytes(data[position + 8 : position + 16], "big"), 16
        if kind == b"jp2c":
            return position + header
        if size == 0 or size < header:
            raise HeaderError("a JP2 file without a codestream box (jp2c)")
        position += size


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "big")
