"""One frame from its stored form to another: decode, then encode; plain functions a worker can run.

Why a module of its own: these are the jobs `CodecPool` hands to worker threads or processes, so they
take and return plain picklable values (bytes, `FrameFormat`, `NativeFrame`) and read no blobs.

`runs_in_process` says where a job belongs. Measured on this project's codecs (two threads against
one, 512x512 16-bit frames): imagecodecs (OpenJPEG and OpenJPH encoders, libjxl, libjpeg-turbo, the
CharLS decoder) and libdeflate release the GIL and scale across threads; pydicom's pylibjpeg plugins
(libjpeg, OpenJPEG decoders), pylibjpeg-rle and pyjpegls (the CharLS encoder) hold it, so two
threads run them no faster than one, and they go to processes, except RLE decoding: at under 1 ms
per 512 KiB frame it costs less than the hand-off to a process (1.2 to 1.9 ms of latency and about
0.6 ms of CPU for the pickling and pipes, `codec_processes`), so it runs in a thread whatever the GIL.
"""

from __future__ import annotations

from dataclasses import replace

from app.imaging.codecs.decode import FrameFormat, NativeFrame, decode_to_native
from app.imaging.codecs.encode import encode_native_frame
from app.imaging.codecs.registry import family_of
from app.imaging.syntaxes import find_transfer_syntax


def runs_in_process(source_uid: str | None, target_uid: str | None) -> bool:
    """True when decoding from `source_uid` or encoding into `target_uid` holds the GIL (None: no step)."""
    source = find_transfer_syntax(source_uid) if source_uid else None
    target = find_transfer_syntax(target_uid) if target_uid else None
    decode_holds = source is not None and source.encapsulated and family_of(source).decode_in_process
    encode_holds = target is not None and target.encapsulated and family_of(target).encode_in_process
    return decode_holds or encode_holds


def encode_frame(native: NativeFrame, target_uid: str, native_fmt: FrameFormat) -> bytes:
    """A native frame encoded into `target_uid`; `native_fmt` is the layout the frame's decoder gives,
    with the frame's own Photometric Interpretation and Planar Configuration (JPEG YCbCr decodes to RGB)."""
    layout = replace(
        native_fmt,
        photometric_interpretation=native.photometric_interpretation,
        planar_configuration=native.planar_configuration,
    )
    return encode_native_frame(native.data, target_uid, layout)


def transcode_frame(
    stored: bytes, source_uid: str, stored_fmt: FrameFormat, native_fmt: FrameFormat, target_uid: str
) -> bytes:
    """A stored compressed frame decoded then encoded into `target_uid`, in one job."""
    return encode_frame(decode_to_native(stored, source_uid, stored_fmt), target_uid, native_fmt)
