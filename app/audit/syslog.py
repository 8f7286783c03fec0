"""The syslog sink: each event as a DICOM audit message in an RFC 5424 syslog message, over UDP or TCP.

Why these framings: an ATNA audit record repository, or a local syslog relay (rsyslog, syslog-ng) that
forwards over TLS, takes RFC 5424 messages one per UDP datagram (RFC 5426) or, over TCP, each preceded by
its length in octets (RFC 6587 octet counting, the framing RFC 5425 uses over TLS). Delivery is at least
once: after a failure the whole batch is sent again.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from urllib.parse import urlparse

from app.audit.atna import audit_message
from app.audit.batching import MAX_BACKLOG, BatchingSink
from app.audit.events import AuditEvent

log = logging.getLogger(__name__)

AUTHPRIV, NOTICE = 10, 5  # facility "security/authorization messages", severity "notice"
PRIORITY = AUTHPRIV * 8 + NOTICE
MSGID = "IHE+RFC-3881"  # what ATNA repositories expect for DICOM audit messages
BOM = b"\xef\xbb\xbf"  # RFC 5424 6.4: a UTF-8 message body starts with the byte order mark
_TIMEOUT_SECONDS = 10.0


def syslog_message(
    body: bytes, *, hostname: str, app_name: str = "fovea", when: datetime | None = None
) -> bytes:
    """One RFC 5424 message: header, no structured data, the UTF-8 body."""
    timestamp = (when or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    header = f"<{PRIORITY}>1 {timestamp} {hostname} {app_name} {os.getpid()} {MSGID} -"
    return header.encode("ascii", "replace") + b" " + BOM + body


def parse_syslog_url(url: str) -> tuple[str, str, int]:
    """`udp://host:port` or `tcp://host:port` as (transport, host, port); ValueError otherwise."""
    parsed = urlparse(url)
    if parsed.scheme not in ("udp", "tcp") or not parsed.hostname or parsed.port is None:
        raise ValueError(f"syslog destination {url!r} is not udp://host:port or tcp://host:port")
    return parsed.scheme, parsed.hostname, parsed.port


class SyslogSink(BatchingSink):
    """Sends each event as a DICOM audit message to a syslog receiver."""

    def __init__(self, url: str, *, source_id: str, max_backlog: int = MAX_BACKLOG) -> None:
        self._transport, self._host, self._port = parse_syslog_url(url)
        self._source_id = source_id
        self._hostname = socket.gethostname()
        self._socket: socket.socket | None = None
        self.description = f"syslog receiver {url}"
        super().__init__(max_backlog=max_backlog)

    def write_batch(self, batch: list[AuditEvent]) -> bool:
        try:
            for event in batch:
                body = audit_message(event, source_id=self._source_id, server_address=self._hostname)
                self._send(syslog_message(body, hostname=self._hostname))
        except OSError as exc:
            log.warning("audit messages not sent yet to the %s: %s", self.description, exc)
            self.release()
            return False
        return True

    def _send(self, message: bytes) -> None:
        if self._socket is None:
            if self._transport == "udp":
                family, kind, protocol, _name, address = socket.getaddrinfo(
                    self._host, self._port, type=socket.SOCK_DGRAM
                )[0]
                self._socket = socket.socket(family, kind, protocol)
                self._socket.connect(address)
            else:
                self._socket = socket.create_connection((self._host, self._port), timeout=_TIMEOUT_SECONDS)
        if self._transport == "udp":
            self._socket.send(message)
        else:
            self._socket.sendall(f"{len(message)} ".encode() + message)

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
