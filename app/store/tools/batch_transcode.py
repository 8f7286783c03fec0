"""`fovea transcode IN OUT --syntax NAME|UID`: files converted by the engine WADO-RS uses.

Why a module: the command walks folders, decides each output path, writes atomically and reports
per file; the conversion itself is `file_transcode`. An output is written to a temporary file beside
its destination and renamed into place only once complete, so an interrupted run never leaves a
half-written DICOM file under the real name; an existing output is kept unless `overwrite`. Each
file's fate is reported to a callback as a `TranscodeEvent`; the command line words it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.imaging.codec_pool import CodecPool
from app.store.conversion.file_transcode import CannotTranscode, parse_file, write_transcoded
from app.store.write.parse import InstanceProblem


@dataclass(frozen=True, slots=True)
class Converted:
    source: Path
    output: Path


@dataclass(frozen=True, slots=True)
class Skipped:
    """The output exists and overwriting was not asked: it is kept."""

    source: Path
    output: Path


@dataclass(frozen=True, slots=True)
class Failed:
    source: Path
    reason: str


TranscodeEvent = Converted | Skipped | Failed


def _ignore(_event: TranscodeEvent) -> None:
    pass


@dataclass
class TranscodeSummary:
    converted: int = 0
    skipped: int = 0  # the output exists and overwrite was not asked
    failed: list[tuple[Path, str]] = field(default_factory=list)


def transcode_paths(
    source: Path,
    destination: Path,
    target_uid: str,
    *,
    overwrite: bool = False,
    on_event: Callable[[TranscodeEvent], None] = _ignore,
    codecs: CodecPool | None = None,
) -> TranscodeSummary:
    """Convert `source` (a file, or every file under a folder) into `destination` (a file, or the
    same tree under a folder). Each file is reported to `on_event` and counted; a failure does not
    stop the run."""
    summary = TranscodeSummary()
    pool = codecs or CodecPool()
    try:
        for path, out in _pairs(source, destination):
            if out.exists() and not overwrite:
                summary.skipped += 1
                on_event(Skipped(path, out))
                continue
            try:
                _convert(path, out, target_uid, pool)
            except (CannotTranscode, InstanceProblem, OSError, ValueError) as exc:
                summary.failed.append((path, str(exc)))
                on_event(Failed(path, str(exc)))
                continue
            summary.converted += 1
            on_event(Converted(path, out))
    finally:
        if codecs is None:
            pool.close()
    return summary


def _pairs(source: Path, destination: Path) -> Iterator[tuple[Path, Path]]:
    if source.is_file():
        yield source, destination / source.name if destination.is_dir() else destination
        return
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        yield path, destination / path.relative_to(source)


def _convert(path: Path, out: Path, target_uid: str, codecs: CodecPool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    parsed = parse_file(path, out.parent)
    handle, temporary = tempfile.mkstemp(prefix=".fovea-", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as writer:
            write_transcoded(parsed, target_uid, writer, codecs=codecs, spool_directory=out.parent)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        if parsed.parsed.inflated_file is not None:
            parsed.parsed.inflated_file.unlink(missing_ok=True)
