"""QIDO-RS results as DICOM JSON (PS3.18 10.6.3.3, Annex F): attribute values by tag -> JSON objects.

Why apart from the store: the index holds plain values (text as DICOM writes it, integers, lists);
their JSON form (PN component groups, IS as numbers, multi-valued text split at backslashes, sequence
items, which empty attributes to leave out) is the standard's and the same whatever the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR

_NUMBER_VRS = frozenset({"IS", "US", "UL", "SS", "SL", "UV", "SV"})
_SINGLE_VALUED_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # a backslash is text there
# Returned only when known (PS3.18 Tables 10.6.3-3 to -5): absent rather than empty.
_OMITTED_WHEN_EMPTY = frozenset({0x00080201, 0x00280008, 0x00280010, 0x00280011, 0x00280100})
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


class StoredElement(dict[str, Any]):
    """An attribute copied whole from an instance's stored DICOM JSON (relative BulkDataURIs kept)."""


@cache
def vr_of(tag: int) -> str:
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]  # "US or SS": the index holds only unsigned ones


def result_to_dicom_json(attributes: Mapping[int, Any]) -> dict[str, Any]:
    """One result's attributes as a DICOM JSON object, in tag order."""
    dataset: dict[str, Any] = {}
    for tag in sorted(attributes):
        value = attributes[tag]
        if isinstance(value, StoredElement):
            dataset[f"{tag:08X}"] = dict(value)
            continue
        if value in ("", None) and tag in _OMITTED_WHEN_EMPTY:
            continue
        dataset[f"{tag:08X}"] = _element(vr_of(tag), value)
    return dataset


def _element(vr: str, value: Any) -> dict[str, Any]:
    values = _json_values(vr, value)
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def _json_values(vr: str, value: Any) -> list[Any]:
    if value is None or value == "" or value == []:
        return []
    if vr == "SQ":
        return [result_to_dicom_json(item) for item in value]
    items: list[Any]
    if isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, str) and vr not in _SINGLE_VALUED_TEXT_VRS:
        items = value.split("\\")
    else:
        items = [value]
    if vr == "PN":
        return [_person_name(str(item)) for item in items]
    if vr in _NUMBER_VRS:
        return [_number(item) for item in items]
    return [item if item != "" else None for item in items]


def _person_name(value: str) -> dict[str, str] | None:
    groups = {key: text for key, text in zip(_PN_GROUPS, value.split("="), strict=False) if text}
    return groups or None


def _number(item: Any) -> int | str | None:
    """An integer value; text that is not one is kept as written (F.2.3 lets IS be a string)."""
    if isinstance(item, int):
        return item
    text = str(item).strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text
