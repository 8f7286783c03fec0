"""Tests for app/dicomweb/dicomjson.py: DICOM JSON (PS3.18 Annex F) and bulk data locations.

The corpus test checks every file pydicom ships against pydicom's own `Dataset.to_json_dict`, used
only as an independent reference; each place where the two legitimately differ is normalised by one
named rule in `_expected_attribute`, with the reason beside it.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)

import app.imaging.syntaxes  # noqa: F401  (registers the syntaxes pydicom 3.0.2 lacks)
from app.dicomweb.dicomjson import (
    PIXEL_DATA_TAGS,
    BulkDataLocation,
    DicomJson,
    UnconvertibleElementError,
    dataset_to_dicom_json,
    deferred_sequence_tags,
    encode_dicom_json,
)

PREFIX = "/studies/1.2/series/1.2.3/instances/1.2.3.4/bulkdata"
THRESHOLD = 1024
DEFER_SIZE = 1024
ITEM_TAG_LE = b"\xfe\xff\x00\xe0"  # (FFFE,E000): encapsulated pixel data starts with an item


# --- corpus: every file pydicom ships, against pydicom's own to_json_dict ---


def _corpus() -> list[str]:
    files = [*get_testdata_files(), *get_charset_files()]
    return sorted(path for path in files if Path(path).is_file())


def _read(path: str, **kwargs: Any) -> Dataset:
    """Read a corpus file; a .dcm file without preamble and File Meta is read with force=True."""
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError:
        if not path.endswith(".dcm"):
            pytest.skip("not a DICOM file")
        return pydicom.dcmread(path, force=True, **kwargs)


def _is_deferred(ds: Dataset, tag: int) -> bool:
    stored = ds.get_item(tag, keep_deferred=True)
    return isinstance(stored, RawDataElement) and stored.value is None and stored.length != 0


@dataclass(frozen=True)
class _Reference:
    handed: dict[str, bytes]  # token returned by our bulk data handler -> the value pydicom gave it
    deferred: frozenset[str]  # top-level keys whose value our converter saw deferred
    little_endian: bool
    relabelled: dict[str, str]  # see _relabel_number_text


def _swap_words(value: bytes, vr: str) -> bytes:
    size = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}.get(vr, 1)
    return b"".join(value[i : i + size][::-1] for i in range(0, len(value), size))


def _expected(ref_ds: dict[str, Any], prefix: str, ref: _Reference) -> dict[str, Any]:
    out = {}
    for key, attribute in sorted(ref_ds.items()):
        if key.endswith("0000"):  # group length: pydicom keeps it, PS3.18 F.2 omits it
            continue
        out[key] = _expected_attribute(key, attribute, f"{prefix}{key}", ref)
    return out


def _expected_attribute(key: str, attr: dict[str, Any], path: str, ref: _Reference) -> Any:
    vr = ref.relabelled.get(path, attr["vr"])
    binary = None
    if "InlineBinary" in attr:
        binary = base64.b64decode(attr["InlineBinary"])
    elif "BulkDataURI" in attr:
        binary = ref.handed[attr["BulkDataURI"]]
    # pydicom compares its threshold with the base64 length (value > 768 bytes for 1024) and inlines
    # small pixel data; our rule: value length > threshold, and pixel data always. Deferred values,
    # which pydicom reads in full here, are bulk data whatever their VR (e.g. a long LT or US LUT).
    is_pixel = int(key, 16) in PIXEL_DATA_TAGS
    if path in ref.deferred or (binary is not None and (is_pixel or len(binary) > THRESHOLD)):
        return {"vr": vr, "BulkDataURI": f"{PREFIX}/{path}"}
    if binary is not None:
        # pydicom inlines the bytes as stored; the JSON model is little endian (PS3.18 F.2.7)
        inline = binary if ref.little_endian else _swap_words(binary, vr)
        return {"vr": vr, "InlineBinary": base64.b64encode(inline).decode()}
    values = attr.get("Value")
    if values is None:
        return attr
    if vr == "SQ":
        if not values:  # pydicom writes "Value": [] for a sequence without items; we write vr only
            return {"vr": vr}
        return {
            "vr": vr,
            "Value": [_expected(item, f"{path}/{i}/", ref) for i, item in enumerate(values)],
        }
    return {"vr": vr, "Value": [_expected_value(value, vr) for value in values]}


def _expected_value(value: Any, vr: str) -> Any:
    if vr == "PN":
        # pydicom always writes "Alphabetic" (even "") and "" for empty groups; F.2.2 omits them,
        # and an empty name inside a multi-valued PN is null (F.2.5)
        groups = {name: text for name, text in value.items() if text}
        return groups or None
    if value == "":  # pydicom keeps "" inside a multi-valued string; F.2.5 says null
        return None
    return value


def _bulk_uris(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        if "BulkDataURI" in obj:
            yield obj["BulkDataURI"]
        for child in obj.values():
            yield from _bulk_uris(child)
    elif isinstance(obj, list):
        for child in obj:
            yield from _bulk_uris(child)


def _tags_ascending(obj: dict[str, Any]) -> bool:
    """True when the keys of a JSON data set, and of every item nested in it, ascend (F.2.1)."""
    items = [item for attr in obj.values() if attr["vr"] == "SQ" for item in attr.get("Value", [])]
    return list(obj) == sorted(obj) and all(_tags_ascending(item) for item in items)


def _attribute_at(attributes: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, leaf = path.split("/")
    obj = attributes
    for seq_key, index in zip(parents[::2], parents[1::2], strict=True):
        obj = obj[seq_key]["Value"][int(index)]
    attribute: dict[str, Any] = obj[leaf]
    return attribute


def _stored_raw(full: Dataset, path: str) -> RawDataElement:
    """The raw (unconverted) element at a tag path in a fully read data set."""
    parts = path.split("/")
    ds = full
    for seq_key, index in zip(parts[:-1:2], parts[1:-1:2], strict=True):
        ds = ds[int(seq_key, 16)].value[int(index)]
    stored = ds.get_item(int(parts[-1], 16))
    assert isinstance(stored, RawDataElement), path
    return stored


def _relabel_number_text(ds: Dataset, prefix: str = "") -> dict[str, str]:
    """Relabel as LO the IS/DS elements holding text pydicom could not parse; return path -> VR.

    pydicom keeps such text (an invalid number like "1A", or "" inside a multi-valued DS) as str,
    then its to_json_dict raises on it. We keep the text (PS3.18 F.2.3 allows IS/DS strings), so the
    reference is made from LO and the VR restored in `_expected_attribute`.
    """
    relabelled: dict[str, str] = {}
    for elem in ds:
        path = f"{prefix}{elem.tag:08X}"
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                relabelled |= _relabel_number_text(item, f"{path}/{index}/")
        elif elem.VR in ("IS", "DS") and not elem.is_empty:
            values = elem.value if elem.VM > 1 else [elem.value]
            if any(isinstance(value, str) for value in values):
                relabelled[path] = elem.VR
                elem.VR = "LO"
    return relabelled


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: Path(p).name)
def test_corpus_matches_pydicom_reference(path: str) -> None:
    ds = _read(path, defer_size=DEFER_SIZE)
    for tag in deferred_sequence_tags(ds):  # the documented caller step: load deferred sequences
        ds[tag]
    deferred = [tag for tag in sorted(ds.keys()) if _is_deferred(ds, tag)]
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        # pydicom's offsets count bytes of the inflated stream, useless for a ranged read
        with pytest.raises(UnconvertibleElementError, match="deflated"):
            dataset_to_dicom_json(ds, bulkdata_uri_prefix=PREFIX)
        return

    result = dataset_to_dicom_json(ds, bulkdata_uri_prefix=PREFIX, bulkdata_threshold=THRESHOLD)

    assert all(_is_deferred(ds, tag) for tag in deferred), "a deferred value was read"
    handed: dict[str, bytes] = {}

    def handler(elem: DataElement) -> str:
        handed[f"bulk:{len(handed)}"] = elem.value
        return f"bulk:{len(handed) - 1}"

    full = _read(path)
    relabelled = _relabel_number_text(full)
    ref_json = full.to_json_dict(bulk_data_threshold=THRESHOLD, bulk_data_element_handler=handler)
    little_endian = full.original_encoding[1]
    assert little_endian is not None
    deferred_keys = frozenset(f"{tag:08X}" for tag in deferred)
    reference = _Reference(handed, deferred_keys, little_endian, relabelled)
    assert result.attributes == _expected(ref_json, "", reference)
    assert _tags_ascending(result.attributes)

    raw_full, data = _read(path), Path(path).read_bytes()
    assert sorted(_bulk_uris(result.attributes)) == sorted(f"{PREFIX}/{loc.path}" for loc in result.bulkdata)
    for location in result.bulkdata:
        assert location.little_endian == little_endian
        assert location.vr == _attribute_at(result.attributes, location.path)["vr"]
        if location.length is None:
            assert data[location.offset : location.offset + 4] == ITEM_TAG_LE
            continue
        stored = _stored_raw(raw_full, location.path)
        assert data[location.offset : location.offset + location.length] == stored.value


# --- focused tests on data sets built here ---


def _write(tmp_path: Path, ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.3.4"
    path = tmp_path / "instance.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _convert(path: Path, *, defer_size: int = DEFER_SIZE) -> DicomJson:
    ds = pydicom.dcmread(path, defer_size=defer_size)
    return dataset_to_dicom_json(ds, bulkdata_uri_prefix=PREFIX, bulkdata_threshold=THRESHOLD)


def _raw_dataset(*elements: tuple[int, str, bytes]) -> Dataset:
    """A data set of raw explicit VR little endian elements, as dcmread leaves them."""
    ds = Dataset()
    ds.set_original_encoding(is_implicit_vr=False, is_little_endian=True)
    for tag, vr, value in elements:
        ds[tag] = RawDataElement(
            pydicom.tag.Tag(tag), vr, len(value), value, 0, is_implicit_VR=False, is_little_endian=True
        )
    return ds


def _attributes(ds: Dataset) -> dict[str, Any]:
    return dataset_to_dicom_json(ds, bulkdata_uri_prefix=PREFIX).attributes


def test_person_name_has_only_its_non_empty_groups(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.OtherPatientNames = ["Doe^John", "", "=山田^太郎"]
    attributes = _convert(_write(tmp_path, ds)).attributes

    assert attributes["00100010"] == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}],
    }
    assert attributes["00101001"] == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Doe^John"}, None, {"Ideographic": "山田^太郎"}],
    }


def test_empty_value_in_multi_valued_string_is_null_and_text_is_not_split() -> None:
    ds = _raw_dataset(
        (0x00080008, "CS", b"ORIGINAL\\\\AXIAL "),
        (0x00080016, "UI", b"1.2.840\x00"),
        (0x00081030, "LO", b"  "),
        (0x00204000, "LT", b"a\\b "),
    )
    assert _attributes(ds) == {
        "00080008": {"vr": "CS", "Value": ["ORIGINAL", None, "AXIAL"]},
        "00080016": {"vr": "UI", "Value": ["1.2.840"]},
        "00081030": {"vr": "LO"},  # only padding: no value (F.2.5)
        "00204000": {"vr": "LT", "Value": ["a\\b"]},
    }


def test_invalid_is_and_ds_keep_their_text_and_numbers_stay_json_numbers() -> None:
    ds = _raw_dataset(
        (0x00200013, "IS", b"12\\1A\\\\ -7 "),
        (0x00281050, "DS", b"1.5\\1e999\\nan \\-2\\.5E1 "),
        (0x00660023, "FL", struct.pack("<3f", 0.5, math.inf, math.nan)),
        (0x00189087, "FD", struct.pack("<d", -math.inf)),
    )
    attributes = _attributes(ds)

    assert attributes["00200013"] == {"vr": "IS", "Value": [12, "1A", None, -7]}
    assert attributes["00281050"] == {"vr": "DS", "Value": [1.5, "1e999", "nan", -2, 5.0]}
    assert attributes["00660023"] == {"vr": "FL", "Value": [0.5, "Infinity", "NaN"]}
    assert attributes["00189087"] == {"vr": "FD", "Value": ["-Infinity"]}
    assert orjson.loads(encode_dicom_json(attributes)) == attributes  # no NaN turned into null


def test_attribute_tag_values_are_hex_strings() -> None:
    ds = Dataset()
    ds.add_new(0x00209165, "AT", [0x00100010, 0x7FE00010])
    assert _attributes(ds) == {"00209165": {"vr": "AT", "Value": ["00100010", "7FE00010"]}}


@pytest.mark.parametrize("undefined_length", [True, False], ids=["undefined", "defined"])
def test_bulk_data_inside_nested_sequences_has_an_item_path(tmp_path: Path, undefined_length: bool) -> None:
    waveform = bytes(range(256)) * 12  # 3072 bytes, over the threshold
    inner = Dataset()
    inner.add_new(0x00420011, "OB", b"%PDF-tiny")
    channel = Dataset()
    channel.WaveformBitsAllocated = 16
    channel.WaveformData = waveform
    channel["WaveformData"].VR = "OW"
    channel.ReferencedSOPSequence = [inner]
    ds = Dataset()
    ds.WaveformSequence = [Dataset(), channel]
    for elem in (ds["WaveformSequence"], channel["ReferencedSOPSequence"]):
        elem.is_undefined_length = undefined_length
    path = _write(tmp_path, ds)
    parsed = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    # a defined-length sequence this long is deferred; pydicom then parses it from a copy of its
    # value, so offsets inside count from the sequence value (the converter adds them up)
    assert deferred_sequence_tags(parsed) == (() if undefined_length else (0x54000100,))
    for tag in deferred_sequence_tags(parsed):
        parsed[tag]

    result = dataset_to_dicom_json(parsed, bulkdata_uri_prefix=PREFIX)

    item = result.attributes["54000100"]["Value"][1]
    assert item["54001010"] == {"vr": "OW", "BulkDataURI": f"{PREFIX}/54000100/1/54001010"}
    assert item["00081199"]["Value"][0]["00420011"] == {
        "vr": "OB",
        "InlineBinary": base64.b64encode(b"%PDF-tiny\x00").decode(),  # padded to even length
    }
    (location,) = result.bulkdata
    assert location.path == "54000100/1/54001010"
    assert (location.vr, location.length, location.little_endian) == ("OW", 3072, True)
    data = path.read_bytes()
    assert location.length is not None
    assert data[location.offset : location.offset + location.length] == waveform


def test_empty_item_is_an_empty_object_and_empty_sequence_has_no_value() -> None:
    ds = Dataset()
    ds.ReferencedStudySequence = [Dataset()]
    ds.ReferencedSeriesSequence = []
    assert _attributes(ds) == {
        "00081110": {"vr": "SQ", "Value": [{}]},
        "00081115": {"vr": "SQ"},
    }


def test_big_endian_inline_binary_is_swapped_per_word(tmp_path: Path) -> None:
    ds = Dataset()
    ds.add_new(0x00281201, "OW", struct.pack(">2H", 0x0102, 0x0304))
    ds.add_new(0x00660016, "OF", struct.pack(">f", 1.5))
    ds.add_new(0x00420011, "OB", b"\x01\x02")
    ds.Rows, ds.Columns, ds.BitsAllocated = 2, 2, 16
    ds.PixelData = struct.pack(">4H", 1, 2, 3, 4)
    path = _write(tmp_path, ds, ExplicitVRBigEndian)
    raw = pydicom.dcmread(path).get_item(0x00281201)
    assert raw.value == b"\x01\x02\x03\x04"  # stored big endian

    result = _convert(path)

    assert (
        result.attributes["00281201"]["InlineBinary"]
        == base64.b64encode(struct.pack("<2H", 0x0102, 0x0304)).decode()
    )
    assert result.attributes["00660016"]["InlineBinary"] == base64.b64encode(struct.pack("<f", 1.5)).decode()
    assert result.attributes["00420011"]["InlineBinary"] == base64.b64encode(b"\x01\x02").decode()
    (pixels,) = result.bulkdata  # pixel data is bulk data even at 8 bytes
    assert (pixels.path, pixels.vr, pixels.length, pixels.little_endian) == (
        "7FE00010",
        "OW",
        8,
        False,
    )
    assert path.read_bytes()[pixels.offset : pixels.offset + 8] == struct.pack(">4H", 1, 2, 3, 4)


def test_private_elements_are_kept_with_their_creator(tmp_path: Path) -> None:
    ds = Dataset()
    block = ds.private_block(0x0009, "FOVEA TEST", create=True)
    block.add_new(0x01, "OB", b"abcd")
    block.add_new(0x02, "OB", b"z" * 2000)
    path = _write(tmp_path, ds, ImplicitVRLittleEndian)

    result = _convert(path)

    assert result.attributes["00090010"] == {"vr": "LO", "Value": ["FOVEA TEST"]}
    assert result.attributes["00091001"] == {
        "vr": "UN",
        "InlineBinary": base64.b64encode(b"abcd").decode(),
    }
    assert result.attributes["00091002"] == {"vr": "UN", "BulkDataURI": f"{PREFIX}/00091002"}
    (location,) = result.bulkdata
    assert (location.vr, location.length) == ("UN", 2000)


def test_deferred_pixel_data_is_never_read(tmp_path: Path) -> None:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.BitsAllocated = 64, 64, 16
    pixels = bytes(range(256)) * 32
    ds.PixelData = pixels
    ds["PixelData"].VR = "OW"
    path = _write(tmp_path, ds)
    data = path.read_bytes()
    parsed = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    path.unlink()  # any attempt to read the deferred value now fails

    result = dataset_to_dicom_json(parsed, bulkdata_uri_prefix=PREFIX)

    assert parsed.get_item(0x7FE00010, keep_deferred=True).value is None
    assert result.attributes["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{PREFIX}/7FE00010"}
    assert result.bulkdata == (
        BulkDataLocation("7FE00010", "OW", data.index(pixels), 8192, little_endian=True),
    )


def test_implicit_vr_deferred_pixel_data_is_ow(tmp_path: Path) -> None:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.PixelRepresentation = 64, 64, 8, 0
    ds.PixelData = b"\x07" * 4096
    path = _write(tmp_path, ds, ImplicitVRLittleEndian)

    result = _convert(path)

    # PS3.5 A.1: native pixel data in implicit VR is OW; pydicom reads it the same way
    assert result.attributes["7FE00010"]["vr"] == pydicom.dcmread(path)["PixelData"].VR == "OW"
    assert result.bulkdata[0].vr == "OW"


def test_threshold_is_on_value_length(tmp_path: Path) -> None:
    ds = Dataset()
    ds.add_new(0x00420011, "OB", b"a" * THRESHOLD)
    ds.add_new(0x00282000, "OB", b"b" * (THRESHOLD + 2))  # ICC Profile
    result = _convert(_write(tmp_path, ds), defer_size=4 * THRESHOLD)

    assert "InlineBinary" in result.attributes["00420011"]
    assert result.attributes["00282000"] == {"vr": "OB", "BulkDataURI": f"{PREFIX}/00282000"}


def test_deferred_text_becomes_bulk_data(tmp_path: Path) -> None:
    ds = Dataset()
    ds.ImageComments = "x" * 3000
    path = _write(tmp_path, ds)

    result = _convert(path)

    assert result.attributes["00204000"] == {"vr": "LT", "BulkDataURI": f"{PREFIX}/00204000"}
    (location,) = result.bulkdata
    data = path.read_bytes()
    assert location.length is not None
    assert data[location.offset : location.offset + location.length] == b"x" * 3000


def test_deferred_sequence_must_be_loaded_first(tmp_path: Path) -> None:
    item = Dataset()
    item.PatientComments = "y" * 2000
    ds = Dataset()
    ds.ReferencedStudySequence = [item]  # pydicom writes it with a defined length
    parsed = pydicom.dcmread(_write(tmp_path, ds), defer_size=DEFER_SIZE)

    assert deferred_sequence_tags(parsed) == (0x00081110,)
    with pytest.raises(UnconvertibleElementError) as raised:
        dataset_to_dicom_json(parsed, bulkdata_uri_prefix=PREFIX)
    assert raised.value.path == "00081110"

    parsed[0x00081110]  # the caller's step: read that one element
    result = dataset_to_dicom_json(parsed, bulkdata_uri_prefix=PREFIX)
    assert deferred_sequence_tags(parsed) == ()
    assert result.attributes["00081110"]["Value"][0]["00104000"] == {
        "vr": "LT",
        "Value": ["y" * 2000],
    }


def test_file_meta_and_group_length_are_omitted_and_keys_sorted(tmp_path: Path) -> None:
    ds = Dataset()
    ds.add_new(0x00100000, "UL", 8)
    ds.PatientID = "P1"
    ds.Modality = "OT"
    attributes = _convert(_write(tmp_path, ds)).attributes

    assert list(attributes) == ["00080016", "00080018", "00080060", "00100020"]


def test_bulk_value_without_file_offset_is_refused() -> None:
    ds = Dataset()
    ds.add_new(0x00420011, "OB", b"z" * 2000)
    with pytest.raises(UnconvertibleElementError):
        dataset_to_dicom_json(ds, bulkdata_uri_prefix=PREFIX)


def test_encode_is_compact_utf8() -> None:
    obj = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jörg"}]}}
    assert encode_dicom_json(obj) == (
        '{"00100010":{"vr":"PN","Value":[{"Alphabetic":"Müller^Jörg"}]}}'.encode()
    )
