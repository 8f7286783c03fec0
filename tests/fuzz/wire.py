"""What an HTTP client can send at all: header values outside this never reach the server."""

from __future__ import annotations

import re

# RFC 9110 field values as h11 checks them before sending: visible bytes and obs-text, inner spaces/tabs.
SENDABLE_HEADER = re.compile(rb"[\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?|")


def sendable(value: bytes) -> bool:
    return SENDABLE_HEADER.fullmatch(value) is not None
