"""
Outbound routing: which CHILD SA carries a packet to a given inner destination.

Longest-prefix match over the peers' traffic selectors. Selectors are split into CIDR blocks and
kept in one dict per (IP version, prefix length); a lookup masks the destination once per prefix
length in use, longest first. Road warriors are /32 (or /128) entries, so the common case is one
dict lookup; no scan over SAs ever happens.
"""

import ipaddress


def _blocks(version: int, first: int, last: int):
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    for network in ipaddress.summarize_address_range(make(first), make(last)):
        yield network.prefixlen, int(network.network_address)


class RouteTable:
    __slots__ = ("_tables", "_lengths")

    def __init__(self) -> None:
        #: (version, prefix length) -> {network as int: [route targets, newest last]}
        self._tables: dict[tuple[int, int], dict[int, list]] = {}
        #: per version, the prefix lengths in use, longest first, with their masks.
        self._lengths: dict[int, list[tuple[int, int, dict]]] = {4: [], 6: []}

    def _refresh(self, version: int) -> None:
        bits = 32 if version == 4 else 128
        full = (1 << bits) - 1
        self._lengths[version] = sorted(
            (
                (length, full ^ ((1 << (bits - length)) - 1), table)
                for (v, length), table in self._tables.items()
                if v == version and table
            ),
            key=lambda entry: -entry[0],
        )

    def add(self, ranges, target) -> None:
        for version, first, last in ranges:
            for length, network in _blocks(version, first, last):
                table = self._tables.setdefault((version, length), {})
                table.setdefault(network, []).append(target)
            self._refresh(version)

    def remove(self, ranges, target) -> None:
        for version, first, last in ranges:
            for length, network in _blocks(version, first, last):
                table = self._tables.get((version, length), {})
                targets = table.get(network)
                if targets and target in targets:
                    targets.remove(target)
                    if not targets:
                        del table[network]
            self._refresh(version)

    def lookup(self, version: int, address: int):
        """
        The newest target whose selectors hold C{address}, by longest prefix; None if none does.
        """
        for _, mask, table in self._lengths[version]:
            targets = table.get(address & mask)
            if targets:
                return targets[-1]
        return None
