"""One stored frame decoded to native little-endian pixels, checked against pydicom's `pixel_array`."""

from __future__ import annotations

import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import imagecodecs
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import get_encoder
from pydicom.uid import (
    HEVCM10P51,
    HEVCMP51,
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    MPEG2MPML,
    MPEG2MPMLF,
    MPEG4HP41,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from app.imaging.codecs.decode import FrameDecodeError, FrameFormat, can_decode, decode_to_native
from app.imaging.codecs.frame_header import FrameHeaderUnreadable
from tests.dicom_files import CorpusFile, corpus_file, corpus_files

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"

DECODABLE = tuple(f for f in corpus_files() if f.has_pixels and can_decode(f.transfer_syntax_uid))

# pydicom decodes these photometric interpretations to RGB: YBR_FULL(_422) by its own colour
# conversion, YBR_RCT/YBR_ICT by OpenJPEG's inverse component transform.
DECODED_AS_RGB = {"YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"}


def frame_format(ds: Dataset) -> FrameFormat:
    return FrameFormat(
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        samples_per_pixel=int(ds.SamplesPerPixel),
        bits_allocated=int(ds.BitsAllocated),
        bits_stored=int(ds.BitsStored),
        pixel_representation=int(ds.PixelRepresentation),
        photometric_interpretation=str(ds.PhotometricInterpretation),
        planar_configuration=int(ds.get("PlanarConfiguration") or 0),
    )


def stored_frames(ds: Dataset) -> list[bytes]:
    """Each frame's fragments joined, as the frame table hands them to the decoder."""
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1)))


def little_endian(pixels: np.ndarray, fmt: FrameFormat) -> bytes:
    kind = "i" if fmt.pixel_representation else "u"
    return pixels.astype(f"<{kind}{fmt.bits_allocated // 8}").tobytes()


def raw_deflate(data: bytes) -> bytes:
    """An RFC 1951 stream with no zlib header, as Deflated Image Frame Compression stores it."""
    deflater = zlib.compressobj(wbits=-15)
    return deflater.compress(data) + deflater.flush()


def padded(fragment: bytes) -> bytes:
    return fragment + b"\x00" * (len(fragment) % 2)


def mono(rows: int, columns: int, bits: int, *, signed: bool = False, bits_stored: int = 0) -> FrameFormat:
    return FrameFormat(rows, columns, 1, bits, bits_stored or bits, int(signed), "MONOCHROME2", 0)


# --- the pydicom corpus: every frame equals pixel_array ---------------------------------------------


def test_corpus_covers_every_compressed_family_it_holds() -> None:
    assert {f.transfer_syntax_uid for f in DECODABLE} == {
        RLELossless,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEG2000Lossless,
        JPEG2000,
    }


@pytest.mark.parametrize("corpus", DECODABLE, ids=str)
def test_every_frame_equals_pydicom_pixel_array(corpus: CorpusFile) -> None:
    ds = dcmread(corpus.path)
    fmt = frame_format(ds)
    try:
        expected = ds.pixel_array
    except RuntimeError as exc:
        pytest.skip(f"pydicom cannot decode {corpus}: {exc}")
    frames = stored_frames(ds)
    if len(frames) == 1:
        expected = expected[np.newaxis]
    assert len(frames) == len(expected)
    photometric = fmt.photometric_interpretation
    if photometric in DECODED_AS_RGB:
        photometric = "RGB"
    for frame, pixels in zip(frames, expected, strict=True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = decode_to_native(frame, corpus.transfer_syntax_uid, fmt)
        assert out.data == little_endian(pixels, fmt)
        assert (out.photometric_interpretation, out.planar_configuration) == (photometric, 0)
        assert not [str(w.message) for w in caught]


def test_jpeg_pydicom_refuses_is_decoded_by_libjpeg_turbo() -> None:
    ds = dcmread(corpus_file("JPEG-lossy.dcm").path)  # 12-bit JPEG Extended, a scan header libjpeg rejects
    with pytest.raises(RuntimeError, match="all available plugins"):
        _ = ds.pixel_array
    fmt = frame_format(ds)
    (frame,) = stored_frames(ds)
    out = decode_to_native(frame, str(ds.file_meta.TransferSyntaxUID), fmt)
    # JPGExtended.dcm is the same image with the header fixed; two IDCTs may differ by one.
    fixed = dcmread(corpus_file("JPGExtended.dcm").path).pixel_array.astype(np.int32)
    decoded = np.frombuffer(out.data, "<u2").reshape(fmt.rows, fmt.columns)
    assert np.abs(decoded - fixed).max() <= 1


def test_frame_pydicom_cannot_read_raises_with_each_plugins_reason() -> None:
    ds = dcmread(corpus_file("JPEG2000.dcm").path)
    (frame,) = stored_frames(ds)
    frame = frame[:200]  # a sound SIZ, then the codestream stops
    reasons = r"(?s)JPEG 2000 .*1\.2\.840\.10008\.1\.2\.4\.91.*pylibjpeg: "  # syntax, then each plugin
    with pytest.raises(FrameDecodeError, match=reasons) as info:
        decode_to_native(frame, str(ds.file_meta.TransferSyntaxUID), frame_format(ds))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_malformed_siz_is_refused_before_any_decoder() -> None:
    ds = dcmread(corpus_file("JPEG2000-embedded-sequence-delimiter.dcm").path)
    (frame,) = stored_frames(ds)  # its Xsiz holds the bytes of a Sequence Delimitation Item
    with pytest.raises(FrameDecodeError, match="SIZ makes 14540801 tiles") as info:
        decode_to_native(frame, str(ds.file_meta.TransferSyntaxUID), frame_format(ds))
    assert isinstance(info.value.__cause__, FrameHeaderUnreadable)


def test_concurrent_decodes_equal_sequential_ones() -> None:
    grey = ("MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm")
    names = (*grey, "SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm", "SC_rgb_rle_16bit_2frame.dcm")
    jobs = []
    for name in names:
        ds = dcmread(corpus_file(name).path)
        syntax, fmt = str(ds.file_meta.TransferSyntaxUID), frame_format(ds)
        jobs += [(frame, syntax, fmt) for frame in stored_frames(ds)]
    sequential = [decode_to_native(*job).data for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda job: decode_to_native(*job).data, jobs * 4))
    assert concurrent == sequential * 4


# --- generated frames: what the corpus lacks ---------------------------------------------------------


def test_deflated_16_bit_signed_frame_inflates_to_native() -> None:
    pixels = np.random.default_rng(1).integers(-2048, 2047, (6, 7), dtype="<i2")
    fmt = mono(6, 7, 16, signed=True, bits_stored=12)
    out = decode_to_native(padded(raw_deflate(pixels.tobytes())), DEFLATED_FRAMES, fmt)
    assert out.data == pixels.tobytes()
    assert (out.photometric_interpretation, out.planar_configuration) == ("MONOCHROME2", 0)


def test_deflated_rgb_keeps_planar_configuration_1() -> None:
    planes = np.random.default_rng(2).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    fmt = FrameFormat(4, 5, 3, 8, 8, 0, "RGB", 1)
    out = decode_to_native(padded(raw_deflate(planes.tobytes())), DEFLATED_FRAMES, fmt)
    assert out.data == planes.tobytes()
    assert (out.photometric_interpretation, out.planar_configuration) == ("RGB", 1)


def test_deflated_1_bit_frame_of_25_pixels_is_4_packed_bytes() -> None:
    bits = np.random.default_rng(3).integers(0, 2, 25, dtype=np.uint8)
    packed = np.packbits(bits, bitorder="little").tobytes()
    out = decode_to_native(padded(raw_deflate(packed)), DEFLATED_FRAMES, mono(5, 5, 1))
    assert out.data == packed
    assert np.array_equal(np.unpackbits(np.frombuffer(out.data, np.uint8), count=25, bitorder="little"), bits)


def test_deflated_odd_length_stream_with_its_nul_pad() -> None:
    native = np.random.default_rng(0).integers(0, 256, 9, dtype=np.uint8).tobytes()
    stream = raw_deflate(native)
    assert len(stream) % 2 == 1  # so the stored fragment ends in a pad byte
    assert decode_to_native(stream + b"\x00", DEFLATED_FRAMES, mono(3, 3, 8)).data == native


def test_bytes_inflated_beyond_the_frame_are_dropped() -> None:
    native = bytes(range(9))
    out = decode_to_native(padded(raw_deflate(native + b"\x00\x00\x00")), DEFLATED_FRAMES, mono(3, 3, 8))
    assert out.data == native


def test_truncated_deflate_stream_raises() -> None:
    pixels = np.random.default_rng(4).integers(-1000, 1000, (16, 16), dtype="<i2")
    stream = raw_deflate(pixels.tobytes())
    with pytest.raises(FrameDecodeError, match=r"Deflated Image Frame Compression .*truncated"):
        decode_to_native(stream[: len(stream) // 2], DEFLATED_FRAMES, mono(16, 16, 16, signed=True))


def test_deflate_stream_of_too_few_bytes_raises() -> None:
    with pytest.raises(FrameDecodeError, match="inflates to 8 bytes but the frame needs 9"):
        decode_to_native(padded(raw_deflate(bytes(8))), DEFLATED_FRAMES, mono(3, 3, 8))


def test_bytes_that_are_not_deflate_raise() -> None:
    with pytest.raises(FrameDecodeError, match="not a raw deflate stream") as info:
        decode_to_native(b"\xff" * 16, DEFLATED_FRAMES, mono(4, 4, 8))
    inflate_error = info.value.__cause__
    assert inflate_error is not None and isinstance(inflate_error.__cause__, zlib.error)


def test_encapsulated_uncompressed_fragment_loses_its_pad_byte() -> None:
    native = bytes(range(9))
    out = decode_to_native(native + b"\x00", ENCAPSULATED_UNCOMPRESSED, mono(3, 3, 8))
    assert out.data == native


def test_short_encapsulated_uncompressed_fragment_raises() -> None:
    with pytest.raises(FrameDecodeError, match="holds 8 bytes, the frame 9"):
        decode_to_native(bytes(8), ENCAPSULATED_UNCOMPRESSED, mono(3, 3, 8))


def test_garbage_jpeg_2000_frame_raises() -> None:
    garbage = b"\xff\x4f\xff\x51" + bytes(range(256)) * 4
    with pytest.raises(FrameDecodeError, match=r"JPEG 2000 Image Compression \(Lossless Only\)"):
        decode_to_native(garbage, JPEG2000Lossless, mono(16, 16, 16))


def test_frame_larger_than_its_format_raises() -> None:
    ds = dcmread(corpus_file("MR_small_jp2klossless.dcm").path)  # 64 x 64
    (frame,) = stored_frames(ds)
    fmt = mono(32, 64, 16, signed=True)
    with pytest.raises(FrameDecodeError, match=r"1\.2\.840\.10008\.1\.2\.4\.90"):
        decode_to_native(frame, JPEG2000Lossless, fmt)


def test_near_lossless_jpeg_ls_equals_pydicom_default_plugin() -> None:
    # CharLS is tried first; pixel_array would use libjpeg (pylibjpeg), and must get the same pixels.
    pixels = np.random.default_rng(7).integers(-2048, 2047, (19, 21), dtype=np.int16)
    fmt = mono(19, 21, 16, signed=True, bits_stored=12)
    options = {**asdict(fmt), "number_of_frames": 1}
    stream = get_encoder(JPEGLSNearLossless).encode(pixels.tobytes(), index=0, jls_error=3, **options)
    libjpeg, _ = get_decoder(JPEGLSNearLossless).as_array(
        encapsulate([stream]), index=0, decoding_plugin="pylibjpeg", **options
    )
    assert not np.array_equal(libjpeg, pixels)  # lossy: the decoders must agree on the errors too
    assert decode_to_native(padded(stream), JPEGLSNearLossless, fmt).data == little_endian(libjpeg, fmt)


@pytest.mark.parametrize("syntax", [JPEG2000MCLossless, HTJ2KLossless])
def test_generated_jpeg_2000_family_frames_decode_exactly(syntax: str) -> None:
    pixels = np.random.default_rng(5).integers(-2048, 2047, (17, 23), dtype=np.int16)
    if syntax == HTJ2KLossless:
        stream = imagecodecs.htj2k_encode(pixels, reversible=True)
    else:  # a Part 1 codestream, which a Part 2 decoder reads too
        stream = imagecodecs.jpeg2k_encode(pixels, reversible=True, codecformat="J2K")
    out = decode_to_native(padded(bytes(stream)), syntax, mono(17, 23, 16, signed=True))
    assert out.data == pixels.astype("<i2").tobytes()


# --- JPEG XL: pydicom 3.0.2 has no decoder, imagecodecs does ----------------------------------------


@pytest.mark.parametrize(
    ("dtype", "samples", "bits_stored"), [("u1", 1, 8), ("u2", 1, 12), ("u2", 1, 16), ("u1", 3, 8)], ids=str
)
def test_lossless_jpeg_xl_decodes_exactly(dtype: str, samples: int, bits_stored: int) -> None:
    shape = (9, 13, samples) if samples > 1 else (9, 13)
    pixels = np.random.default_rng(6).integers(0, 1 << bits_stored, shape, dtype=dtype)
    stream = bytes(imagecodecs.jpegxl_encode(pixels, lossless=True))
    photometric = "RGB" if samples > 1 else "MONOCHROME2"
    fmt = FrameFormat(9, 13, samples, pixels.itemsize * 8, bits_stored, 0, photometric, 0)
    out = decode_to_native(padded(stream), JPEGXL_LOSSLESS, fmt)
    assert out.data == pixels.astype(f"<{dtype}").tobytes()
    assert (out.photometric_interpretation, out.planar_configuration) == (photometric, 0)


def test_jpeg_xl_signed_samples_below_bits_stored_are_sign_extended() -> None:
    # As pydicom corrects every syntax but JPEG-LS and JPEG 2000: bits above Bits Stored follow its sign.
    stored = np.array([[0x0FFB, 0x0005], [0x0800, 0x07FF]], dtype=np.uint16)  # 12-bit -5, 5, -2048, 2047
    stream = bytes(imagecodecs.jpegxl_encode(stored, lossless=True))
    out = decode_to_native(stream, JPEGXL_LOSSLESS, mono(2, 2, 16, signed=True, bits_stored=12))
    assert np.frombuffer(out.data, "<i2").tolist() == [-5, 5, -2048, 2047]


def test_jpeg_xl_of_another_size_raises() -> None:
    stream = bytes(imagecodecs.jpegxl_encode(np.zeros((9, 13), np.uint8), lossless=True))
    # refused by its size header, before libjxl decodes anything
    with pytest.raises(FrameDecodeError, match="JPEG XL size says 13x9 pixels, data set 9x13"):
        decode_to_native(stream, JPEGXL_LOSSLESS, mono(13, 9, 8))


def test_jpeg_xl_samples_wider_than_bits_allocated_raise() -> None:
    stream = bytes(imagecodecs.jpegxl_encode(np.full((4, 4), 1000, np.uint16), lossless=True))
    with pytest.raises(FrameDecodeError, match="JPEG XL size says 16-bit samples, Bits Allocated 8"):
        decode_to_native(stream, JPEGXL_LOSSLESS, mono(4, 4, 8))


# --- which syntaxes decode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uid", "decodable"),
    [
        (ImplicitVRLittleEndian, False),  # native: served as stored
        (ExplicitVRLittleEndian, False),
        (DeflatedExplicitVRLittleEndian, False),
        (ExplicitVRBigEndian, False),
        (ENCAPSULATED_UNCOMPRESSED, True),
        (DEFLATED_FRAMES, True),
        (RLELossless, True),
        (JPEGBaseline8Bit, True),
        (JPEGExtended12Bit, True),
        (JPEGLossless, True),
        (JPEGLosslessSV1, True),
        (JPEGLSLossless, True),
        (JPEGLSNearLossless, True),
        (JPEG2000Lossless, True),
        (JPEG2000, True),
        (JPEG2000MCLossless, True),
        (JPEG2000MC, True),
        (HTJ2KLossless, True),
        (HTJ2KLosslessRPCL, True),
        (HTJ2K, True),
        (JPEGXL_LOSSLESS, True),
        ("1.2.840.10008.1.2.4.111", True),
        ("1.2.840.10008.1.2.4.112", True),
        (MPEG2MPML, False),  # video
        (MPEG2MPMLF, False),
        (MPEG4HP41, False),
        (HEVCMP51, False),
        (HEVCM10P51, False),
        ("1.2.840.10008.1.2.4.52", False),  # retired, unknown to the registry
        ("1.2.3.4", False),
    ],
)
def test_can_decode(uid: str, decodable: bool) -> None:
    assert can_decode(uid) is decodable


@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        (ExplicitVRLittleEndian, "native frames are served as stored"),
        (MPEG4HP41, "video stream"),
        ("1.2.3.4", "not a transfer syntax Fovea knows"),
    ],
)
def test_syntaxes_it_does_not_decode_raise_with_the_reason(uid: str, reason: str) -> None:
    with pytest.raises(FrameDecodeError, match=reason):
        decode_to_native(bytes(16), uid, mono(4, 4, 8))
