"""Reading ``X-Forwarded-For`` as far as trusted proxies vouch for it.

Each proxy appends the address it received the request from, so the chain
reads, left to right, from the client towards this server; only the entries
added by proxies we trust are facts, anything left of them the client may
have written. `forwarded_client` walks the chain from the right, past the
trusted proxies, and stops at the first address that is not one: the client.
If every entry is a trusted proxy, the leftmost is the client. An entry that
is not an IP address ends the walk: the hop that wrote it is the client as
far as we can tell.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import attrs

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> Address | None:
    """An IP address as proxies write it (``1.2.3.4``, ``::1``, ``[::1]``,
    with an optional ``:port``), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address


@attrs.frozen
class TrustedProxies:
    """The proxies allowed to set the client's address: networks in CIDR
    notation or single addresses (``"10.0.0.0/8"``, ``"127.0.0.1"``)."""

    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, values: Iterable[str]) -> TrustedProxies:
        """ValueError naming the first entry that is not a network or address."""
        return cls(tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values))

    def __contains__(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def trusts(self, peer: str) -> bool:
        """Whether the directly connected `peer` (an address string) is trusted."""
        address = parse_address(peer)
        return address is not None and address in self


def forwarded_client(chain: Sequence[str], trusted: TrustedProxies) -> str | None:
    """The client an ``X-Forwarded-For`` `chain` names, its entries in order
    (see the module docstring); None for an empty chain."""
    client: Address | None = None
    for entry in reversed(chain):
        address = parse_address(entry)
        if address is None:
            break
        client = address
        if address not in trusted:
            break
    return None if client is None else str(client)
