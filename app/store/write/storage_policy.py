"""The ingest storage policy: which transfer syntaxes are accepted, and which one pixels are kept in.

Why: an archive may want to refuse what its downstream cannot use (video, say), or keep every
lossless image in one syntax (HTJ2K lossless for fast partial decoding, or Deflated Image Frame
Compression for cheap storage) whatever the modality sent. Both are off by default: Fovea stores
exactly what it receives.

Conversion at ingest is lossless only and checked: an instance is converted only when its pixels
never went through a lossy step and the storage syntax's encoder can hold the layout; the converted
file is parsed again and each of its frames decoded and compared, bit for bit, with the original's
native pixels. Anything else (a lossy original, a layout the encoder cannot hold, an encoder or
decoder error, a mismatch) stores the instance as received: a policy may save space, never lose a
pixel or an instance. The converted file holds the same data set but for the Transfer Syntax UID,
the re-encapsulated Pixel Data (7FE0,0001-0003 dropped), the Photometric Interpretation the codec
needs, and no elements after Pixel Data (trailing padding, signatures the new bytes would break).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.imaging.codec_pool import DECODE_COPIES, WORKER_BASELINE_BYTES
from app.imaging.codecs.decode import NativeFrame
from app.imaging.pixel_description import can_rewrite_instance_in
from app.imaging.syntaxes import find_transfer_syntax
from app.store.conversion.file_transcode import ParsedFile, write_transcoded
from app.store.write.parse import InstanceProblem, ParsedInstance, Problem, parse_instance

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoragePolicy:
    accepted_syntaxes: frozenset[str] = frozenset()  # UIDs; empty: every syntax Fovea knows
    storage_syntax: str | None = None  # UID of a lossless syntax to keep pixels in; None: as received
    # FOVEA_CODEC_MEMORY_LIMIT_MB in bytes (0: none): a frame too large to decode within it is kept
    # as received, as retrieval would refuse to decode it
    decode_limit_bytes: int = 0

    def check_accepted(self, parsed: ParsedInstance) -> None:
        """Refuse (PS3.18 Failure Reason 0xC122) a syntax the operator did not accept."""
        syntax = parsed.transfer_syntax
        if self.accepted_syntaxes and syntax.uid not in self.accepted_syntaxes:
            raise InstanceProblem(
                Problem.UNSUPPORTED_SYNTAX,
                f"{syntax.label} is not accepted by this server (FOVEA_ACCEPTED_TRANSFER_SYNTAXES)",
            )

    def converted(
        self, path: Path, parsed: ParsedInstance, work_directory: Path
    ) -> tuple[Path, ParsedInstance] | None:
        """The instance converted into the storage syntax, parsed; None to store it as received.

        The caller still owns `path` and `parsed.inflated_file`; the returned file is new.
        """
        target = self.storage_syntax
        if target is None or parsed.pixel is None or parsed.transfer_syntax.uid == target:
            return None
        if not self._fits_decode_budget(parsed):
            return None
        original = ParsedFile.of(parsed, path)
        pixels = original.pixels
        # a lossy original stays as it came: decoded into deflate or Encapsulated Uncompressed (which
        # retrieval may serve) it would only grow
        if pixels is None or pixels.went_through_lossy_step or not can_rewrite_instance_in(pixels, target):
            return None  # lossy, video, or a layout the encoder cannot hold: kept as received
        handle, name = tempfile.mkstemp(prefix="storage-", suffix=".dcm", dir=work_directory)
        converted = Path(name)
        reparsed: ParsedInstance | None = None
        try:
            with os.fdopen(handle, "wb") as out:
                write_transcoded(original, target, out, spool_directory=work_directory)
            reparsed = parse_instance(converted, work_directory=work_directory)
            _check_same_pixels(original, ParsedFile.of(reparsed, converted))
        except Exception as exc:  # never lose the instance over a conversion: store it as received
            log.warning(
                "storing %s as received (%s): conversion to %s failed: %s",
                parsed.sop_instance_uid,
                parsed.transfer_syntax.uid,
                target,
                exc,
            )
            converted.unlink(missing_ok=True)
            return None
        return converted, reparsed

    def _fits_decode_budget(self, parsed: ParsedInstance) -> bool:
        if not self.decode_limit_bytes or parsed.pixel is None:
            return True
        needed = DECODE_COPIES * parsed.pixel.layout.frame_bytes + WORKER_BASELINE_BYTES
        return needed <= self.decode_limit_bytes


class PixelMismatch(ValueError):
    """A converted frame decodes to other pixels than the original's."""


def _check_same_pixels(original: ParsedFile, converted: ParsedFile) -> None:
    old, new = original.frame_source(), converted.frame_source()
    if old is None or new is None:
        raise PixelMismatch("pixel data missing after conversion")
    samples = old.pixels.layout.samples_per_pixel
    for number in range(1, old.pixels.layout.number_of_frames + 1):
        if _interleaved(old.native(number), samples) != _interleaved(new.native(number), samples):
            raise PixelMismatch(f"frame {number} decodes to other pixels after conversion")


def _interleaved(frame: NativeFrame, samples: int) -> bytes:
    """The frame's bytes with colour sample-interleaved: the codecs interleave planar input."""
    if samples == 1 or frame.planar_configuration == 0:
        return frame.data
    planes = np.frombuffer(frame.data, np.uint8).reshape(samples, -1)
    return planes.T.tobytes()


def storage_policy(
    accepted: tuple[str, ...], storage_syntax: str | None, *, decode_limit_bytes: int = 0
) -> StoragePolicy:
    """The policy from settings values (UIDs, already checked by Settings)."""
    if storage_syntax is not None:
        syntax = find_transfer_syntax(storage_syntax)
        if syntax is None or syntax.lossless is not True:
            raise ValueError(f"storage syntax {storage_syntax} is not a lossless syntax Fovea knows")
    return StoragePolicy(frozenset(accepted), storage_syntax, decode_limit_bytes)
