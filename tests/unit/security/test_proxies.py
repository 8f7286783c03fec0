"""Trusted proxies: X-Forwarded-* kept only from listed peers, which also name the client."""

from __future__ import annotations

from typing import Any

import pytest

from app.security.proxies import TrustedProxies, is_loopback, parse_networks

FORWARDED = [
    (b"host", b"fovea:8080"),
    (b"x-forwarded-host", b"pacs.example.org"),
    (b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"),
    (b"x-forwarded-proto", b"https"),
]


def scope_from(peer: str) -> dict[str, Any]:
    return {"headers": list(FORWARDED), "client": (peer, 40000)}


def test_untrusted_peer_loses_every_forwarded_header() -> None:
    scope = scope_from("198.51.100.7")
    TrustedProxies(parse_networks("10.0.0.0/8")).apply(scope)
    assert scope["headers"] == [(b"host", b"fovea:8080")]
    assert scope["client"] == ("198.51.100.7", 40000)


def test_trusted_peer_keeps_them_and_names_the_first_untrusted_client() -> None:
    scope = scope_from("10.0.0.1")
    TrustedProxies(parse_networks("10.0.0.0/8, ::1")).apply(scope)
    assert scope["headers"] == FORWARDED
    assert scope["client"] == ("203.0.113.9", 0)


def test_no_proxies_configured_trusts_nobody() -> None:
    scope = scope_from("127.0.0.1")
    TrustedProxies(parse_networks("")).apply(scope)
    assert scope["headers"] == [(b"host", b"fovea:8080")]


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.local' is not an address or CIDR"):
        parse_networks("10.0.0.1, proxy.local")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False)],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
