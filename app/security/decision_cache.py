"""Authentication decisions remembered per token until they expire, so a repeated token costs a hash
and a dictionary lookup instead of a signature check or a database read.

Keys are SHA-256 digests of the tokens (the tokens themselves are not kept). Bounded: the oldest entry
goes first when full, so a flood of distinct tokens cannot grow memory.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from app.security.principal import Principal


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class DecisionCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, valid_until = entry
        if time.time() >= valid_until:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: bytes, principal: Principal, valid_until: float) -> None:
        self._entries[digest] = (principal, valid_until)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
