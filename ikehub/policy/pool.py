"""
Virtual IP address pools: the addresses the hub hands out in CFG_REPLY (RFC 7296 section 3.15).

A pool is a contiguous range kept as integers: nothing is allocated per address until it is
handed out, so a /16 costs the same as a /29 until it fills.

Leases. When a peer gives an address back, the address stays its lease for C{leaseTime}
seconds: the same identity gets it again if it returns before then. Handing out is O(1), in
this order (the rule of strongSwan's in-memory pools, with leases that expire):

 1. the identity's own lease, the most recently released one if it has several;
 2. the next address never handed out;
 3. the address released longest ago. Expired leases are the oldest releases, so they go
    first; after them come the leases still running, the closest to expiring first;
 4. None: every address is lent to a connected peer (the responder answers
    INTERNAL_ADDRESS_FAILURE).

So a running lease is a preference, not a reservation: a peer is never refused while an address
sits unused for someone who may not come back (strongSwan's attr-sql pools refuse instead), and
a returning peer loses its old address only when the pool is full. C{leaseTime = 0} means no
leases at all: a released address is just free. A pool without a clock never sees time pass, so
its leases never expire (the number of identities remembered is bounded either way).

Leases survive a restart through an optional store (L{ikehub.policy.leases.LeaseStore}): the pool
reads the leases of its own addresses when it is built and reports each change, which the store
writes later in batches. Addresses that were lent when the hub stopped are treated as released
at start, so their peers get them back when they reconnect.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from zope.interface import implementer

from ikehub.interfaces import IAddressPool

__all__ = ["Address", "AddressPool"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: How many running leases (released addresses with an owner) a pool remembers at most.
DEFAULT_REMEMBER = 65536
#: Seconds an identity keeps its address after giving it back.
DEFAULT_LEASE_TIME = 3600.0


class _Timeless:
    """The clock of a pool given none: time never passes, so leases never expire."""

    @staticmethod
    def seconds() -> float:
        return 0.0


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
    A range of addresses C{first}..C{last} (inclusive) handed out one per IKE SA, with leases
    that stick to identities (see the module's docstring for the order of reuse).

    Not thread-safe; like everything in the hub it lives on the reactor thread.
    """

    __slots__ = (
        "_base",
        "_claimQueue",
        "_claimant",
        "_claims",
        "_clock",
        "_inUse",
        "_nextUnused",
        "_notFresh",
        "_releaseCount",
        "_released",
        "_rememberLimit",
        "_size",
        "_store",
        "dns",
        "first",
        "last",
        "leaseTime",
        "name",
    )

    def __init__(
        self,
        name: str,
        first: Address,
        last: Address,
        dns: Iterable[Address | str] = (),
        rememberLimit: int = DEFAULT_REMEMBER,
        leaseTime: float = DEFAULT_LEASE_TIME,
        clock: Any = None,
        store: Any = None,
    ) -> None:
        """
        @param dns: DNS servers to announce with addresses from this pool.
        @param rememberLimit: how many running leases to remember at most; beyond it the
            oldest are forgotten first.
        @param leaseTime: seconds a released address stays its last holder's lease; 0 for
            none.
        @param clock: an C{IReactorTime} for lease times; without one, leases never expire.
        @param store: a L{ikehub.policy.leases.LeaseStore} to read leases from now and to
            report changes to, or None to keep them in memory only.
        @raise ValueError: if the bounds are not addresses of one family in order, or a number
            is out of range.
        """
        first = _asAddress(first, "first address")
        last = _asAddress(last, "last address")
        if first.version != last.version:
            raise ValueError(f"pool {name!r}: {first} and {last} are not of the same IP version")
        if int(last) < int(first):
            raise ValueError(f"pool {name!r}: the range {first}-{last} ends before it starts")
        if rememberLimit < 0:
            raise ValueError("rememberLimit must not be negative")
        if not 0 <= leaseTime < float("inf"):
            raise ValueError(f"pool {name!r}: the lease time must be 0 or more seconds")
        self.name = name
        self.first = first
        self.last = last
        self.dns: tuple[Address, ...] = tuple(_asAddress(a, "DNS server") for a in dns)
        self.leaseTime = float(leaseTime)
        self._clock = clock if clock is not None else _Timeless()
        self._store = store
        self._rememberLimit = rememberLimit
        self._base = int(first)
        self._size = int(last) - int(first) + 1
        self._nextUnused = 0
        # Offsets at or above _nextUnused that are not fresh: lent before a restart.
        self._notFresh: set[int] = set()
        # Offset -> identity, for every address lent now.
        self._inUse: dict[int, str] = {}
        # Offsets lent before and released since -> the number of that release, oldest first.
        self._released: OrderedDict[int, int] = OrderedDict()
        self._releaseCount = 0
        # Running leases: released offset -> its holder, and identity -> its released offsets
        # (most recent last), and (released at, offset, release number) in order of release,
        # for expiry. An entry of _claimQueue whose release number is no longer the one in
        # _released is stale (the address was lent again since) and is skipped.
        self._claimant: dict[int, str] = {}
        self._claims: dict[str, list[int]] = {}
        self._claimQueue: deque[tuple[float, int, int]] = deque()
        if store is not None:
            self._restore(store.rows())

    @classmethod
    def fromString(
        cls, name: str, text: str, dns: Iterable[Address | str] = (), **options: Any
    ) -> AddressPool:
        """
        Build a pool from C{198.51.100.10-198.51.100.200}, C{198.51.100.0/24} or a single
        address. C{options} are the constructor's keyword arguments (C{leaseTime}, C{clock},
        C{store}, C{rememberLimit}).

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
            return cls(name, first, last, dns, **options)
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
            return cls(name, first, last, dns, **options)
        address = _asAddress(text, f"pool {name!r}: {text!r} is neither a range nor a network;")
        return cls(name, address, address, dns, **options)

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
        """How many addresses are lent now."""
        return len(self._inUse)

    @property
    def leases(self) -> int:
        """How many released addresses are still leased to their last holder (a bound)."""
        return len(self._claimant)

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
        Lend an address to C{identity} (the peer's identity as text): its own lease, else a
        fresh address, else the address released longest ago; None when every address is lent.
        """
        queue = self._claimQueue
        if queue and queue[0][0] + self.leaseTime <= self._clock.seconds():
            self._expire(self._clock.seconds())
        offsets = self._claims.get(identity)
        if offsets:
            offset: int | None = offsets.pop()
            if not offsets:
                del self._claims[identity]
            del self._claimant[offset]
            del self._released[offset]
        else:
            offset = self._fresh()
            if offset is None:
                if not self._released:
                    return None
                offset, _ = self._released.popitem(last=False)
                holder = self._claimant.pop(offset, None)
                if holder is not None:
                    self._unclaim(holder, offset)
        self._inUse[offset] = identity
        address = ipaddress.ip_address(self._base + offset)
        if self._store is not None:
            self._store.record(address, identity, None)
        return address

    def release(self, address: Address | str) -> bool:
        """
        Take back a lent address; it stays the holder's lease for C{leaseTime} seconds.
        Returns False (and changes nothing) if the address is not in the pool or not lent, so a
        duplicate release cannot lend one address to two peers.
        """
        offset = self._offset(address)
        if offset is None:
            return False
        identity = self._inUse.pop(offset, None)
        if identity is None:
            return False
        store = self._store
        if store is not None and isinstance(address, str):
            address = ipaddress.ip_address(self._base + offset)
        now = self._clock.seconds()
        self._releaseCount = serial = self._releaseCount + 1
        self._released[offset] = serial
        if self.leaseTime > 0 and self._rememberLimit > 0:
            self._claimant[offset] = identity
            claims = self._claims.get(identity)
            if claims is None:
                self._claims[identity] = [offset]
            else:
                claims.append(offset)
            queue = self._claimQueue
            queue.append((now, offset, serial))
            if len(self._claimant) > self._rememberLimit:
                self._forgetOldestLease()
            if len(queue) > 2 * len(self._claimant) + 64:
                self._compact()
            if store is not None:
                store.record(address, identity, now)
        elif store is not None:
            store.forget(address)
        return True

    def leaseOf(self, identity: str) -> Address | None:
        """
        The address C{identity} would get back now: its most recent running lease, or None.
        For diagnostics and tests; the IKE machine needs only L{acquire}.
        """
        if self._claimQueue:
            self._expire(self._clock.seconds())
        offsets = self._claims.get(identity)
        return ipaddress.ip_address(self._base + offsets[-1]) if offsets else None

    def isInUse(self, address: Address | str) -> bool:
        """Whether C{address} is lent now."""
        offset = self._offset(address)
        return offset is not None and offset in self._inUse

    # -- leases ------------------------------------------------------------------------------

    def _address(self, offset: int) -> Address:
        return ipaddress.ip_address(self._base + offset)

    def _fresh(self) -> int | None:
        """The next address never lent, or None."""
        offset = self._nextUnused
        notFresh = self._notFresh
        while offset < self._size:
            if notFresh and offset in notFresh:
                notFresh.discard(offset)
                offset += 1
                continue
            self._nextUnused = offset + 1
            return offset
        self._nextUnused = offset
        return None

    def _unclaim(self, holder: str, offset: int) -> None:
        offsets = self._claims[holder]
        offsets.remove(offset)
        if not offsets:
            del self._claims[holder]

    def _dropLease(self, offset: int, serial: int) -> bool:
        """End the lease of C{offset}'s release number C{serial}, unless it is not current."""
        if self._released.get(offset) != serial:
            return False
        holder = self._claimant.pop(offset, None)
        if holder is None:
            return False
        self._unclaim(holder, offset)
        if self._store is not None:
            self._store.forget(self._address(offset))
        return True

    def _expire(self, now: float) -> None:
        """End every lease that has run its time; the addresses stay free for anyone."""
        queue = self._claimQueue
        leaseTime = self.leaseTime
        while queue and queue[0][0] + leaseTime <= now:
            _, offset, serial = queue.popleft()
            self._dropLease(offset, serial)

    def _forgetOldestLease(self) -> None:
        queue = self._claimQueue
        while queue:
            _, offset, serial = queue.popleft()
            if self._dropLease(offset, serial):
                return

    def _compact(self) -> None:
        """Drop stale entries from the expiry queue (addresses their holders took back)."""
        released = self._released
        claimant = self._claimant
        self._claimQueue = deque(
            entry
            for entry in self._claimQueue
            if entry[1] in claimant and released.get(entry[1]) == entry[2]
        )

    def _restore(self, rows: Iterable[tuple[str, str, float | None]]) -> None:
        """
        Take over the stored leases of this pool's addresses. Addresses outside the pool (it
        was changed) are ignored; expired leases are deleted; addresses that were lent when the
        hub stopped count as released now.
        """
        store = self._store
        now = self._clock.seconds()
        kept = []
        for text, identity, releasedAt in rows:
            offset = self._offset(text)
            if offset is None:
                continue
            if releasedAt is None:
                releasedAt = now
                store.record(self._address(offset), identity, now)
            if self.leaseTime <= 0 or releasedAt + self.leaseTime <= now:
                store.forget(self._address(offset))
                continue
            kept.append((releasedAt, offset, identity))
        kept.sort()
        if self._rememberLimit < len(kept):
            cut = len(kept) - self._rememberLimit
            for _, offset, _ in kept[:cut]:
                store.forget(self._address(offset))
            kept = kept[cut:]
        for releasedAt, offset, identity in kept:
            self._releaseCount = serial = self._releaseCount + 1
            self._released[offset] = serial
            self._claimant[offset] = identity
            self._claims.setdefault(identity, []).append(offset)
            self._claimQueue.append((releasedAt, offset, serial))
            self._notFresh.add(offset)
