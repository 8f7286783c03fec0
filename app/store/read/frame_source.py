"""Frames of one stored instance, as stored or as native little-endian pixels.

Why: frames, pixeldata, bulkdata and whole-instance (Explicit VR LE) responses all need the same two
readings of a frame: its stored bytes (a ranged read through the frame table) and its native pixels
(byte-swapped from Big Endian, or decoded from a compressed syntax). Nothing here parses the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol, TypeVar

from pydicom.uid import ExplicitVRLittleEndian

from app.imaging.codec_pool import DECODE_COPIES, CodecLimitExceeded, CodecPool, CodecWorkerCrashed
from app.imaging.codecs.decode import FrameDecodeError, NativeFrame
from app.imaging.codecs.encode import FrameEncodeError, encoded_photometric, lossy_method
from app.imaging.codecs.native import little_endian_frame
from app.imaging.frame_table import FrameFragment, read_frame
from app.imaging.frame_transcode import runs_in_process
from app.imaging.instance_transcode import EncodedPixels, NativePixels
from app.imaging.pixel_description import PixelDescription
from app.imaging.syntaxes import TransferSyntax
from app.imaging.timed_codecs import Timed, timed_decode, timed_encode, timed_transcode
from app.metrics import record_codec_steps
from app.store.caches.derivatives import DerivativeCache
from app.store.caches.shared import dump_labelled, load_labelled

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


_T = TypeVar("_T")


class RangeReader(Protocol):
    """What `FrameSource` needs of a blob store: ranged reads (a local file will do)."""

    def read_range(self, key: str, offset: int, length: int) -> bytes: ...


class FrameSource:
    """Reads the frames of one stored file, blob `key` of `blobs`, where `fragments` (its frame table)
    says they lie; `pixels` describes them, `pixel_vr` is the Pixel Data VR where it matters (Big
    Endian 8-bit OW words are swapped).

    Codec work (decoding a compressed frame, encoding into another syntax) runs in `codecs` when
    given, else in the caller's thread; frames made that way are kept in `cache` when given.
    """

    def __init__(
        self,
        blobs: RangeReader,
        key: str,
        fragments: Mapping[int, tuple[FrameFragment, ...]],
        pixels: PixelDescription,
        *,
        pixel_vr: str | None = None,
        codecs: CodecPool | None = None,
        cache: DerivativeCache[MadeFrame] | None = None,
        may_be_stale: bool = False,
    ) -> None:
        self.blobs, self.key, self.fragments, self.pixels = blobs, key, fragments, pixels
        self.pixel_vr, self.codecs, self.cache = pixel_vr, codecs, cache
        # a frame table from the frame-table cache may name a blob a replacement has deleted: a
        # ranged read then fails (BlobNotFound) and the caller looks up again; a frame served from the
        # transcoded-frame cache reads nothing, so the blob is probed once before the first one is
        self._probe_blob = may_be_stale

    @property
    def syntax(self) -> TransferSyntax:
        return self.pixels.syntax

    def stored(self, number: int) -> bytes:
        """Frame `number` as stored: a codestream, or native bytes (1-bit frames moved to bit 0)."""
        key = self.key
        return read_frame(
            lambda offset, length: self.blobs.read_range(key, offset, length),
            self.fragments[number],
            self.pixels.layout,
            encapsulated=self.pixels.syntax.encapsulated,
        )

    def native(self, number: int, *, cached: bool = True) -> NativeFrame:
        """Frame `number` as native little-endian pixels (PS3.18 8.7.3.3.1).

        `cached=False` for whole-instance work, which would otherwise flush a viewer's frames.
        """
        fmt, syntax = self.pixels.stored_format, self.pixels.syntax
        if syntax.encapsulated:
            decoded = self._made(number, ExplicitVRLittleEndian, self._decode, cached=cached)
            assert isinstance(decoded, NativeFrame)
            return decoded
        if syntax.big_endian and fmt.bits_allocated == 8 and self.pixel_vr == "OW":
            data = self._big_endian_bytes_in_words(number)
        else:
            data = little_endian_frame(
                self.stored(number), bits_allocated=fmt.bits_allocated, big_endian=syntax.big_endian
            )
        return NativeFrame(data, fmt.photometric_interpretation, fmt.planar_configuration)

    def _big_endian_bytes_in_words(self, number: int) -> bytes:
        """An 8-bit frame of an OW value in Big Endian: its bytes sit swapped in 16-bit words (PS3.5
        A.3), so an odd-length frame's last byte is the second of its word, where the pad byte is."""
        [fragment] = self.fragments[number]
        length = fragment.length + fragment.length % 2
        word_aligned = self.blobs.read_range(self.key, fragment.offset, length)
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
            self.blobs.read_range(self.key, 0, 1)  # BlobNotFound if replaced
            self._probe_blob = False
        key = (self.key, number, target_uid)
        return self.cache.get_or_make(key, lambda: make(number))

    def _check_budget(self, number: int) -> None:
        """Refuse, before reading or decoding anything, a frame too large to decode within a worker's
        memory: its native size comes from the data set, which the codestream header must match."""
        if self.codecs is not None:
            needed = DECODE_COPIES * self.pixels.native_format.frame_bytes
            self.codecs.check_budget(needed, f"decoding frame {number}")

    def _decode(self, number: int) -> NativeFrame:
        self._check_budget(number)
        uid = self.pixels.syntax.uid
        return self._run(
            timed_decode,
            self.stored(number),
            uid,
            self.pixels.stored_format,
            in_process=runs_in_process(uid, None),
        )

    def _encode(self, number: int, target_uid: str) -> bytes:
        """One job in the codec pool: decode and encode together for a compressed frame (one hand-off)."""
        pixels = self.pixels
        native_fmt = pixels.native_format
        self._check_budget(number)
        if pixels.syntax.encapsulated:
            stored = self.stored(number)
            in_process = runs_in_process(pixels.syntax.uid, target_uid)
            return self._run(
                timed_transcode,
                stored,
                pixels.syntax.uid,
                pixels.stored_format,
                native_fmt,
                target_uid,
                in_process=in_process,
            )
        native = self.native(number)
        return self._run(
            timed_encode, native, target_uid, native_fmt, in_process=runs_in_process(None, target_uid)
        )

    def _run(self, function: Callable[..., Timed[_T]], *args: object, in_process: bool) -> _T:
        timed = function(*args) if self.codecs is None else self.codecs.run(in_process, function, *args)
        record_codec_steps(timed.steps)
        return timed.value

    def encoded_pixels(self, transfer_syntax_uid: str) -> EncodedPixels:
        """Every frame encoded into `transfer_syntax_uid`, for a whole re-encoded instance.

        Needs the frame table of every frame (`frames_of`). Frames are made a few at a time ahead of
        the writer, so every codec worker is busy; none are kept in the frame cache.
        """
        native_fmt = self.pixels.native_format
        if self.pixels.syntax.encapsulated and native_fmt.samples_per_pixel == 3:
            # what the decoder gives (JPEG YCbCr decodes to RGB), read off the first frame
            first = self.native(1, cached=False)
            native_fmt = replace(
                native_fmt,
                photometric_interpretation=first.photometric_interpretation,
                planar_configuration=first.planar_configuration,
            )
        photometric, planar = encoded_photometric(transfer_syntax_uid, native_fmt)
        count = self.pixels.layout.number_of_frames
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
            source_lossy=self.pixels.went_through_lossy_step,
        )

    def native_pixels(self, tag: int) -> NativePixels | None:
        """Every frame as native pixels for an Explicit VR LE instance; None when that cannot be made.

        Needs the frame table of every frame (`frames_of`).
        """
        pixels = self.pixels
        if not pixels.fits_explicit_vr_little_endian:
            return None
        return NativePixels(
            tag,
            pixels.layout.number_of_frames,
            pixels.layout.bits_allocated,
            pixels.native_frame_bits,
            lambda number: self.native(number, cached=False),
            lossy=pixels.went_through_lossy_step,
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
