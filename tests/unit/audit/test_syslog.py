"""DICOM audit messages (PS3.15 A.5) in RFC 5424 syslog messages, received over real UDP and TCP sockets."""

from __future__ import annotations

import re
import socket
import threading
from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest
from pydantic import ValidationError

from app.audit.actions import Action
from app.audit.atna import audit_message
from app.audit.events import AuditEvent
from app.audit.syslog import SyslogSink, parse_syslog_url
from app.settings import Settings

STUDIES = ("1.2.840.99.1", "1.2.840.99.2")
HEADER = re.compile(rb"<85>1 \S+Z \S+ fovea \d+ IHE\+RFC-3881 - \xef\xbb\xbf")


def event(action: Action = Action.READ_FRAMES, status: int = 200, username: str | None = "bob") -> AuditEvent:
    return AuditEvent(
        time=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        action=action,
        principal_kind="oidc",
        principal="b-4711",
        username=username,
        client="192.0.2.10",
        method="GET",
        route="/dicom-web/studies",
        status=status,
        bytes_in=0,
        bytes_out=10,
        studies=STUDIES,
    )


def coded(element: ElementTree.Element | None) -> tuple[str, str, str]:
    assert element is not None
    return element.attrib["csd-code"], element.attrib["codeSystemName"], element.attrib["originalText"]


def test_a_frame_read_is_a_transfer_to_the_requestor_naming_each_study() -> None:
    root = ElementTree.fromstring(audit_message(event(), source_id="pacs-1", server_address="pacs-1"))
    assert root.tag == "AuditMessage"
    identification = root.find("EventIdentification")
    assert identification is not None
    assert identification.attrib == {
        "EventActionCode": "R",
        "EventDateTime": "2026-12-03T09:30:00+00:00",
        "EventOutcomeIndicator": "0",
    }
    assert coded(identification.find("EventID")) == ("110104", "DCM", "DICOM Instances Transferred")
    requestor, server = root.findall("ActiveParticipant")
    assert requestor.attrib == {
        "UserID": "b-4711",
        "UserName": "bob",
        "UserIsRequestor": "true",
        "NetworkAccessPointID": "192.0.2.10",
        "NetworkAccessPointTypeCode": "2",
    }
    assert coded(requestor.find("RoleIDCode")) == ("110152", "DCM", "Destination Role ID")
    assert server.attrib["UserIsRequestor"] == "false"
    assert root.find("AuditSourceIdentification").attrib == {"AuditSourceID": "pacs-1"}  # type: ignore[union-attr]
    objects = root.findall("ParticipantObjectIdentification")
    assert [o.attrib["ParticipantObjectID"] for o in objects] == list(STUDIES)
    assert {coded(o.find("ParticipantObjectIDTypeCode")) for o in objects} == {
        ("110180", "DCM", "Study Instance UID")
    }


@pytest.mark.parametrize(
    ("action", "status", "event_id", "action_code", "outcome"),
    [
        (Action.STORE, 200, "110104", "C", "0"),
        (Action.SEARCH, 400, "110112", "E", "4"),
        (Action.READ_METADATA, 503, "110104", "R", "8"),
        (Action.READ_AUDIT, 200, "110101", "R", "0"),
        (Action.EXPORT, 500, "110106", "R", "8"),
    ],
)
def test_actions_and_outcomes_map_to_dicom_codes(
    action: Action, status: int, event_id: str, action_code: str, outcome: str
) -> None:
    root = ElementTree.fromstring(audit_message(event(action, status), source_id="s", server_address="s"))
    identification = root.find("EventIdentification")
    assert identification is not None
    assert coded(identification.find("EventID"))[0] == event_id
    assert identification.attrib["EventActionCode"] == action_code
    assert identification.attrib["EventOutcomeIndicator"] == outcome


def test_messages_go_one_per_udp_datagram() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)
        sink = SyslogSink(f"udp://127.0.0.1:{receiver.getsockname()[1]}", source_id="pacs-1")
        sink.write(event())
        sink.write(event(Action.SEARCH, username=None))
        sink.close()
        first, second = receiver.recv(65536), receiver.recv(65536)
    for datagram, event_id in ((first, "110104"), (second, "110112")):
        header = HEADER.match(datagram)
        assert header is not None, datagram[:120]
        root = ElementTree.fromstring(datagram[header.end() :])
        assert coded(root.find("EventIdentification/EventID"))[0] == event_id


def test_messages_over_tcp_are_preceded_by_their_length() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = bytearray()

        def receive() -> None:
            connection, _ = server.accept()
            with connection:
                while chunk := connection.recv(65536):
                    received.extend(chunk)

        thread = threading.Thread(target=receive)
        thread.start()
        sink = SyslogSink(f"tcp://127.0.0.1:{server.getsockname()[1]}", source_id="pacs-1")
        sink.write(event())
        sink.write(event(Action.STORE))
        sink.close()
        thread.join(timeout=10)
    messages = []
    data = bytes(received)
    while data:
        length, _, rest = data.partition(b" ")
        messages.append(rest[: int(length)])
        data = rest[int(length) :]
    assert len(messages) == 2
    assert all(HEADER.match(message) for message in messages)


@pytest.mark.parametrize("url", ["udp://host", "syslog://host:514", "host:514", "tcp://:514"])
def test_a_destination_that_is_not_udp_or_tcp_host_port_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="is not udp://host:port or tcp://host:port"):
        parse_syslog_url(url)
    with pytest.raises(ValidationError, match="audit_syslog"):
        Settings(audit_syslog=url)
