"""Trusted reverse proxies: only they may set X-Forwarded-* (the host written into Retrieve URLs,
the scheme, the prefix, and the client address).

Why strip at the edge: every later reader (urls.py, logs, the audit trail) then sees only headers a
trusted proxy set, instead of each one having to remember to check the peer.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_HEADERS = frozenset(
    {b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-prefix", b"forwarded"}
)


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.1, 10.1.0.0/16, ::1` → networks; ValueError naming the bad entry."""
    networks = []
    for entry in (item.strip() for item in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"FOVEA_TRUSTED_PROXIES: {entry!r} is not an address or CIDR") from exc
    return tuple(networks)


@functools.lru_cache(maxsize=256)  # asked per anonymous request about the few addresses the server listens on
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TrustedProxies:
    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def apply(self, scope: Scope) -> None:
        """Drop forwarded headers from untrusted peers; from a trusted one, take the client address."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if not any(name in FORWARDED_HEADERS for name, _ in headers):
            return
        peer = (scope.get("client") or ("", 0))[0]
        if not self.trusts(peer):
            scope["headers"] = [(n, v) for n, v in headers if n not in FORWARDED_HEADERS]
            return
        client = self._forwarded_client(headers)
        if client:
            scope["client"] = (client, 0)

    def _forwarded_client(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The right-most X-Forwarded-For entry that is not itself a trusted proxy."""
        chain = [
            item.strip()
            for name, value in headers
            if name == b"x-forwarded-for"
            for item in value.decode("latin-1").split(",")
        ]
        for host in reversed(chain):
            if not self.trusts(host):
                try:
                    return str(ipaddress.ip_address(host))
                except ValueError:
                    return None
        return None
