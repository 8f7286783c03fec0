"""The decision cache: entries expire, and the oldest go first when it is full."""

from __future__ import annotations

import time

from app.security.decision_cache import DecisionCache, token_digest
from app.security.principal import anonymous


def test_an_entry_is_served_until_it_expires() -> None:
    cache, principal = DecisionCache(), anonymous()
    cache.put(token_digest("live"), principal, time.time() + 60)
    cache.put(token_digest("dead"), principal, time.time() - 1)
    assert cache.get(token_digest("live")) is principal
    assert cache.get(token_digest("dead")) is None


def test_a_full_cache_drops_its_oldest_entry() -> None:
    cache, principal = DecisionCache(max_entries=2), anonymous()
    for token in ("a", "b", "c"):
        cache.put(token_digest(token), principal, time.time() + 60)
    assert cache.get(token_digest("a")) is None
    assert cache.get(token_digest("b")) is principal
    assert cache.get(token_digest("c")) is principal
