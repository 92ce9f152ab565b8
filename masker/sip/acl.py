"""Which addresses may send SIP to the masker: the trunk's and the PBX's, nobody else.

The trunk side is the only door into the call path, so anyone who can reach it
could place calls that tie up media ports and agent desktops.  Requests and
responses from an address outside `[sip] trusted_sources` (networks in CIDR
notation) are dropped before parsing and counted; the PBX's address is always
trusted.  Dropping silently, rather than answering 403, gives a scanner nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings (a bare address is a /32 or /128); ValueError names a bad one."""
    networks = []
    for spec in specs:
        try:
            networks.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {spec!r}") from None
    return tuple(networks)


def host_addresses(host: str) -> list[str]:
    """The addresses of a host given by address or name (none if the name does not resolve)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
    except OSError:
        return []


class SourceAcl:
    """Answers whether a datagram's source address is trusted.

    `networks` are CIDR strings; `always` are hosts (addresses or names, resolved
    once here) trusted whatever the networks say, such as the PBX."""

    def __init__(self, networks: Iterable[str], always: Iterable[str] = ()) -> None:
        hosts = [addr for host in always for addr in host_addresses(host)]
        self._networks = parse_networks([*networks, *hosts])

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self._networks)
