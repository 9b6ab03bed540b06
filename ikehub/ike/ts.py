"""
Traffic selector narrowing (RFC 7296 section 2.9).

The responder answers with the intersection of what the initiator proposed and what policy allows.
A road warrior that proposes 0.0.0.0/0 for its own side and was lent 198.51.100.10 gets
198.51.100.10/32 back; a selector outside every allowed network is dropped.
"""

import ipaddress
from typing import Iterable, Sequence

from ikehub.wire.constants import TSType
from ikehub.wire.payloads import TrafficSelector

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _family(ts: TrafficSelector) -> int:
    return 4 if ts.tsType == TSType.TS_IPV4_ADDR_RANGE else 6


def narrow(
    proposed: Sequence[TrafficSelector], allowed: Iterable[Network]
) -> tuple[TrafficSelector, ...]:
    """
    Intersect each proposed selector with each allowed network of the same family, keeping the
    proposed protocol and ports. The order follows the proposal; duplicates are dropped.
    """
    allowedRanges = [
        (net.version, int(net.network_address), int(net.broadcast_address)) for net in allowed
    ]
    result: list[TrafficSelector] = []
    for ts in proposed:
        family = _family(ts)
        start, end = int(ts.start), int(ts.end)
        for version, lo, hi in allowedRanges:
            if version != family:
                continue
            first, last = max(start, lo), min(end, hi)
            if first > last:
                continue
            make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
            narrowed = TrafficSelector.fromRange(
                make(first), make(last), ts.ipProtocol, ts.startPort, ts.endPort
            )
            if narrowed not in result:
                result.append(narrowed)
    return tuple(result)


def hostNetwork(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Network:
    """
    The single-address network of C{address} (/32 or /128).
    """
    return ipaddress.ip_network(address)


def selectorsFromNetworks(networks: Iterable[Network]) -> tuple[TrafficSelector, ...]:
    return tuple(TrafficSelector.fromNetwork(net) for net in networks)


def covers(selectors: Sequence[TrafficSelector], narrowed: Sequence[TrafficSelector]) -> bool:
    """
    True when every selector in C{narrowed} lies inside one of C{selectors} (an initiator checks the
    responder's answer against what it proposed).
    """
    for ts in narrowed:
        if not any(
            _family(ts) == _family(outer)
            and int(outer.start) <= int(ts.start)
            and int(ts.end) <= int(outer.end)
            and outer.ipProtocol in (0, ts.ipProtocol)
            and outer.startPort <= ts.startPort
            and ts.endPort <= outer.endPort
            for outer in selectors
        ):
            return False
    return True
