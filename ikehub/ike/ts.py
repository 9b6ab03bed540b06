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


#: An address range as the narrowing works on it: (IP version, first, last) as integers.
Range = tuple[int, int, int]


def networkRange(network: Network) -> Range:
    return (network.version, int(network.network_address), int(network.broadcast_address))


def hostRange(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Range:
    """
    The range holding just C{address}: what 'dynamic' stands for.
    """
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    value = int(address)
    return (address.version, value, value)


def rangesOf(selectors: Iterable[TrafficSelector]) -> list[Range]:
    """
    The address ranges of C{selectors} (a CHILD SA's, when its rekey must keep within them).
    """
    return [
        (_family(ts), int.from_bytes(ts.startAddress, "big"), int.from_bytes(ts.endAddress, "big"))
        for ts in selectors
    ]


def narrow(
    proposed: Sequence[TrafficSelector], allowed: Iterable[Range]
) -> tuple[TrafficSelector, ...]:
    """
    Intersect each proposed selector with each allowed range of the same family, keeping the
    proposed protocol and ports. The order follows the proposal; duplicates are dropped.
    """
    allowed = list(allowed)
    result: list[TrafficSelector] = []
    for ts in proposed:
        family = 4 if ts.tsType == TSType.TS_IPV4_ADDR_RANGE else 6
        start = int.from_bytes(ts.startAddress, "big")
        end = int.from_bytes(ts.endAddress, "big")
        for version, lo, hi in allowed:
            if version != family:
                continue
            first, last = max(start, lo), min(end, hi)
            if first > last:
                continue
            if first == start and last == end:
                narrowed = ts
            else:
                size = len(ts.startAddress)
                narrowed = ts.narrowedTo(first.to_bytes(size, "big"), last.to_bytes(size, "big"))
            if narrowed not in result:
                result.append(narrowed)
    return tuple(result)


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
