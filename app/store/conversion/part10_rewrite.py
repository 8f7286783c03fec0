"""One stored Part 10 file rewritten into another transfer syntax: the one rewrite WADO-RS
(`application/dicom; transfer-syntax=UID`), `fovea transcode` and the ingest storage policy share.

Why one: the three must write the same bytes for the same file and target. The caller has already
decided the rewrite is possible (`can_rewrite_instance_in`) and opened the stored file (the inflated
copy of a deflated data set); the frames come through a `FrameSource`, decoded and encoded per frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from app.imaging.instance_transcode import iter_encapsulated, iter_explicit_vr_little_endian
from app.imaging.syntaxes import TransferSyntax
from app.store.read.frame_source import FrameSource


def iter_rewritten(
    stored: BinaryIO,
    syntax: TransferSyntax,
    target_uid: str,
    frames: FrameSource | None,
    pixel_data_tag: int,
    *,
    spool_directory: str | None = None,
    streamed: bool = False,
) -> Iterator[bytes]:
    """The Part 10 bytes of `stored` (in `syntax`) rewritten into `target_uid`, in chunks.

    (Deflated) Explicit VR Little Endian: the pixels as native frames; an encapsulated syntax: every
    frame encoded into it, under a full Basic Offset Table (spooled) or, `streamed`, each fragment
    sent as soon as it is made. `frames` None: the instance has no pixel data.
    """
    if target_uid in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        yield from iter_explicit_vr_little_endian(
            stored,
            big_endian=syntax.big_endian,
            pixels=frames.native_pixels(pixel_data_tag) if frames else None,
            deflated=target_uid == DeflatedExplicitVRLittleEndian,
        )
        return
    yield from iter_encapsulated(
        stored,
        big_endian=syntax.big_endian,
        pixels=frames.encoded_pixels(target_uid) if frames else None,
        transfer_syntax_uid=target_uid,
        spool_dir=spool_directory,
        streamed=streamed,
    )
