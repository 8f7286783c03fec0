"""The frame jobs of `frame_transcode`, timed: each also says how long each of its codec steps took.

Why timed inside the job: a job may run in a worker process, which in a single-process server has no
metrics of its own to write to. The worker measures each step and hands the times back with the result;
the caller records them (`fovea_codec_seconds`) in its own process. The figure is the codec's own time,
without the wait for a free worker or the hand-off to a process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from app.imaging.codecs.decode import FrameFormat, NativeFrame, decode_to_native
from app.imaging.frame_transcode import encode_frame
from app.imaging.syntaxes import find_transfer_syntax

_T = TypeVar("_T")


class CodecStep(NamedTuple):
    """One decode or encode of one frame: the syntax's codec family and the time it took."""

    operation: str  # "decode" or "encode"
    codec: str  # TransferSyntax.codec: a small fixed set of names, fit for a metric label
    seconds: float


class Timed(NamedTuple, Generic[_T]):
    """A job's result and the codec steps it took."""

    value: _T
    steps: tuple[CodecStep, ...]


def codec_family(uid: str) -> str:
    syntax = find_transfer_syntax(uid)
    return syntax.codec if syntax is not None else "unknown"


def _step(operation: str, uid: str, function: Callable[..., _T], *args: object) -> tuple[_T, CodecStep]:
    started = time.perf_counter()
    value = function(*args)
    return value, CodecStep(operation, codec_family(uid), time.perf_counter() - started)


def timed_decode(stored: bytes, source_uid: str, stored_fmt: FrameFormat) -> Timed[NativeFrame]:
    """`decode_to_native`, timed."""
    native, step = _step("decode", source_uid, decode_to_native, stored, source_uid, stored_fmt)
    return Timed(native, (step,))


def timed_encode(native: NativeFrame, target_uid: str, native_fmt: FrameFormat) -> Timed[bytes]:
    """`encode_frame`, timed."""
    encoded, step = _step("encode", target_uid, encode_frame, native, target_uid, native_fmt)
    return Timed(encoded, (step,))


def timed_transcode(
    stored: bytes, source_uid: str, stored_fmt: FrameFormat, native_fmt: FrameFormat, target_uid: str
) -> Timed[bytes]:
    """`transcode_frame` in one job, its decode and its encode timed apart."""
    native, decoded = _step("decode", source_uid, decode_to_native, stored, source_uid, stored_fmt)
    encoded, encoding = _step("encode", target_uid, encode_frame, native, target_uid, native_fmt)
    return Timed(encoded, (decoded, encoding))
