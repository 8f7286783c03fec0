"""Hypothesis strategies for hostile DICOM files, mutated from real ones in pydicom's corpus.

Each seed file is prepared once: its SOP Instance UID is replaced by a placeholder of fixed length (so every
example can get a new UID without changing any length) and the file positions of its top-level element
headers are recorded. A mutated file is a seed with one to three mutations applied: a truncation, flipped
bytes, a huge or undefined length in an element header, a bogus VR, another Transfer Syntax UID in the
File Meta, an undefined-length sequence never closed, or a private element inserted.
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass
from functools import cache

import pydicom
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    MPEG2MPML,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
)

from tests.dicom_files import corpus_file

SEED_FILES = (
    "CT_small.dcm",  # Explicit VR Little Endian, private tags, sequences
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_small_odd.dcm",
)
PLACEHOLDER_UID = "2.25.1" + "0" * 38  # the length of every UID `unique_uid` makes
LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
# VRs written over a real one: unknown ones (ZZ, bytes that are no VR at all), and real ones of the other
# header shape (a 2-byte length read as a 4-byte one and back).
BOGUS_VRS = (b"ZZ", b"\x00\x00", b"ab", b"  ", b"UN", b"SQ", b"OB", b"US", b"UI", b"DA")
BOGUS_SYNTAXES = (
    "",
    "1.2.3",
    "not a uid",
    "1.2.840.10008.1.2.4.999",  # well-formed, unknown
    ImplicitVRLittleEndian,  # a lie for most seeds
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,  # the data set is not deflated
    JPEGLSLossless,  # the pixel data is something else
    RLELossless,
    MPEG2MPML,  # video
)
HUGE_LENGTHS = (0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFF0, 0x7FFFFFFF, 0x10000000)


def unique_uid() -> str:
    """A new UID as long as PLACEHOLDER_UID: replaying an example gives a file of the same size."""
    return f"2.25.1{uuid.uuid4().int % 10**38:038d}"


@dataclass(frozen=True)
class ElementHeader:
    tag_offset: int
    vr_offset: int | None  # where the 2-byte VR is (explicit VR only)
    length_offset: int
    length_size: int  # 2 or 4


@dataclass(frozen=True)
class SeedFile:
    name: str
    data: bytes  # with PLACEHOLDER_UID as its SOP Instance UID
    meta_end: int  # offset of the first data set byte
    little_endian: bool
    implicit_vr: bool
    elements: tuple[ElementHeader, ...]  # top-level data set elements


@cache
def seed_file(name: str) -> SeedFile:
    ds = pydicom.dcmread(corpus_file(name).path)
    ds.SOPInstanceUID = PLACEHOLDER_UID
    ds.file_meta.MediaStorageSOPInstanceUID = UID(PLACEHOLDER_UID)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    data = buffer.getvalue()
    reread = pydicom.dcmread(io.BytesIO(data), defer_size=0)
    meta = reread.file_meta
    syntax = meta.TransferSyntaxUID
    headers = []
    for tag in list(reread.keys()):
        raw = reread._dict[tag]  # still raw: never accessed, so it knows where its value was read from
        if not isinstance(raw, RawDataElement) or raw.value_tell is None:
            continue
        headers.append(_header(raw, implicit=syntax.is_implicit_VR))
    first = min(h.tag_offset for h in headers)
    return SeedFile(name, data, first, syntax.is_little_endian, syntax.is_implicit_VR, tuple(headers))


def _header(raw: RawDataElement, *, implicit: bool) -> ElementHeader:
    tell = raw.value_tell
    if implicit:
        return ElementHeader(tell - 8, None, tell - 4, 4)
    if raw.VR in LONG_LENGTH_VRS:
        return ElementHeader(tell - 12, tell - 8, tell - 4, 4)
    return ElementHeader(tell - 8, tell - 4, tell - 2, 2)


@dataclass
class MutatedFile:
    seed: str
    data: bytes
    sop_instance_uid: str
    mutations: list[str]

    def __repr__(self) -> str:  # what a failing example prints
        return f"MutatedFile({self.seed}, {self.mutations}, {len(self.data)} bytes)"


def _pack(seed: SeedFile, fmt: str, *values: int) -> bytes:
    return struct.pack(("<" if seed.little_endian else ">") + fmt, *values)


def _element_bytes(
    seed: SeedFile, group: int, element: int, vr: bytes, value: bytes, length: int | None
) -> bytes:
    """One element in the seed's encoding; `length` overrides the real one (a lie, or undefined)."""
    size = len(value) if length is None else length
    tag = _pack(seed, "HH", group, element)
    if seed.implicit_vr:
        return tag + _pack(seed, "I", size) + value
    if vr.decode("latin-1") in LONG_LENGTH_VRS:
        return tag + vr + b"\0\0" + _pack(seed, "I", size) + value
    return tag + vr + _pack(seed, "H", min(size, 0xFFFF)) + value


@st.composite
def truncate(draw: st.DrawFn, _seed: SeedFile, data: bytes) -> tuple[bytes, str]:
    cut = draw(st.integers(0, len(data) - 1))
    return data[:cut], f"truncated at {cut}"


@st.composite
def flip_bytes(draw: st.DrawFn, _seed: SeedFile, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    positions = draw(st.lists(st.integers(128, len(data) - 1), min_size=1, max_size=8))
    for at in positions:
        out[at] ^= draw(st.integers(1, 255))
    return bytes(out), f"flipped bytes at {positions}"


@st.composite
def huge_length(draw: st.DrawFn, seed: SeedFile, data: bytes) -> tuple[bytes, str]:
    header = draw(st.sampled_from(seed.elements))
    if header.length_size == 2:
        length = draw(st.sampled_from([0xFFFF, 0xFFFE, 0x8000]))
        packed = _pack(seed, "H", length)
    else:
        length = draw(st.sampled_from(HUGE_LENGTHS))
        packed = _pack(seed, "I", length)
    end = header.length_offset + header.length_size
    return data[: header.length_offset] + packed + data[end:], f"length {length:#x} at {header.tag_offset}"


@st.composite
def bogus_vr(draw: st.DrawFn, seed: SeedFile, data: bytes) -> tuple[bytes, str]:
    explicit = [h for h in seed.elements if h.vr_offset is not None]
    if not explicit:  # implicit VR: no VR to spoil, spoil a length instead
        return draw(huge_length(seed, data))
    header = draw(st.sampled_from(explicit))
    vr = draw(st.sampled_from(BOGUS_VRS))
    assert header.vr_offset is not None
    return data[: header.vr_offset] + vr + data[header.vr_offset + 2 :], f"VR {vr!r} at {header.tag_offset}"


def with_transfer_syntax(seed: SeedFile, data: bytes, sop_instance_uid: str, syntax: str) -> bytes:
    """`data` with the seed's File Meta naming `syntax` (a lie, or no syntax) as its Transfer Syntax."""
    meta = pydicom.dcmread(io.BytesIO(seed.data[: seed.meta_end]), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = UID(syntax)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    buffer = pydicom.filebase.DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=False)
    return data[:132] + buffer.getvalue() + data[seed.meta_end :]


@st.composite
def unclosed_sequence(draw: st.DrawFn, seed: SeedFile, data: bytes) -> tuple[bytes, str]:
    """An undefined-length sequence whose item and sequence delimiters never come, at the end or inside."""
    group, element = draw(st.sampled_from([(0x0040, 0xA730), (0xFFFA, 0xFFFA), (0x0008, 0x1140)]))
    item = _pack(seed, "HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    inner = _element_bytes(seed, 0x0008, 0x0100, b"SH", b"FUZZ", None)
    raw = _element_bytes(seed, group, element, b"SQ", b"", 0xFFFFFFFF) + item + inner
    at = draw(st.sampled_from([len(data), *(h.tag_offset for h in seed.elements)]))
    return data[:at] + raw + data[at:], f"unclosed sequence ({group:04X},{element:04X}) at {at}"


@st.composite
def private_element(draw: st.DrawFn, seed: SeedFile, data: bytes) -> tuple[bytes, str]:
    """A private creator and one private element (of any VR, with an honest or lying length)."""
    group = draw(st.sampled_from([0x0009, 0x0011, 0x7FDF, 0x0019]))
    creator = _element_bytes(seed, group, 0x0010, b"LO", b"FUZZ", None)
    vr = draw(st.sampled_from([b"UN", b"OB", b"LO", b"SQ", b"UT", b"DS"]))
    value = draw(st.binary(max_size=64))
    value += b"\0" * (len(value) % 2)
    length = draw(st.sampled_from([None, None, 0xFFFFFFFF, len(value) + 1, 0x7FFFFFF0]))
    element = _element_bytes(seed, group, 0x1001, vr, value, length)
    at = draw(st.sampled_from([len(data), *(h.tag_offset for h in seed.elements)]))
    return data[:at] + creator + element + data[
        at:
    ], f"private ({group:04X},1001) {vr!r} length {length} at {at}"


MUTATIONS = (truncate, flip_bytes, huge_length, bogus_vr, unclosed_sequence, private_element)


@st.composite
def mutated_files(draw: st.DrawFn) -> MutatedFile:
    seed = seed_file(draw(st.sampled_from(SEED_FILES)))
    # Drawn, not random: a flipped byte inside it must flip the same way when Hypothesis replays the
    # example. A UID drawn twice is a legitimate case too (the second replaces the first).
    sop = PLACEHOLDER_UID[:-38] + f"{draw(st.integers(0, 10**38 - 1)):038d}"
    data = seed.data.replace(PLACEHOLDER_UID.encode(), sop.encode())
    syntax = draw(st.one_of(st.none(), st.sampled_from(BOGUS_SYNTAXES)))
    done = []
    for mutation in draw(
        st.lists(st.sampled_from(MUTATIONS), min_size=0 if syntax is not None else 1, max_size=3)
    ):
        if len(data) <= seed.meta_end:  # cut inside the File Meta: nothing left to mutate
            break
        data, what = draw(mutation(seed, data))
        done.append(what)
    if syntax is not None and len(data) >= seed.meta_end:  # last: the other mutations use the seed's offsets
        data = with_transfer_syntax(seed, data, sop, syntax)
        done.append(f"Transfer Syntax UID {syntax!r}")
    return MutatedFile(seed.name, data, sop, done)
