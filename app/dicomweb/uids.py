"""UID syntax (PS3.5 Section 9.1): what a client-supplied UID must look like before we use it.

Why: UIDs arrive in URLs and data sets from untrusted clients; anything that is not a well-formed UID
(`../`, slashes, letters, empty components) is refused at the door.
"""

from __future__ import annotations

import re

from app.dicomweb.errors import BadRequest

# Components are digits separated by '.'; a component is "0" or has no leading zero; 64 chars max.
_UID_PATTERN = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
MAX_UID_LENGTH = 64


def is_valid_uid(value: str) -> bool:
    """True when `value` follows the PS3.5 9.1 UID encoding rules."""
    return 0 < len(value) <= MAX_UID_LENGTH and _UID_PATTERN.fullmatch(value) is not None


def require_valid_uid(value: str, name: str) -> None:
    """400 unless `value` is a well-formed UID; `name` says which one (for the message)."""
    if not is_valid_uid(value):
        raise BadRequest(f"{value[:80]!r} is not a valid {name}")
