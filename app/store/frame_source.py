"""Frames of one stored instance, as stored or as native little-endian pixels.

Why: frames, pixeldata, bulkdata and whole-instance (Explicit VR LE) responses all need the same two
readings of a frame: its stored bytes (a ranged read through the frame table) and its native pixels
(byte-swapped from Big Endian, or decoded from a compressed syntax). Nothing here parses the file.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol, TypeVar

from app.imaging.codec_pool import DECODE_COPIES, CodecLimitExceeded, CodecPool, CodecWorkerCrashed
from app.imaging.codecs.decode import FrameDecodeError, FrameFormat, NativeFrame, can_decode
from app.imaging.codecs.encode import FrameEncodeError, can_encode, encoded_photometric, lossy_method
from app.imaging.codecs.native import little_endian_frame
from app.imaging.codecs.registry import family_of
from app.imaging.frame_transcode import runs_in_process
from app.imaging.frames import read_frame
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax
from app.imaging.timed_codecs import Timed, timed_decode, timed_encode, timed_transcode
from app.imaging.transcode import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    MAX_DEFINED_LENGTH,
    EncodedPixels,
    NativePixels,
)
from app.metrics import record_codec_steps
from app.store.cache import TranscodedFrameCache
from app.store.retrieval import PixelFormat, StoredFrames, StoredInstance
from app.store.shared_cache import dump_labelled, load_labelled

MadeFrame = NativeFrame | bytes  # a frame decoded to native pixels, or encoded into another syntax
# What making a frame in another form can fail with, frame by frame (the stored form is still there).
FRAME_CONVERSION_ERRORS = (FrameDecodeError, FrameEncodeError, CodecWorkerCrashed, CodecLimitExceeded)


def made_frame_size(frame: MadeFrame) -> int:
    return len(frame.data) if isinstance(frame, NativeFrame) else len(frame)


def dump_made_frame(frame: MadeFrame) -> bytes:
    """A made frame as bytes for the shared cache: native pixels keep their colour attributes."""
    if isinstance(frame, NativeFrame):
        return dump_labelled(
            f"native {frame.photometric_interpretation} {frame.planar_configuration}", frame.data
        )
    return dump_labelled("encoded", frame)


def load_made_frame(value: bytes) -> MadeFrame:
    label, body = load_labelled(value)
    kind, *colour = label.split(" ")
    if kind == "encoded" and not colour:
        return body
    if kind == "native" and len(colour) == 2 and colour[1].isdigit():
        return NativeFrame(body, colour[0], int(colour[1]))
    raise ValueError(f"not a made frame: {label!r}")


EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
_T = TypeVar("_T")


def frame_format(pixels: PixelFormat) -> FrameFormat:
    layout = pixels.layout
    return FrameFormat(
        layout.rows,
        layout.columns,
        layout.samples_per_pixel,
        layout.bits_allocated,
        pixels.bits_stored,
        pixels.pixel_representation,
        layout.photometric_interpretation,
        pixels.planar_configuration,
    )


def stored_syntax(uid: str) -> TransferSyntax:
    """The registry row of a stored syntax (ingest refuses unknown ones, so the index never holds one)."""
    syntax = find_transfer_syntax(uid)
    if syntax is None:
        raise LookupError(f"unknown stored transfer syntax {uid}")
    return syntax


def can_make_native(syntax: TransferSyntax) -> bool:
    """True when frames of `syntax` can become native pixels: always if native, else with a decoder."""
    return not syntax.encapsulated or can_decode(syntax.uid)


def native_frame_bits(pixels: PixelFormat, syntax: TransferSyntax) -> int:
    """Bits of one frame as native pixels (see `native_format`)."""
    if _keeps_stored_layout(syntax):
        return pixels.layout.frame_bits
    fmt = native_format(pixels, syntax)
    return fmt.rows * fmt.columns * fmt.samples_per_pixel * fmt.bits_allocated


def fits_explicit_vr_little_endian(pixels: PixelFormat | None, syntax: TransferSyntax) -> bool:
    """True when the instance can be written as Explicit VR LE: pixels it can make, in a 32-bit length."""
    if pixels is None:
        return True
    if syntax.is_video or not can_make_native(syntax):
        return False
    value_bits = native_frame_bits(pixels, syntax) * pixels.layout.number_of_frames
    return -(-value_bits // 8) <= MAX_DEFINED_LENGTH


def _keeps_stored_layout(syntax: TransferSyntax) -> bool:
    """Native syntaxes, Encapsulated Uncompressed and Deflated Image Frame Compression give back the
    stored bytes' layout (4:2:2 and planar included); the image codecs give interleaved pixels."""
    return family_of(syntax).keeps_stored_layout


def native_format(pixels: PixelFormat, syntax: TransferSyntax) -> FrameFormat:
    """The layout of a frame's native pixels: as stored where the syntax keeps it; an image codec's
    colour frame decodes sample-interleaved, and to RGB where the codec's own colour transform is
    undone by the decoder (lossy JPEG's YCbCr, JPEG 2000's YBR_RCT/YBR_ICT); YBR_FULL stays."""
    fmt = frame_format(pixels)
    if _keeps_stored_layout(syntax) or fmt.samples_per_pixel == 1:
        return fmt
    photometric = fmt.photometric_interpretation
    if syntax.uid in family_of(syntax).ycbcr_decoded_as_rgb or photometric in _DECODED_AS_RGB:
        photometric = "RGB"
    return replace(fmt, photometric_interpretation=photometric, planar_configuration=0)


_DECODED_AS_RGB = frozenset({"YBR_RCT", "YBR_ICT", "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420"})


def went_through_lossy_step(instance: StoredInstance) -> bool:
    """Whether the stored pixels may have lost information: Lossy Image Compression 01, a lossy-only
    syntax, or a syntax that allows either (.91, .203, .112...) unless the data set says 00.

    Why so strict: such a stream may be irreversible while the attribute is absent, and a lossy image
    must never be labelled lossless (PS3.3 C.7.6.1.1.5); saying 01 of a lossless one is the safe error.
    """
    syntax = stored_syntax(instance.transfer_syntax_uid)
    if instance.lossy_image_compression == "01" or syntax.lossless is False:
        return True
    return syntax.lossless is None and instance.lossy_image_compression != "00"


def may_carry_lossy_pixels(target: TransferSyntax) -> bool:
    """False for a lossless image codec's syntax (labelling lossy pixels lossless); True for the
    rest, Deflated Image Frame Compression and Encapsulated Uncompressed included (no image codec)."""
    return target.lossless is not True or _keeps_stored_layout(target)


def frame_producer(instance: StoredInstance) -> Callable[[str], bool]:
    """What the frames of `instance` can be made into besides their stored syntax (for negotiation).

    Native pixels (Explicit VR LE) wherever they can be made; any syntax an encoder can hold the
    layout in, except that pixels which went through a lossy step are never labelled with a
    lossless image codec's syntax (PS3.5 8.2). Deflated Image Frame Compression and Encapsulated
    Uncompressed are no image codec: they carry the native pixels byte for byte, as octet-stream
    does, so they are offered for lossy pixels too (the metadata keeps Lossy Image Compression 01).
    A lossy syntax is only ever chosen when the client names it (no media type defaults to one), so
    nothing is made lossy unasked.
    """
    syntax = stored_syntax(instance.transfer_syntax_uid)
    if instance.pixels is None or syntax.is_video or not can_make_native(syntax):
        return lambda _uid: False
    lossy = went_through_lossy_step(instance)
    fmt = native_format(instance.pixels, syntax)

    def can_produce(uid: str) -> bool:
        if uid == EXPLICIT_VR_LITTLE_ENDIAN:
            return True
        target = find_transfer_syntax(uid)
        if target is None or (lossy and not may_carry_lossy_pixels(target)):
            return False
        return can_encode(uid, fmt)

    return can_produce


def instance_producer(instance: StoredInstance) -> Callable[[str], bool]:
    """What a whole instance can be rewritten into besides its stored syntax (application/dicom).

    Explicit VR LE, or Deflated Explicit VR LE, where the native pixels fit its 32-bit length; an
    encapsulated syntax where every frame can be made into it (`frame_producer`). An instance without
    pixel data can be labelled with any encapsulated syntax unchanged (its data set is Explicit VR LE
    either way); never a video one.
    """
    syntax = stored_syntax(instance.transfer_syntax_uid)
    fits = fits_explicit_vr_little_endian(instance.pixels, syntax)
    frames = frame_producer(instance)

    def can_produce(uid: str) -> bool:
        if uid in (EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN):
            return fits
        target = find_transfer_syntax(uid)
        if target is None or not target.encapsulated or target.is_video:
            return False
        return instance.pixels is None or frames(uid)

    return can_produce


class RangeReader(Protocol):
    """What `FrameSource` needs of a blob store: ranged reads (a local file will do)."""

    def read_range(self, key: str, offset: int, length: int) -> bytes: ...


class FrameSource:
    """Reads the frames of `frames` (a frame-table lookup) from `blobs`.

    Codec work (decoding a compressed frame, encoding into another syntax) runs in `codecs` when
    given, else in the caller's thread; frames made that way are kept in `cache` when given.
    """

    def __init__(
        self,
        blobs: RangeReader,
        frames: StoredFrames,
        codecs: CodecPool | None = None,
        cache: TranscodedFrameCache[MadeFrame] | None = None,
        *,
        may_be_stale: bool = False,
    ) -> None:
        self.blobs, self.frames, self.codecs, self.cache = blobs, frames, codecs, cache
        # a frame table from the frame-table cache may name a blob a replacement has deleted: a
        # ranged read then fails (BlobNotFound) and the caller looks up again; a frame served from the
        # transcoded-frame cache reads nothing, so the blob is probed once before the first one is
        self._probe_blob = may_be_stale
        self.syntax = stored_syntax(frames.transfer_syntax_uid)
        self.format = frame_format(frames.pixels)

    def stored(self, number: int) -> bytes:
        """Frame `number` as stored: a codestream, or native bytes (1-bit frames moved to bit 0)."""
        key = self.frames.data_blob_key
        return read_frame(
            lambda offset, length: self.blobs.read_range(key, offset, length),
            self.frames.fragments[number],
            self.frames.layout,
            encapsulated=self.syntax.encapsulated,
        )

    def native(self, number: int, *, cached: bool = True) -> NativeFrame:
        """Frame `number` as native little-endian pixels (PS3.18 8.7.3.3.1).

        `cached=False` for whole-instance work, which would otherwise flush a viewer's frames.
        """
        fmt = self.format
        if self.syntax.encapsulated:
            decoded = self._made(number, EXPLICIT_VR_LITTLE_ENDIAN, self._decode, cached=cached)
            assert isinstance(decoded, NativeFrame)
            return decoded
        if self.syntax.big_endian and fmt.bits_allocated == 8 and self.frames.pixel_vr == "OW":
            data = self._big_endian_bytes_in_words(number)
        else:
            data = little_endian_frame(
                self.stored(number), bits_allocated=fmt.bits_allocated, big_endian=self.syntax.big_endian
            )
        return NativeFrame(data, fmt.photometric_interpretation, fmt.planar_configuration)

    def _big_endian_bytes_in_words(self, number: int) -> bytes:
        """An 8-bit frame of an OW value in Big Endian: its bytes sit swapped in 16-bit words (PS3.5
        A.3), so an odd-length frame's last byte is the second of its word, where the pad byte is."""
        [fragment] = self.frames.fragments[number]
        length = fragment.length + fragment.length % 2
        word_aligned = self.blobs.read_range(self.frames.data_blob_key, fragment.offset, length)
        swapped = little_endian_frame(word_aligned, bits_allocated=16, big_endian=True)
        return swapped[: fragment.length]

    def encoded(self, number: int, transfer_syntax_uid: str, *, cached: bool = True) -> bytes:
        """Frame `number` decoded and encoded into another syntax (one fragment's bytes, padded even)."""
        encoded = self._made(
            number, transfer_syntax_uid, lambda n: self._encode(n, transfer_syntax_uid), cached=cached
        )
        assert isinstance(encoded, bytes)
        return encoded

    def _made(
        self, number: int, target_uid: str, make: Callable[[int], MadeFrame], *, cached: bool
    ) -> MadeFrame:
        if self.cache is None or not cached:
            return make(number)
        if self._probe_blob:
            self.blobs.read_range(self.frames.data_blob_key, 0, 1)  # BlobNotFound if replaced
            self._probe_blob = False
        key = (self.frames.data_blob_key, number, target_uid)
        return self.cache.get_or_make(key, lambda: make(number))

    def _check_budget(self, number: int) -> None:
        """Refuse, before reading or decoding anything, a frame too large to decode within a worker's
        memory: its native size comes from the data set, which the codestream header must match."""
        if self.codecs is not None:
            needed = DECODE_COPIES * native_format(self.frames.pixels, self.syntax).frame_bytes
            self.codecs.check_budget(needed, f"decoding frame {number}")

    def _decode(self, number: int) -> NativeFrame:
        self._check_budget(number)
        return self._run(
            runs_in_process(self.syntax.uid, None),
            timed_decode,
            self.stored(number),
            self.syntax.uid,
            self.format,
        )

    def _encode(self, number: int, target_uid: str) -> bytes:
        """One job in the codec pool: decode and encode together for a compressed frame (one hand-off)."""
        native_fmt = native_format(self.frames.pixels, self.syntax)
        self._check_budget(number)
        if self.syntax.encapsulated:
            stored = self.stored(number)
            in_process = runs_in_process(self.syntax.uid, target_uid)
            return self._run(
                in_process, timed_transcode, stored, self.syntax.uid, self.format, native_fmt, target_uid
            )
        native = self.native(number)
        return self._run(runs_in_process(None, target_uid), timed_encode, native, target_uid, native_fmt)

    def _run(self, in_process: bool, function: Callable[..., Timed[_T]], *args: object) -> _T:
        timed = function(*args) if self.codecs is None else self.codecs.run(in_process, function, *args)
        record_codec_steps(timed.steps)
        return timed.value

    def encoded_pixels(self, transfer_syntax_uid: str) -> EncodedPixels:
        """Every frame encoded into `transfer_syntax_uid`, for a whole re-encoded instance.

        Needs the frame table of every frame (`frames_of`). Frames are made a few at a time ahead of
        the writer, so every codec worker is busy; none are kept in the frame cache.
        """
        native_fmt = native_format(self.frames.pixels, self.syntax)
        if self.syntax.encapsulated and native_fmt.samples_per_pixel == 3:
            # what the decoder gives (JPEG YCbCr decodes to RGB), read off the first frame
            first = self.native(1, cached=False)
            native_fmt = replace(
                native_fmt,
                photometric_interpretation=first.photometric_interpretation,
                planar_configuration=first.planar_configuration,
            )
        photometric, planar = encoded_photometric(transfer_syntax_uid, native_fmt)
        count = self.frames.layout.number_of_frames
        encoded = PrefetchedFrames(
            lambda number: self.encoded(number, transfer_syntax_uid, cached=False),
            count,
            window=2 * (self.codecs.workers if self.codecs else 1),
        )
        return EncodedPixels(
            transfer_syntax_uid,
            count,
            encoded.frame,
            photometric,
            planar,
            native_fmt.frame_bytes,
            lossy_method(transfer_syntax_uid),
            source_lossy=went_through_lossy_step(self.frames.instance),
        )

    def native_pixels(self, tag: int) -> NativePixels | None:
        """Every frame as native pixels for an Explicit VR LE instance; None when that cannot be made.

        Needs the frame table of every frame (`frames_of`).
        """
        if not fits_explicit_vr_little_endian(self.frames.pixels, self.syntax):
            return None
        layout = self.frames.layout
        return NativePixels(
            tag,
            layout.number_of_frames,
            layout.bits_allocated,
            native_frame_bits(self.frames.pixels, self.syntax),
            lambda number: self.native(number, cached=False),
            lossy=went_through_lossy_step(self.frames.instance),
        )


class PrefetchedFrames:
    """Frames 1..count made in order, up to `window` at once: a writer asking for frame n finds
    frames n+1.. already under way. Threads here only wait; the codec pool does the work."""

    def __init__(self, make: Callable[[int], bytes], count: int, *, window: int) -> None:
        self._make, self._count, self._window = make, count, max(1, window)
        self._pending: dict[int, Future[bytes]] = {}
        self._next = 1
        self._threads = ThreadPoolExecutor(self._window, thread_name_prefix="fovea-prefetch")

    def frame(self, number: int) -> bytes:
        while self._next <= min(self._count, number + self._window - 1):
            self._pending[self._next] = self._threads.submit(self._make, self._next)
            self._next += 1
        future = self._pending.pop(number, None)
        try:
            return future.result() if future is not None else self._make(number)
        except BaseException:
            self.close()
            raise
        finally:
            if number >= self._count:
                self.close()

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)
