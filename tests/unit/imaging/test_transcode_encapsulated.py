"""Re-encoding a whole instance into an encapsulated syntax: layout, offset tables, spool, bookkeeping.

The outputs are read back by pydicom and, where installed, by DCMTK and GDCM (tests/dicom_tools.py),
and their pixels compared bit for bit with the native frames they were encoded from.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    MPEG4HP41,
    UID,
    BasicTextSRStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from app.imaging import instance_transcode
from app.imaging.codecs.decode import FrameFormat, decode_to_native
from app.imaging.codecs.encode import encode_native_frame
from app.imaging.encapsulation import ExtendedOffsets, frame_starts, scan_item_stream
from app.imaging.instance_transcode import EncodedPixels, iter_encapsulated
from app.imaging.syntaxes import find_transfer_syntax
from tests.dicom_tools import dcmtk_decompress, dcmtk_dump, dcmtk_transfer_syntax, gdcm_decompress

DEFLATE = "1.2.840.10008.1.2.8.1"
PIXEL_DATA_HEADER = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


# --- building sources and encoded frames ----------------------------------------------------------


def image(frames: np.ndarray, *, bits_stored: int, photometric: str, planar: int | None = None) -> Dataset:
    """A Secondary Capture data set holding `frames` (frames, rows, columns[, samples]) natively."""
    samples = frames.shape[3] if frames.ndim == 4 else 1
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientName = "Doe^John"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = frames.shape[1], frames.shape[2], samples
    ds.PhotometricInterpretation = photometric
    if planar is not None:
        ds.PlanarConfiguration = planar
    bits = frames.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
        bits,
        bits_stored,
        bits_stored - 1,
        0,
    )
    ds.NumberOfFrames = frames.shape[0]
    ds.PixelData = frames.tobytes()
    return ds


def part10(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    buffer = io.BytesIO()
    little = syntax != ExplicitVRBigEndian
    pydicom.dcmwrite(buffer, ds, implicit_vr=False, little_endian=little, enforce_file_format=True)
    return buffer.getvalue()


def grey16(frames: int = 3) -> np.ndarray:
    """12 bits stored in 16, with both extremes present."""
    pixels = np.random.default_rng(16).integers(0, 4096, (frames, 12, 10), dtype=np.uint16)
    pixels[0, 0, :2] = (0, 4095)
    return pixels


def rgb8(frames: int = 2) -> np.ndarray:
    return np.random.default_rng(8).integers(0, 256, (frames, 9, 11, 3), dtype=np.uint8)


def frame_format(frames: np.ndarray, bits_stored: int) -> FrameFormat:
    samples = frames.shape[3] if frames.ndim == 4 else 1
    photometric = "RGB" if samples == 3 else "MONOCHROME2"
    bits = frames.dtype.itemsize * 8
    return FrameFormat(frames.shape[1], frames.shape[2], samples, bits, bits_stored, 0, photometric, 0)


def encoded_pixels(
    data: Sequence[bytes],
    syntax: str = JPEG2000Lossless,
    *,
    photometric: str = "MONOCHROME2",
    planar: int = 0,
    native_frame_bytes: int = 1000,
    lossy_method: str | None = None,
    source_lossy: bool = False,
) -> EncodedPixels:
    return EncodedPixels(
        transfer_syntax_uid=syntax,
        number_of_frames=len(data),
        frame=lambda n: data[n - 1],
        photometric_interpretation=photometric,
        planar_configuration=planar,
        native_frame_bytes=native_frame_bytes,
        lossy_method=lossy_method,
        source_lossy=source_lossy,
    )


def encode_all(frames: np.ndarray, syntax: str, bits_stored: int) -> tuple[list[bytes], EncodedPixels]:
    fmt = frame_format(frames, bits_stored)
    data = [encode_native_frame(frame.tobytes(), syntax, fmt) for frame in frames]
    pixels = encoded_pixels(
        data, syntax, photometric=fmt.photometric_interpretation, native_frame_bytes=fmt.frame_bytes
    )
    return data, pixels


def write(
    source: bytes,
    pixels: EncodedPixels | None,
    *,
    big_endian: bool = False,
    transfer_syntax_uid: str | None = None,
    spool_dir: str | None = None,
) -> bytes:
    chunks = iter_encapsulated(
        io.BytesIO(source),
        big_endian=big_endian,
        pixels=pixels,
        transfer_syntax_uid=transfer_syntax_uid,
        spool_dir=spool_dir,
    )
    return b"".join(chunks)


def read(out: bytes) -> pydicom.FileDataset:
    return pydicom.dcmread(io.BytesIO(out))


def items(value: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """A Pixel Data value as pydicom reads it (no delimiter): (Basic Offset Table, [(offset, fragment)])."""
    tag, length = struct.unpack_from("<II", value, 0)
    assert tag == 0xE000FFFE
    table, position = value[8 : 8 + length], 8 + length
    first, fragments = position, []
    while position < len(value):
        tag, length = struct.unpack_from("<II", value, position)
        assert tag == 0xE000FFFE
        fragments.append((position - first, value[position + 8 : position + 8 + length]))
        position += 8 + length
    assert position == len(value)
    return table, fragments


# --- layout and round trips ------------------------------------------------------------------------

CASES = [
    pytest.param(syntax, kind, id=f"{name}-{kind}")
    for syntax, name in (
        (RLELossless, "rle"),
        (JPEGLSLossless, "jpegls"),
        (JPEG2000Lossless, "j2k"),
        (DEFLATE, "deflate"),
    )
    for kind in ("grey16", "rgb8")
]


def instance(kind: str) -> tuple[np.ndarray, int, Dataset]:
    """(frames, Bits Stored, source data set); the colour source says YBR_FULL, planar."""
    if kind == "grey16":
        frames = grey16()
        return frames, 12, image(frames, bits_stored=12, photometric="MONOCHROME2")
    frames = rgb8()
    # The source's own colour attributes are stale on purpose: the writer must describe the frames.
    return frames, 8, image(frames, bits_stored=8, photometric="YBR_FULL", planar=1)


@pytest.mark.parametrize(("syntax", "kind"), CASES)
def test_round_trip_one_fragment_per_frame_with_offsets(syntax: str, kind: str) -> None:
    frames, bits_stored, ds = instance(kind)
    data, pixels = encode_all(frames, syntax, bits_stored)
    raw = write(part10(ds), pixels)
    assert raw.endswith(SEQUENCE_DELIMITER)
    out = read(raw)
    assert out.file_meta.TransferSyntaxUID == syntax
    assert out["PixelData"].VR == "OB" and out["PixelData"].is_undefined_length
    table, fragments = items(out.PixelData)
    assert [fragment for _, fragment in fragments] == data
    assert list(struct.unpack(f"<{len(table) // 4}I", table)) == [offset for offset, _ in fragments]
    assert list(pydicom.encaps.parse_basic_offsets(out.PixelData)) == [offset for offset, _ in fragments]
    fmt = frame_format(frames, bits_stored)
    assert out.PhotometricInterpretation == fmt.photometric_interpretation
    if kind == "rgb8":
        assert out.PlanarConfiguration == 0
    else:
        assert "PlanarConfiguration" not in out
    for number, (_, fragment) in enumerate(fragments, 1):
        assert decode_to_native(fragment, syntax, fmt).data == frames[number - 1].tobytes()
    if syntax != DEFLATE:  # pydicom 3.0.2 cannot decode Deflated Image Frame Compression
        assert out.pixel_array.dtype == frames.dtype
        assert np.array_equal(out.pixel_array, frames)
    assert out.PatientName == "Doe^John" and "LossyImageCompression" not in out


def test_offsets_are_what_ingest_locates_frames_by(tmp_path: Path) -> None:
    """Fovea's own reader takes the Basic Offset Table as written (one fragment per frame, JPEG 2000)."""
    frames = grey16(5)
    data, pixels = encode_all(frames, JPEG2000Lossless, 12)
    path = tmp_path / "out.dcm"
    path.write_bytes(write(part10(image(frames, bits_stored=12, photometric="MONOCHROME2")), pixels))
    value_offset = path.read_bytes().index(PIXEL_DATA_HEADER) + len(PIXEL_DATA_HEADER)
    syntax = find_transfer_syntax(JPEG2000Lossless)
    assert syntax is not None
    with path.open("rb") as fp:
        stream = scan_item_stream(fp, value_offset=value_offset, value_length=None)
        assert stream.basic_offset_table_length == 4 * 5
        assert frame_starts(fp, stream, 5, syntax) == [0, 1, 2, 3, 4]
        assert [item.length for item in stream.fragments] == [len(d) for d in data]


def test_grey_source_with_planar_configuration_keeps_it() -> None:
    frames = grey16(1)
    ds = image(frames, bits_stored=12, photometric="MONOCHROME1", planar=0)
    _, pixels = encode_all(frames, RLELossless, 12)
    out = read(write(part10(ds), pixels))
    assert out.PhotometricInterpretation == "MONOCHROME2" and out.PlanarConfiguration == 0


# --- offset tables ---------------------------------------------------------------------------------


def test_encapsulation_elements_of_the_source_are_dropped() -> None:
    frames = grey16(2)
    ds = image(frames, bits_stored=12, photometric="MONOCHROME2")
    ds.ExtendedOffsetTable = struct.pack("<2Q", 0, 999)
    ds.ExtendedOffsetTableLengths = struct.pack("<2Q", 991, 991)
    ds.add_new(0x7FE00003, "UV", 1982)  # Encapsulated Pixel Data Value Total Length
    _, pixels = encode_all(frames, RLELossless, 12)
    out = read(write(part10(ds), pixels))
    assert all(tag not in out for tag in (0x7FE00001, 0x7FE00002, 0x7FE00003))
    table, _ = items(out.PixelData)
    assert len(table) == 8


def test_offsets_past_32_bits_use_the_extended_offset_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 4 GiB limit lowered to just under the last offset: empty BOT, EOT before Pixel Data."""
    frames = grey16(4)
    ds = image(frames, bits_stored=12, photometric="MONOCHROME2")
    ds.ExtendedOffsetTable = struct.pack("<Q", 7)  # stale values from the stored encoding
    ds.ExtendedOffsetTableLengths = struct.pack("<Q", 8)
    data, pixels = encode_all(frames, JPEGLSLossless, 12)
    expected = [sum(8 + len(d) for d in data[:n]) for n in range(4)]
    monkeypatch.setattr(instance_transcode, "_MAX_BOT_OFFSET", expected[-1] - 1)
    raw = write(part10(ds), pixels)
    out = read(raw)
    table, fragments = items(out.PixelData)
    assert table == b""
    assert [offset for offset, _ in fragments] == expected
    assert list(struct.unpack("<4Q", out.ExtendedOffsetTable)) == expected
    assert list(struct.unpack("<4Q", out.ExtendedOffsetTableLengths)) == [len(d) for d in data]
    assert out["ExtendedOffsetTable"].VR == "OV" and out["ExtendedOffsetTableLengths"].VR == "OV"
    assert raw.index(b"\xe0\x7f\x01\x00OV") < raw.index(b"\xe0\x7f\x02\x00OV") < raw.index(PIXEL_DATA_HEADER)
    assert np.array_equal(out.pixel_array, frames)
    syntax = find_transfer_syntax(JPEGLSLossless)
    assert syntax is not None
    value_offset = raw.index(PIXEL_DATA_HEADER) + len(PIXEL_DATA_HEADER)
    fp = io.BytesIO(raw)
    stream = scan_item_stream(fp, value_offset=value_offset, value_length=None)
    extended = ExtendedOffsets.from_elements(expected, [len(d) for d in data])
    assert frame_starts(fp, stream, 4, syntax, extended) == [0, 1, 2, 3]


def test_last_offset_at_the_limit_still_fits_the_basic_offset_table(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = grey16(3)
    data, pixels = encode_all(frames, RLELossless, 12)
    monkeypatch.setattr(instance_transcode, "_MAX_BOT_OFFSET", 16 + len(data[0]) + len(data[1]))
    out = read(write(part10(image(frames, bits_stored=12, photometric="MONOCHROME2")), pixels))
    table, _ = items(out.PixelData)
    assert len(table) == 12 and "ExtendedOffsetTable" not in out


# --- the spool -------------------------------------------------------------------------------------


def test_big_inputs_spool_to_disk_with_identical_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = grey16(6)
    source = part10(image(frames, bits_stored=12, photometric="MONOCHROME2"))
    _, pixels = encode_all(frames, JPEG2000Lossless, 12)
    in_memory = write(source, pixels, spool_dir=str(tmp_path / "missing"))  # never touches the folder
    monkeypatch.setattr(instance_transcode, "SPOOL_MEMORY_BYTES", 256)
    with pytest.raises(FileNotFoundError):  # rolled over to a file in the (missing) spool folder
        write(source, pixels, spool_dir=str(tmp_path / "missing"))
    assert write(source, pixels, spool_dir=str(tmp_path)) == in_memory
    assert list(tmp_path.iterdir()) == []  # the spool file is gone


def test_memory_stays_flat_for_many_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """400 frames of 48 KiB (19 MiB) streamed with a small traced peak; the spool is on disk."""
    frame = bytes(range(256)) * 192
    count = 400
    source = part10(image(np.zeros((1, 4, 4), np.uint8), bits_stored=8, photometric="MONOCHROME2"))
    pixels = encoded_pixels([frame] * count, JPEG2000Lossless, native_frame_bytes=len(frame))
    monkeypatch.setattr(instance_transcode, "SPOOL_MEMORY_BYTES", 1024 * 1024)
    total = 0
    tracemalloc.start()
    try:
        for chunk in iter_encapsulated(
            io.BytesIO(source), big_endian=False, pixels=pixels, spool_dir=str(tmp_path)
        ):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > count * len(frame)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for {total} bytes written"


# --- attributes ------------------------------------------------------------------------------------


def test_lossy_encoding_appends_ratio_and_method_to_those_kept() -> None:
    ds = image(grey16(1), bits_stored=12, photometric="MONOCHROME2")
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = "10.5"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    pixels = encoded_pixels(
        [b"\xff\x4f" * 50, b"\xff\x4f" * 75], lossy_method="ISO_15444_1", native_frame_bytes=1000
    )
    out = read(write(part10(ds), pixels))
    assert out.LossyImageCompression == "01"
    assert list(out.LossyImageCompressionRatio) == [10.5, 8.0]  # 2000 native bytes / 250 encoded
    assert list(out.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_15444_1"]


def test_first_lossy_step_sets_all_three() -> None:
    ds = image(grey16(1), bits_stored=12, photometric="MONOCHROME2")
    ds.LossyImageCompression = "00"
    pixels = encoded_pixels([b"\x00" * 6], lossy_method="ISO_15444_1", native_frame_bytes=240)
    out = read(write(part10(ds), pixels))
    assert out.LossyImageCompression == "01"
    assert out["LossyImageCompressionRatio"].VM == 1 and out.LossyImageCompressionRatio == 40
    assert out.LossyImageCompressionMethod == "ISO_15444_1"


@pytest.mark.parametrize(
    ("native", "encoded", "text"),
    [(1, 3 * 2, "0.16667"), (123_456_789, 2, "6.1728e7"), (1000, 8, "125"), (1_000_000, 4, "2.5e5")],
)
def test_ratio_is_a_short_decimal_string(native: int, encoded: int, text: str) -> None:
    pixels = encoded_pixels([b"\x00" * encoded], lossy_method="ISO_14495_1", native_frame_bytes=native)
    out = read(write(part10(image(grey16(1), bits_stored=12, photometric="MONOCHROME2")), pixels))
    element = out["LossyImageCompressionRatio"]
    assert element.value.original_string == text and len(text) <= 16


def test_lossy_source_alone_sets_the_flag_without_appending() -> None:
    ds = image(grey16(1), bits_stored=12, photometric="MONOCHROME2")
    ds.LossyImageCompressionRatio = ["12", "3.5"]
    ds.LossyImageCompressionMethod = ["ISO_10918_1", "ISO_15444_1"]
    pixels = encoded_pixels([b"\x01\x02"], RLELossless, source_lossy=True)
    out = read(write(part10(ds), pixels))
    assert out.LossyImageCompression == "01"
    assert list(out.LossyImageCompressionRatio) == [12, 3.5]
    assert list(out.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_15444_1"]


def test_lossless_from_lossless_leaves_the_lossy_attributes_alone() -> None:
    ds = image(grey16(1), bits_stored=12, photometric="MONOCHROME2")
    ds.LossyImageCompression = "00"
    out = read(write(part10(ds), encoded_pixels([b"\x01\x02"], RLELossless)))
    assert out.LossyImageCompression == "00"
    assert "LossyImageCompressionRatio" not in out and "LossyImageCompressionMethod" not in out


def test_instance_without_pixel_data_is_relabelled_only() -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = BasicTextSRStorage, generate_uid()
    ds.ContentDate = "20261122"
    ds.LossyImageCompression = "00"
    source = part10(ds)
    out = read(write(source, None, transfer_syntax_uid=JPEGLSLossless))
    assert out.file_meta.TransferSyntaxUID == JPEGLSLossless
    original = read(source)
    assert out == original and "PixelData" not in out
    with pytest.raises(ValueError, match="no target transfer syntax"):
        write(source, None)
    with pytest.raises(ValueError, match="not an encapsulated transfer syntax"):
        write(source, None, transfer_syntax_uid=ExplicitVRLittleEndian)
    with pytest.raises(ValueError, match="video"):
        write(source, None, transfer_syntax_uid=MPEG4HP41)  # MPEG-4 AVC/H.264
    with pytest.raises(ValueError, match="disagrees"):
        write(source, encoded_pixels([b"\x00\x00"], RLELossless), transfer_syntax_uid=JPEGLSLossless)


def test_big_endian_binary_values_are_swapped() -> None:
    frames = grey16(2)
    ds = image(frames, bits_stored=12, photometric="MONOCHROME2")
    lut = np.arange(0, 4096, 16, dtype=np.uint16)
    ds.add_new(0x00281201, "OW", lut.astype(">u2").tobytes())  # Red Palette Color LUT Data
    ds.PixelData = frames.astype(">u2").tobytes()
    ds["PixelData"].VR = "OW"
    _, pixels = encode_all(frames, JPEGLSLossless, 12)
    out = read(write(part10(ds, ExplicitVRBigEndian), pixels, big_endian=True))
    assert out[0x00281201].value == lut.astype("<u2").tobytes()
    assert out.file_meta.TransferSyntaxUID == JPEGLSLossless
    assert np.array_equal(out.pixel_array, frames)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([b"\x00\x00", b"\x00"], "frame 2 has 1 bytes"),
        ([b"\x00\x00", b""], "frame 2 has 0 bytes"),
        ([], "0 frames"),
    ],
)
def test_bad_frames_are_refused_before_anything_is_yielded(data: list[bytes], match: str) -> None:
    source = part10(image(grey16(1), bits_stored=12, photometric="MONOCHROME2"))
    chunks = iter_encapsulated(io.BytesIO(source), big_endian=False, pixels=encoded_pixels(data, RLELossless))
    with pytest.raises(ValueError, match=match):
        next(chunks)


# --- DCMTK and GDCM read the outputs ---------------------------------------------------------------

TOOL_CASES = [
    pytest.param(syntax, kind, id=f"{name}-{kind}")
    for syntax, name in ((RLELossless, "rle"), (JPEGLSLossless, "jpegls"), (JPEG2000Lossless, "j2k"))
    for kind in ("grey16", "rgb8")
]
# DCMTK 3.6 has no JPEG 2000 codec
DCMTK_DECOMPRESSOR: dict[str, str] = {RLELossless: "dcmdrle", JPEGLSLossless: "dcmdjpls"}


def assert_same_pixels(decoded: pydicom.Dataset, frames: np.ndarray, tool: str) -> None:
    assert decoded.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, tool
    assert decoded.PhotometricInterpretation == ("RGB" if frames.ndim == 4 else "MONOCHROME2"), tool
    assert decoded.pixel_array.dtype == frames.dtype, tool
    assert np.array_equal(decoded.pixel_array, frames), tool
    if int(decoded.get("PlanarConfiguration", 0)) == 0:
        assert decoded.PixelData[: frames.nbytes] == frames.tobytes(), tool


@pytest.mark.parametrize(("syntax", "kind"), TOOL_CASES)
def test_dcmtk_and_gdcm_read_and_decode_the_output(tmp_path: Path, syntax: str, kind: str) -> None:
    frames, bits_stored, ds = instance(kind)
    _, pixels = encode_all(frames, syntax, bits_stored)
    path = tmp_path / "encoded.dcm"
    path.write_bytes(write(part10(ds), pixels))
    dump = dcmtk_dump(path)
    assert dcmtk_transfer_syntax(dump) == syntax
    assert f"(PixelSequence #={len(frames) + 1})" in dump  # the offset table and one item per frame
    assert_same_pixels(gdcm_decompress(path, tmp_path / "gdcm.dcm"), frames, "gdcmconv")
    if syntax in DCMTK_DECOMPRESSOR:
        tool = DCMTK_DECOMPRESSOR[syntax]
        assert_same_pixels(dcmtk_decompress(tool, path, tmp_path / "dcmtk.dcm"), frames, tool)


def test_dcmtk_and_gdcm_read_the_extended_offset_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = grey16(3)
    _, pixels = encode_all(frames, JPEGLSLossless, 12)
    monkeypatch.setattr(instance_transcode, "_MAX_BOT_OFFSET", 0)
    path = tmp_path / "extended.dcm"
    path.write_bytes(write(part10(image(frames, bits_stored=12, photometric="MONOCHROME2")), pixels))
    dump = dcmtk_dump(path)
    assert "(7fe0,0001) OV" in dump and "(7fe0,0002) OV" in dump
    assert_same_pixels(gdcm_decompress(path, tmp_path / "gdcm.dcm"), frames, "gdcmconv")
    assert_same_pixels(dcmtk_decompress("dcmdjpls", path, tmp_path / "dcmtk.dcm"), frames, "dcmdjpls")


# --- streamed (as WADO-RS sends it) ----------------------------------------------------------------


def streamed_chunks(source: bytes, pixels: EncodedPixels) -> Iterator[bytes]:
    return iter_encapsulated(io.BytesIO(source), big_endian=False, pixels=pixels, streamed=True)


@pytest.mark.parametrize(("syntax", "kind"), CASES)
def test_streamed_output_has_an_empty_offset_table_and_the_same_frames(syntax: str, kind: str) -> None:
    frames, bits_stored, ds = instance(kind)
    data, pixels = encode_all(frames, syntax, bits_stored)
    source = part10(ds)
    out = read(b"".join(streamed_chunks(source, pixels)))
    whole = read(write(source, pixels))
    table, fragments = items(out.PixelData)
    assert table == b""
    assert [fragment for _, fragment in fragments] == data
    assert out.PhotometricInterpretation == whole.PhotometricInterpretation
    assert out.get("PlanarConfiguration") == whole.get("PlanarConfiguration")
    if syntax != DEFLATE:
        assert np.array_equal(out.pixel_array, frames)


def test_streaming_sends_each_frame_as_soon_as_it_is_encoded() -> None:
    frames = grey16(4)
    data, _ = encode_all(frames, JPEGLSLossless, 12)
    asked: list[int] = []

    def frame(number: int) -> bytes:
        asked.append(number)
        return data[number - 1]

    pixels = EncodedPixels(
        JPEGLSLossless, 4, frame, "MONOCHROME2", 0, frames[0].nbytes, None, source_lossy=False
    )
    chunks = streamed_chunks(part10(image(frames, bits_stored=12, photometric="MONOCHROME2")), pixels)
    first = next(chunks)
    assert asked == [1] and first.endswith(data[0])
    assert next(chunks) == struct.pack("<HHI", 0xFFFE, 0xE000, len(data[1])) + data[1]
    assert asked == [1, 2]
    assert b"".join(chunks).endswith(SEQUENCE_DELIMITER) and asked == [1, 2, 3, 4]


def test_a_lossy_encoding_is_not_streamed_its_ratio_needs_every_frame() -> None:
    pixels = encoded_pixels([b"\xff\x4f" * 50, b"\xff\x4f" * 75], lossy_method="ISO_15444_1")
    source = part10(image(grey16(2), bits_stored=12, photometric="MONOCHROME2"))
    out = read(b"".join(streamed_chunks(source, pixels)))
    table, _ = items(out.PixelData)
    assert len(table) == 8 and out.LossyImageCompressionRatio == 8
    assert out.LossyImageCompressionMethod == "ISO_15444_1"


def test_a_bad_first_frame_fails_before_output_a_later_one_ends_it() -> None:
    source = part10(image(grey16(2), bits_stored=12, photometric="MONOCHROME2"))
    with pytest.raises(ValueError, match="frame 1 has 1 bytes"):
        next(streamed_chunks(source, encoded_pixels([b"\x00", b"\x00\x00"], RLELossless)))
    chunks = streamed_chunks(source, encoded_pixels([b"\x00\x00", b"\x00"], RLELossless))
    assert next(chunks)
    with pytest.raises(ValueError, match="frame 2 has 1 bytes"):
        next(chunks)
