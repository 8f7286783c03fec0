"""Audit events as DICOM audit messages (PS3.15 Annex A.5, the format IHE ATNA repositories take).

Why a table: which DICOM event, action code and requestor role each Fovea action becomes is a
standards fact, kept in one place (docs/deployment.md lists it too). Codes are from the DCM coding
scheme (PS3.16): 110104 DICOM Instances Transferred, 110112 Query, 110105 DICOM Study Deleted,
110101 Audit Log Used, 110103 DICOM Instances Accessed (action U: a rejection note hid instances),
110106 Export; 110152/110153 the Destination/Source Role IDs; 110180 Study Instance UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree

from app.audit.actions import Action
from app.audit.events import AuditEvent


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    meaning: str
    scheme: str = "DCM"


@dataclass(frozen=True, slots=True)
class AuditMessageKind:
    event_id: Code
    action_code: str  # EventActionCode: C create, R read, U update, D delete, E execute
    requestor_role: Code | None  # RoleIDCode of the client, where the event defines one


INSTANCES_TRANSFERRED = Code("110104", "DICOM Instances Transferred")
SOURCE_ROLE = Code("110153", "Source Role ID")
DESTINATION_ROLE = Code("110152", "Destination Role ID")
STUDY_INSTANCE_UID = Code("110180", "Study Instance UID")
_SENT_TO_CLIENT = AuditMessageKind(INSTANCES_TRANSFERRED, "R", DESTINATION_ROLE)

MESSAGE_KINDS: dict[Action, AuditMessageKind] = {
    Action.STORE: AuditMessageKind(INSTANCES_TRANSFERRED, "C", SOURCE_ROLE),
    Action.SEARCH: AuditMessageKind(Code("110112", "Query"), "E", None),
    Action.READ_INSTANCES: _SENT_TO_CLIENT,
    Action.READ_METADATA: _SENT_TO_CLIENT,
    Action.READ_FRAMES: _SENT_TO_CLIENT,
    Action.READ_BULKDATA: _SENT_TO_CLIENT,
    Action.RENDER: _SENT_TO_CLIENT,
    Action.DELETE: AuditMessageKind(Code("110105", "DICOM Study Deleted"), "D", None),
    Action.REJECT: AuditMessageKind(Code("110103", "DICOM Instances Accessed"), "U", SOURCE_ROLE),
    Action.READ_AUDIT: AuditMessageKind(Code("110101", "Audit Log Used"), "R", None),
    Action.EXPORT: AuditMessageKind(Code("110106", "Export"), "R", SOURCE_ROLE),
    Action.CONFIGURE: AuditMessageKind(Code("110131", "Software Configuration"), "U", None),
}

MACHINE_NAME, IP_ADDRESS = "1", "2"  # NetworkAccessPointTypeCode
SYSTEM_OBJECT, REPORT_ROLE = "2", "3"  # ParticipantObjectTypeCode, ParticipantObjectTypeCodeRole


def outcome_indicator(status: int) -> str:
    """EventOutcomeIndicator: 0 success, 4 minor failure (the client's error), 8 serious failure."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _coded(parent: ElementTree.Element, tag: str, code: Code) -> None:
    ElementTree.SubElement(
        parent, tag, {"csd-code": code.code, "codeSystemName": code.scheme, "originalText": code.meaning}
    )


def audit_message(event: AuditEvent, *, source_id: str, server_address: str) -> bytes:
    """The AuditMessage XML of `event` (UTF-8), as recorded by the server `source_id`."""
    kind = MESSAGE_KINDS[event.action]
    root = ElementTree.Element("AuditMessage")
    identification = ElementTree.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": kind.action_code,
            "EventDateTime": event.time.isoformat(),
            "EventOutcomeIndicator": outcome_indicator(event.status),
        },
    )
    _coded(identification, "EventID", kind.event_id)
    requestor = {"UserID": event.principal, "UserIsRequestor": "true"}
    if event.username:
        requestor["UserName"] = event.username
    if event.client:
        requestor |= {"NetworkAccessPointID": event.client, "NetworkAccessPointTypeCode": IP_ADDRESS}
    client = ElementTree.SubElement(root, "ActiveParticipant", requestor)
    if kind.requestor_role is not None:
        _coded(client, "RoleIDCode", kind.requestor_role)
    ElementTree.SubElement(
        root,
        "ActiveParticipant",
        {
            "UserID": source_id,
            "UserIsRequestor": "false",
            "NetworkAccessPointID": server_address,
            "NetworkAccessPointTypeCode": MACHINE_NAME,
        },
    )
    ElementTree.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id})
    for study in event.studies:
        study_object = ElementTree.SubElement(
            root,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": study,
                "ParticipantObjectTypeCode": SYSTEM_OBJECT,
                "ParticipantObjectTypeCodeRole": REPORT_ROLE,
            },
        )
        _coded(study_object, "ParticipantObjectIDTypeCode", STUDY_INSTANCE_UID)
    message: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)
    return message
