"""The STOW-RS Store Instances Response module (PS3.18 Annex I) and its HTTP status (Table 10.5.3-1).

Why data first: per-instance outcomes are plain values; the status code follows from them by the table,
in one function, and the body is rendered as DICOM JSON (PS3.18 F) or the Native DICOM Model XML
(PS3.19 A.1) from the same dataset.

Codes beyond PS3.18 Table I.2-1/I.2-2 (extra codes are allowed; all are listed in docs/conformance.md):
0x0111 (PS3.7 "Duplicate SOP Instance"), 0xC409 (Study Instance UID differs from the URL's, as dcm4chee
uses it), 0xC410 (patient identity contradicts the index's), warnings 0xB100 (replaced a stored instance),
0xB101 (duplicate discarded, stored one kept), 0xB110 (stored under the patient the index already had)
and 0xB111 (study filed under the instance's patient now), 0xA771 (an IHE IOCM rejection note rejected
the SOP Instance UID; the same number dcm4chee uses for a subsequent occurrence of a rejected object).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any
from xml.etree import ElementTree

from pydicom.datadict import keyword_for_tag

from app.dicomweb.scope import Scope
from app.dicomweb.uids import is_valid_uid


class FailureReason(IntEnum):
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
    STUDY_INSTANCE_UID_MISMATCH = 0xC409
    PATIENT_IDENTITY_CONFLICT = 0xC410
    REJECTED_INSTANCE = 0xA771  # a rejection note rejected it; re-stores refused (as dcm4chee numbers it)


class WarningReason(IntEnum):
    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007
    REPLACED_STORED_INSTANCE = 0xB100
    DUPLICATE_DISCARDED = 0xB101
    PATIENT_IDENTITY_KEPT = 0xB110
    PATIENT_IDENTITY_UPDATED = 0xB111


class FailureKind(StrEnum):
    """Which row of Table 10.5.3-1 a failure counts towards when nothing was stored."""

    BAD_REQUEST = "bad-request"  # 400: the payload could not be understood
    CONFLICT = "conflict"  # 409: well formed, but conflicts with the request or the archive
    TOO_LARGE = "too-large"  # 413
    UNAVAILABLE = "unavailable"  # 503: our storage failed; the client may retry


FAILURE_KIND = {
    FailureReason.CANNOT_UNDERSTAND: FailureKind.BAD_REQUEST,
    FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS: FailureKind.BAD_REQUEST,
    FailureReason.OUT_OF_RESOURCES: FailureKind.TOO_LARGE,
    FailureReason.PROCESSING_FAILURE: FailureKind.UNAVAILABLE,
}
_STATUS_FOR_KIND = {
    FailureKind.BAD_REQUEST: 400,
    FailureKind.CONFLICT: 409,
    FailureKind.TOO_LARGE: 413,
    FailureKind.UNAVAILABLE: 503,
}


@dataclass(frozen=True, slots=True)
class InstanceOutcome:
    """What happened to one part of a STOW-RS request."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    failure: FailureReason | None = None
    warning: WarningReason | None = None
    comment: str = ""

    @property
    def stored(self) -> bool:
        return self.failure is None


def store_status(outcomes: Sequence[InstanceOutcome]) -> int:
    """The HTTP status of a STOW-RS response (PS3.18 Table 10.5.3-1)."""
    stored = [o for o in outcomes if o.stored]
    if stored:
        all_clean = len(stored) == len(outcomes) and not any(o.warning for o in stored)
        return 200 if all_clean else 202
    kinds = {FAILURE_KIND.get(o.failure, FailureKind.CONFLICT) for o in outcomes if o.failure}
    if len(kinds) == 1:
        return _STATUS_FOR_KIND[kinds.pop()]
    return 409  # mixed reasons


def _attribute(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _uid_attribute(value: str) -> dict[str, Any]:
    """A UI attribute echoing a UID read from a refused instance: without a value when it is not a UID.

    Why: a damaged file can carry any bytes where its UIDs should be; the response must stay valid DICOM.
    """
    return _attribute("UI", value if is_valid_uid(value) else "")


def store_response_dataset(
    outcomes: Sequence[InstanceOutcome],
    *,
    base_url: str,
    study_instance_uid: str | None = None,
) -> dict[str, Any]:
    """The Store Instances Response module as a DICOM JSON object (PS3.18 Annex I).

    Retrieve URL (0008,1190) is the study's URL when the stored instances belong to one study (or the
    request named it), and empty otherwise (Type 2).
    """
    studies = {o.study_instance_uid for o in outcomes if o.stored}
    study = study_instance_uid or (next(iter(studies)) if len(studies) == 1 else None)
    study_url = Scope(study).url(base_url) if study else ""
    dataset: dict[str, Any] = {"00081190": _attribute("UR", study_url)}

    failed = []
    for outcome in outcomes:
        if outcome.failure is None:
            continue
        item = {
            "00081150": _uid_attribute(outcome.sop_class_uid),
            "00081155": _uid_attribute(outcome.sop_instance_uid),
            "00081197": _attribute("US", int(outcome.failure)),
        }
        if outcome.comment:
            item = {"00000902": _attribute("LO", outcome.comment[:64]), **item}
        failed.append(item)
    if failed:
        dataset["00081198"] = {"vr": "SQ", "Value": failed}

    referenced = []
    for outcome in outcomes:
        if outcome.failure is not None:
            continue
        item = {
            "00081150": _attribute("UI", outcome.sop_class_uid),
            "00081155": _attribute("UI", outcome.sop_instance_uid),
            "00081190": _attribute(
                "UR",
                Scope(
                    outcome.study_instance_uid,
                    outcome.series_instance_uid,
                    outcome.sop_instance_uid,
                ).url(base_url),
            ),
        }
        if outcome.warning is not None:
            item["00081196"] = _attribute("US", int(outcome.warning))
        referenced.append(item)
    if referenced:
        dataset["00081199"] = {"vr": "SQ", "Value": referenced}
    return dataset


NATIVE_DICOM_NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"


PERSON_NAME_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
PERSON_NAME_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def dicom_json_to_xml(dataset: dict[str, Any]) -> bytes:
    """Render a DICOM JSON object as a PS3.19 Native DICOM Model document (PS3.18 F.3 mapping).

    Why from JSON: metadata is stored once, as DICOM JSON; the XML form is derived from it on request.
    """
    root = ElementTree.Element("NativeDicomModel", xmlns=NATIVE_DICOM_NAMESPACE)
    _append_attributes(root, dataset)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _append_attributes(parent: ElementTree.Element, dataset: dict[str, Any]) -> None:
    for tag, attribute in dataset.items():
        vr = attribute["vr"]
        element = ElementTree.SubElement(parent, "DicomAttribute", attrib={"tag": tag, "vr": vr})
        keyword = keyword_for_tag(int(tag, 16))
        if keyword:
            element.set("keyword", keyword)
        if "BulkDataURI" in attribute:
            ElementTree.SubElement(element, "BulkData", uri=attribute["BulkDataURI"])
        if "InlineBinary" in attribute:
            ElementTree.SubElement(element, "InlineBinary").text = attribute["InlineBinary"]
        for number, value in enumerate(attribute.get("Value", []), start=1):
            if vr == "SQ":
                item = ElementTree.SubElement(element, "Item", number=str(number))
                _append_attributes(item, value)
            elif vr == "PN":
                _append_person_name(element, number, value)
            elif value is not None:  # an empty value keeps its number by being left out
                node = ElementTree.SubElement(element, "Value", number=str(number))
                node.text = str(value)


def _append_person_name(element: ElementTree.Element, number: int, value: Any) -> None:
    """One PN value: its groups, each split into name components (PS3.19 A.1.1, PS3.5 6.2)."""
    name = ElementTree.SubElement(element, "PersonName", number=str(number))
    if not isinstance(value, dict):
        return
    for group in PERSON_NAME_GROUPS:
        text = value.get(group)
        if not text:
            continue
        group_node = ElementTree.SubElement(name, group)
        for part, component in zip(PERSON_NAME_PARTS, str(text).split("^"), strict=False):
            if component:
                ElementTree.SubElement(group_node, part).text = component
