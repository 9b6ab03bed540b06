"""
Outbound routing: which CHILD SA carries a packet to a given inner destination.

Longest-prefix match over the peers' traffic selectors. Selectors are split into CIDR blocks and
kept in one dict per (IP version, prefix length); a lookup masks the destination once per prefix
length in use, longest first. Road warriors are /32 (or /128) entries, so the common case is one
dict lookup; no scan over SAs ever happens.
"""

_BITS = {4: 32, 6: 128}


def cidrBlocks(bits: int, first: int, last: int):
    """
    The CIDR blocks that cover the addresses C{first} to C{last} exactly, as (prefix length,
    network) pairs in ascending order: what C{ipaddress.summarize_address_range} yields, in
    integer arithmetic. Installing a CHILD SA splits its selectors this way, so it is on every
    handshake, and the common range is a single address.

    @param bits: the address width, 32 or 128.
    """
    if first == last:
        yield bits, first
        return
    while first <= last:
        # The largest block that starts at C{first} (its alignment) and fits in what is left.
        size = min(
            (first & -first).bit_length() - 1 if first else bits,
            (last - first + 1).bit_length() - 1,
        )
        yield bits - size, first
        first += 1 << size


class RouteTable:
    __slots__ = ("_tables", "_lengths")

    def __init__(self) -> None:
        #: (version, prefix length) -> {network as int: [route targets, newest last]}
        self._tables: dict[tuple[int, int], dict[int, list]] = {}
        #: per version, the prefix lengths in use, longest first, with their masks.
        self._lengths: dict[int, list[tuple[int, int, dict]]] = {4: [], 6: []}

    def _refresh(self, version: int) -> None:
        bits = _BITS[version]
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
        tables = self._tables
        for version, first, last in ranges:
            # The list of lengths in use changes only when a prefix length gains its first
            # network, which is rare once the hub has SAs: no re-sorting per handshake.
            stale = False
            for length, network in cidrBlocks(_BITS[version], first, last):
                table = tables.get((version, length))
                if table is None:
                    table = tables[version, length] = {}
                if not table:
                    stale = True
                targets = table.get(network)
                if targets is None:
                    table[network] = [target]
                else:
                    targets.append(target)
            if stale:
                self._refresh(version)

    def remove(self, ranges, target) -> None:
        for version, first, last in ranges:
            stale = False
            for length, network in cidrBlocks(_BITS[version], first, last):
                table = self._tables.get((version, length), {})
                targets = table.get(network)
                if targets and target in targets:
                    targets.remove(target)
                    if not targets:
                        del table[network]
                        stale = stale or not table
            if stale:
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
