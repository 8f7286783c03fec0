"""A Part 10 file rewritten into another transfer syntax, by the engine WADO-RS uses.

Why: `fovea transcode` and the ingest storage policy convert whole files, and must do exactly what a
retrieval with `application/dicom; transfer-syntax=UID` does: the same parse (frame table), the same
frame reader (`FrameSource`, decode and encode per frame, in the codec pool when given), the same
rewrite (`part10_rewrite.iter_rewritten`) and the same rules about what can
be produced (`can_rewrite_instance_in`: a lossy original never gets a lossless image codec's syntax).
The file is read through ranged reads, like a blob, so memory stays flat for big multi-frame files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from app.imaging.codec_pool import CodecPool
from app.imaging.codecs.decode import can_decode
from app.imaging.codecs.encode import missing_encoder_reason
from app.imaging.frame_table import FrameFragment
from app.imaging.pixel_description import (
    PixelDescription,
    can_rewrite_instance_in,
    may_carry_lossy_pixels,
    went_through_lossy_step,
)
from app.imaging.syntaxes import TransferSyntax, find_transfer_syntax
from app.store.conversion.part10_rewrite import iter_rewritten
from app.store.read.frame_source import FrameSource
from app.store.write.parse import ParsedInstance, parse_instance


class CannotTranscode(ValueError):
    """The file cannot be rewritten into the requested syntax; the message says why."""


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A parsed Part 10 file, its pixels described the way a retrieval from the index describes them."""

    parsed: ParsedInstance
    path: Path  # the file as given
    data_path: Path  # the file frame offsets point into (the inflated copy of a deflated data set)
    pixels: PixelDescription | None  # None: no pixel data

    @classmethod
    def of(cls, parsed: ParsedInstance, path: Path) -> ParsedFile:
        """`parsed`, read from `path`, whose frames lie in its inflated copy when it has one."""
        return cls(parsed, path, parsed.inflated_file or path, parsed.pixel_description())

    @property
    def syntax(self) -> TransferSyntax:
        return self.parsed.transfer_syntax

    def frame_source(self, codecs: CodecPool | None = None) -> FrameSource | None:
        """The file's frames, read as a stored blob's are; None: no pixel data."""
        if self.pixels is None:
            return None
        fragments: dict[int, list[FrameFragment]] = {}
        for fragment in self.parsed.frames:
            fragments.setdefault(fragment.frame_number, []).append(fragment)
        return FrameSource(
            LocalFile(self.data_path),
            str(self.data_path),
            {number: tuple(parts) for number, parts in fragments.items()},
            self.pixels,
            pixel_vr=self._pixel_vr(),
            codecs=codecs,
        )

    def _pixel_vr(self) -> str | None:
        pixel = self.parsed.pixel
        if pixel is None:
            return None
        element = json.loads(self.parsed.metadata_json).get(f"{pixel.tag:08X}", {})
        vr = element.get("vr")
        return vr if isinstance(vr, str) else None


class LocalFile:
    """Ranged reads of one local file, in the shape `FrameSource` reads blobs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_range(self, key: str, offset: int, length: int) -> bytes:  # noqa: ARG002 (one file, one blob)
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)


def parse_file(path: Path, work_directory: Path) -> ParsedFile:
    """Parse `path` once (raises `InstanceProblem` for what ingest would refuse). The caller removes
    `parsed.inflated_file` when there is one."""
    return ParsedFile.of(parse_instance(path, work_directory=work_directory), path)


def iter_transcoded(
    parsed_file: ParsedFile,
    target_uid: str,
    *,
    codecs: CodecPool | None = None,
    spool_directory: Path | None = None,
) -> Iterator[bytes]:
    """The file's Part 10 bytes in `target_uid`, in chunks; CannotTranscode if it cannot be made."""
    target = find_transfer_syntax(target_uid)
    if target is None:
        raise CannotTranscode(f"{target_uid} is not a transfer syntax Fovea knows")
    syntax, pixels = parsed_file.syntax, parsed_file.pixels
    if target.uid != syntax.uid and not can_rewrite_instance_in(pixels, target.uid):
        raise CannotTranscode(_why_not(parsed_file, target))
    source = parsed_file.frame_source(codecs)
    if target.uid == syntax.uid and target.uid != ExplicitVRLittleEndian:
        with open(parsed_file.path, "rb") as unchanged:
            yield from _copy(unchanged)
        return
    tag = parsed_file.parsed.pixel.tag if parsed_file.parsed.pixel else 0
    spool = str(spool_directory) if spool_directory else None
    with open(parsed_file.data_path, "rb") as stored:
        yield from iter_rewritten(stored, syntax, target.uid, source, tag, spool_directory=spool)


def write_transcoded(
    parsed_file: ParsedFile,
    target_uid: str,
    out: BinaryIO,
    *,
    codecs: CodecPool | None = None,
    spool_directory: Path | None = None,
) -> None:
    for chunk in iter_transcoded(parsed_file, target_uid, codecs=codecs, spool_directory=spool_directory):
        out.write(chunk)


def _copy(stored: BinaryIO, chunk: int = 1 << 20) -> Iterator[bytes]:
    while data := stored.read(chunk):
        yield data


def _why_not(parsed_file: ParsedFile, target: TransferSyntax) -> str:
    syntax, pixels = parsed_file.syntax, parsed_file.pixels
    if not target.encapsulated and target.uid not in (
        ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
    ):
        return f"{target.label}: Fovea writes (Deflated) Explicit VR Little Endian or an encapsulated syntax"
    if target.is_video:
        return f"{target.label}: video is not encoded"
    lossy = went_through_lossy_step(syntax, parsed_file.parsed.lossy_image_compression)
    if lossy and not may_carry_lossy_pixels(target):
        return f"{target.label} is lossless-only and the pixels already went through a lossy step"
    if syntax.encapsulated and not can_decode(syntax.uid):
        return f"{syntax.label} frames cannot be decoded: no installed decoder reads them"
    if pixels is None:
        return f"{target.label}: the instance has no pixel data to convert"
    if target.encapsulated and (reason := missing_encoder_reason(target.uid)):
        return f"{target.label}: {reason}"
    layout = pixels.stored_format.description
    if not target.encapsulated:
        return f"{layout} do not fit an Explicit VR Little Endian value (at most 4 GiB)"
    return f"{target.label} cannot hold {layout}"
