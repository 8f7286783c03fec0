"""A PS3.19 Native DICOM Model document read into the DICOM JSON model (the inverse of PS3.18 F.3).

Why: STOW-RS with XML metadata (`type="application/dicom+xml"`) then takes the same path as JSON
metadata (app/dicomweb/json_part10.py). The mapping mirrors `responses.dicom_json_to_xml`: `Value`
elements by `number` (a missing number leaves an empty value), `PersonName` groups split into name
components, `Item` for sequence items, `BulkData uri=` and `InlineBinary`. The namespace is optional.

The parser refuses a document type declaration: the Native DICOM Model has none, and refusing it rules
out entity expansion ("billion laughs") and external entities whatever the expat version.
"""

from __future__ import annotations

import math
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

from app.dicomweb.responses import PERSON_NAME_GROUPS, PERSON_NAME_PARTS

_INTEGER_VRS = frozenset({"SL", "SS", "UL", "US", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_NUMBER_STRING_VRS = frozenset({"IS", "DS"})


class NativeXmlError(ValueError):
    """The document is not well-formed XML, has a DTD, or is not a Native DICOM Model."""


def native_xml_to_dicom_json(content: bytes) -> dict[str, Any]:
    """The data set of one NativeDicomModel document, in the DICOM JSON model."""
    root = _parse(content)
    if _local(root.tag) != "NativeDicomModel":
        raise NativeXmlError(f"the root element is {_local(root.tag)!r}, not NativeDicomModel (PS3.19 A.1)")
    return _data_set(root)


def _parse(content: bytes) -> ElementTree.Element:
    """Parse with expat directly: ElementTree's C parser offers no hook to refuse a DTD."""
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")  # "{uri}name" tags, as ElementTree makes
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(content, True)  # noqa: FBT003 (isfinal is positional-only)
        return builder.close()
    except expat.ExpatError as exc:
        raise NativeXmlError(f"not well-formed XML: {exc}") from exc
    except AssertionError as exc:  # TreeBuilder: no element at all
        raise NativeXmlError("not an XML document") from exc


def _refuse_doctype(*_: object) -> None:
    raise NativeXmlError("a document type declaration is not allowed in a Native DICOM Model")


def _data_set(parent: ElementTree.Element) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for element in parent:
        if _local(element.tag) != "DicomAttribute":
            continue
        tag, vr = element.get("tag", ""), element.get("vr", "")
        attributes[tag.upper()] = _attribute(element, vr)
    return dict(sorted(attributes.items()))


def _attribute(element: ElementTree.Element, vr: str) -> dict[str, Any]:
    attribute: dict[str, Any] = {"vr": vr}
    numbered: dict[int, Any] = {}
    for position, child in enumerate(element, start=1):
        name = _local(child.tag)
        if name == "BulkData":
            attribute["BulkDataURI"] = child.get("uri", child.get("uuid", ""))
        elif name == "InlineBinary":
            attribute["InlineBinary"] = (child.text or "").strip()
        elif name in ("Value", "PersonName", "Item"):
            number = _number(child.get("number"), position)
            if name == "Item":
                numbered[number] = _data_set(child)
            elif name == "PersonName":
                numbered[number] = _person_name(child)
            else:
                numbered[number] = _value(child.text, vr)
    if numbered:
        attribute["Value"] = [numbered.get(number) for number in range(1, max(numbered) + 1)]
    return attribute


def _number(text: str | None, position: int) -> int:
    if text is None:
        return position
    if not text.isdigit() or not 1 <= int(text) <= 2**16:
        raise NativeXmlError(f"number={text!r} is not a value number (PS3.19 A.1)")
    return int(text)


def _value(text: str | None, vr: str) -> Any:
    if text is None:
        return None
    try:
        if vr in _INTEGER_VRS:
            return int(text)
        if vr in _FLOAT_VRS:
            return float(text)
    except ValueError as exc:
        raise NativeXmlError(f"{text!r} is not a {vr} value") from exc
    if vr in _NUMBER_STRING_VRS:
        return _number_string(text)
    return text


def _number_string(text: str) -> int | float | str:
    """An IS or DS value as a number where it is one, else its text (as the JSON model allows)."""
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        return stripped
    return number if math.isfinite(number) else stripped


def _person_name(element: ElementTree.Element) -> dict[str, str] | None:
    name: dict[str, str] = {}
    for group in element:
        if _local(group.tag) not in PERSON_NAME_GROUPS:
            continue
        components = {_local(part.tag): part.text or "" for part in group}
        text = "^".join(components.get(part, "") for part in PERSON_NAME_PARTS).rstrip("^")
        if text:
            name[_local(group.tag)] = text
    return name or None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
