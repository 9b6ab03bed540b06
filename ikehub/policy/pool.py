"""
Virtual IP address pools: the addresses the hub hands out in CFG_REPLY (RFC 7296 section 3.15).

A pool is a contiguous range kept as integers: nothing is allocated per address until it is
handed out, so a /16 costs the same as a /29 until it fills. Handing out is O(1): the returning
peer's previous address if it is free, else the next address never handed out, else the address
released longest ago (which keeps recently released addresses available for their previous
owners, who are the most likely to come back).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable

from zope.interface import implementer

from ikehub.interfaces import IAddressPool

__all__ = ["Address", "AddressPool"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: How many identity -> last address associations a pool remembers at most.
DEFAULT_REMEMBER = 65536


def _asAddress(value: Address | str, what: str) -> Address:
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what} {value!r} is not an IPv4 or IPv6 address")


@implementer(IAddressPool)
class AddressPool:
    """
    A range of addresses C{first}..C{last} (inclusive) handed out one per IKE SA.

    Not thread-safe; like everything in the hub it lives on the reactor thread.
    """

    __slots__ = (
        "_base",
        "_inUse",
        "_nextUnused",
        "_released",
        "_rememberLimit",
        "_remembered",
        "_size",
        "dns",
        "first",
        "last",
        "name",
    )

    def __init__(
        self,
        name: str,
        first: Address,
        last: Address,
        dns: Iterable[Address | str] = (),
        rememberLimit: int = DEFAULT_REMEMBER,
    ) -> None:
        """
        @param dns: DNS servers to announce with addresses from this pool.
        @param rememberLimit: how many identities' last addresses to remember; the least
            recently seen are forgotten first.
        @raise ValueError: if the bounds are not addresses of one family in order.
        """
        first = _asAddress(first, "first address")
        last = _asAddress(last, "last address")
        if first.version != last.version:
            raise ValueError(f"pool {name!r}: {first} and {last} are not of the same IP version")
        if int(last) < int(first):
            raise ValueError(f"pool {name!r}: the range {first}-{last} ends before it starts")
        if rememberLimit < 0:
            raise ValueError("rememberLimit must not be negative")
        self.name = name
        self.first = first
        self.last = last
        self.dns: tuple[Address, ...] = tuple(_asAddress(a, "DNS server") for a in dns)
        self._base = int(first)
        self._size = int(last) - int(first) + 1
        self._nextUnused = 0
        self._inUse: set[int] = set()
        # Offsets handed out before and released since, oldest release first.
        self._released: OrderedDict[int, None] = OrderedDict()
        self._remembered: OrderedDict[str, int] = OrderedDict()
        self._rememberLimit = rememberLimit

    @classmethod
    def fromString(cls, name: str, text: str, dns: Iterable[Address | str] = ()) -> AddressPool:
        """
        Build a pool from C{198.51.100.10-198.51.100.200}, C{198.51.100.0/24} or a single
        address.

        An IPv4 network leaves out its network and broadcast addresses (except /31 and /32,
        RFC 3021); an IPv6 network leaves out its all-zero Subnet-Router anycast address
        (RFC 4291 section 2.6.1) unless it is a /127 or /128.

        @raise ValueError: with a message naming what is wrong.
        """
        if not isinstance(text, str):
            raise ValueError(  # noqa: TRY004 - bad configuration input, like any other
                f"pool {name!r}: addresses must be a string, not {type(text).__name__}"
            )
        text = text.strip()
        if "-" in text:
            low, _, high = text.partition("-")
            first = _asAddress(low, f"pool {name!r}: range start")
            last = _asAddress(high, f"pool {name!r}: range end")
            return cls(name, first, last, dns)
        if "/" in text:
            try:
                network = ipaddress.ip_network(text, strict=True)
            except ValueError as e:
                hint = ""
                try:
                    hint = f" (did you mean {ipaddress.ip_network(text, strict=False)}?)"
                except ValueError:
                    pass
                raise ValueError(f"pool {name!r}: {text!r} is not a network: {e}{hint}") from None
            first, last = network.network_address, network.broadcast_address
            if network.version == 4 and network.prefixlen <= 30:
                first, last = first + 1, last - 1
            elif network.version == 6 and network.prefixlen <= 126:
                first = first + 1
            return cls(name, first, last, dns)
        address = _asAddress(text, f"pool {name!r}: {text!r} is neither a range nor a network;")
        return cls(name, address, address, dns)

    def __repr__(self) -> str:
        return (
            f"<AddressPool {self.name!r} {self.first}-{self.last} {self.inUse}/{self.size} in use>"
        )

    @property
    def size(self) -> int:
        """How many addresses the pool holds."""
        return self._size

    @property
    def inUse(self) -> int:
        """How many addresses are handed out now."""
        return len(self._inUse)

    @property
    def version(self) -> int:
        return self.first.version

    def _offset(self, address: Address | str) -> int | None:
        try:
            address = _asAddress(address, "address")
        except ValueError:
            return None
        if address.version != self.first.version:
            return None
        offset = int(address) - self._base
        return offset if 0 <= offset < self._size else None

    def contains(self, address: Address | str) -> bool:
        """Whether C{address} lies within the pool (handed out or not)."""
        return self._offset(address) is not None

    def overlaps(self, other: AddressPool) -> bool:
        """Whether the two pools share any address."""
        if self.first.version != other.first.version:
            return False
        return int(self.first) <= int(other.last) and int(other.first) <= int(self.last)

    def acquire(self, identity: str) -> Address | None:
        """
        Hand out an address to C{identity} (the peer's identity as text); None when the pool
        is exhausted.
        """
        offset = self._remembered.get(identity)
        if offset is not None and offset in self._released:
            del self._released[offset]
        elif self._nextUnused < self._size:
            offset = self._nextUnused
            self._nextUnused += 1
        elif self._released:
            offset, _ = self._released.popitem(last=False)
        else:
            return None
        self._inUse.add(offset)
        self._remember(identity, offset)
        return ipaddress.ip_address(self._base + offset)

    def _remember(self, identity: str, offset: int) -> None:
        if self._rememberLimit == 0:
            return
        self._remembered[identity] = offset
        self._remembered.move_to_end(identity)
        if len(self._remembered) > self._rememberLimit:
            self._remembered.popitem(last=False)

    def release(self, address: Address | str) -> bool:
        """
        Return an address to the pool. Returns False (and changes nothing) if the address is
        not in the pool or not handed out, so a duplicate release cannot hand one address to
        two peers.
        """
        offset = self._offset(address)
        if offset is None or offset not in self._inUse:
            return False
        self._inUse.remove(offset)
        self._released[offset] = None
        return True

    def isInUse(self, address: Address | str) -> bool:
        """Whether C{address} is handed out now."""
        offset = self._offset(address)
        return offset is not None and offset in self._inUse
