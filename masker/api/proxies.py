"""Which client a request came from when it passed through our own reverse proxy.

Behind nginx (deploy/nginx) every request arrives from the proxy's address; the
failure limiter and the feed caps count per client address, so without this every
agent would share one count.  Only a peer named in `[api] trusted_proxies` may say
who the client is (X-Forwarded-For); the client is the right-most address in that
header that is not itself a trusted proxy.  Anything unparsable counts as the peer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks; ValueError on anything else."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies if net.version == ip.version)


def client_address(peer: str, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client's address: `peer` itself unless it is a trusted proxy."""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a forged or broken header: count the proxy, not a made-up name
        if not _trusted(hop, proxies):
            return hop
    return peer
