"""
The Peer Authorization Database (RFC 4301 section 4.4.3).

An ordered table: the first entry whose identity pattern matches the peer's authenticated
identity governs what that peer may do (which authenticator, which pool, which traffic selectors).
Every lookup returns a decision that says why, so a refused login can be explained without
guesswork.
"""

import ipaddress
from dataclasses import dataclass, field, fields
from typing import Iterable, Mapping

from zope.interface import implementer

from ikehub.interfaces import IAddressPool, IPADEntry, IPeerAuthorizationDatabase
from ikehub.policy.identities import identityAdmits
from ikehub.wire.identity import Identity


@implementer(IPADEntry)
@dataclass(frozen=True)
class PADEntry:
    name: str
    identity: Identity
    auth: str
    psk: bytes | None = field(repr=False)
    pool: IAddressPool | None
    localTs: tuple
    remoteTs: tuple
    localAuth: str = "psk"
    eapIdentity: bool = False
    #: Networks the peer's IKE address must be in; empty: anywhere.
    remoteAddrs: tuple = ()
    #: The peer must be in one of these groups (RADIUS Class); empty: no requirement.
    groups: tuple = ()
    #: An EAP method for a second authentication round (RFC 4739), or None.
    secondAuth: str | None = None
    #: A second IKE SA for the same identity: "replace", "keep" or "never" (config.py).
    duplicates: str = "replace"
    #: Patterns the EAP identity must match (empty: any); the record names them on refusal.
    eapIdentities: tuple = ()
    #: Every pool to lend virtual IPs from, in order (C{pool} is the first, or None): one
    #: address per family the client asks for, from the first pool of that family with one
    #: free.
    pools: tuple = ()
    #: Split DNS (RFC 8598): domains sent as INTERNAL_DNS_DOMAIN to clients that ask.
    dnsDomains: tuple = ()
    #: C{pools} by IP version (4 or 6), in order; made once here, not per handshake.
    poolsByFamily: dict = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Entries built with one pool (pool=...) and with several (pools=...) read the same.
        if self.pools and self.pool is None:
            object.__setattr__(self, "pool", self.pools[0])
        elif self.pool is not None and not self.pools:
            object.__setattr__(self, "pools", (self.pool,))
        byFamily: dict[int, tuple] = {}
        for pool in self.pools:
            byFamily[pool.first.version] = byFamily.get(pool.first.version, ()) + (pool,)
        object.__setattr__(self, "poolsByFamily", byFamily)

    def admitsIdentity(self, identity: Identity) -> bool:
        """
        Whether this entry's identity pattern takes C{identity}, whatever its kind: an
        identity (wildcards included) or a network or range of IP-address identities.
        """
        return identityAdmits(self.identity, identity)

    def refusal(self, identity: Identity, peerAddress: str) -> str | None:
        """Why this entry does not govern C{identity} at C{peerAddress}, or None if it does."""
        if not self.admitsIdentity(identity):
            return f"identity pattern {self.identity} does not match"
        if self.remoteAddrs:
            address = ipaddress.ip_address(peerAddress)
            if not any(address in network for network in self.remoteAddrs):
                allowed = ", ".join(str(n) for n in self.remoteAddrs)
                return f"peer address {peerAddress} is outside remote_addrs ({allowed})"
        return None

    def eapIdentityRefusal(self, eapIdentity: str | None) -> str | None:
        """Why this entry refuses a peer authenticated by EAP as C{eapIdentity}, or None."""
        if not self.eapIdentities:
            return None
        try:
            received = Identity.fromString(eapIdentity or "")
        except ValueError:
            received = None
        if received is not None and any(
            identityAdmits(pattern, received) for pattern in self.eapIdentities
        ):
            return None
        allowed = ", ".join(str(p) for p in self.eapIdentities)
        return f"EAP identity {eapIdentity!r} is not among eap_identities ({allowed})"

    def groupRefusal(self, groups) -> str | None:
        """Why a peer in C{groups} may not use this entry, or None if it may."""
        if self.groups and not set(self.groups).intersection(groups):
            have = ", ".join(groups) or "none"
            return f"the peer is in none of the groups {', '.join(self.groups)} (it is in: {have})"
        return None


#: The entry's fields taken as they are from the validated [[peers]] table (all but the pools,
#: which the entry holds live rather than by name).
_COPIED = tuple(f.name for f in fields(PADEntry) if f.init and f.name not in ("pool", "pools"))


@dataclass(frozen=True, slots=True)
class PADDecision:
    """
    Which entry governs a peer, and why. The record of the entries passed over is written
    only when read: it is wanted when a peer is refused or an operator asks, and most
    lookups are neither.
    """

    entry: PADEntry | None
    identity: Identity
    peerAddress: str = ""
    entries: tuple = ()

    @property
    def rejections(self) -> list[tuple[str, str]]:
        """(entry name, why it does not govern this peer) for each entry before the match."""
        found = []
        for entry in self.entries:
            if entry is self.entry:
                break
            why = entry.refusal(self.identity, self.peerAddress)
            if why is not None:
                found.append((entry.name, why))
        return found

    @property
    def reason(self) -> str:
        passed = "; ".join(f"entry {name!r}: {why}" for name, why in self.rejections)
        where = f" from {self.peerAddress}" if self.peerAddress else ""
        if self.entry is None:
            detail = f" ({passed})" if passed else " (the PAD is empty)"
            return f"no PAD entry accepts identity {self.identity}{where}{detail}"
        skipped = f", after passing over: {passed}" if passed else ""
        return f"identity {self.identity}{where} matched PAD entry {self.entry.name!r}{skipped}"


@implementer(IPeerAuthorizationDatabase)
class PAD:
    def __init__(self, entries: Iterable[PADEntry]) -> None:
        self.entries = tuple(entries)

    @classmethod
    def fromConfig(cls, peers, pools: Mapping[str, IAddressPool]) -> "PAD":
        """
        Build the PAD from validated C{[[peers]]} entries and the pools they name.
        """
        return cls(
            PADEntry(
                **{name: getattr(peer, name) for name in _COPIED},
                pool=None,
                pools=tuple(pools[name] for name in peer.pools),
            )
            for peer in peers
        )

    def lookup(self, identity: Identity, peerAddress: str) -> PADDecision:
        """
        The first entry whose identity pattern matches and whose remote_addrs hold the peer's
        address (RFC 4301 section 4.4.3: the PAD is ordered, the first match governs).
        """
        for entry in self.entries:
            if entry.refusal(identity, peerAddress) is None:
                return PADDecision(entry, identity, peerAddress, self.entries)
        return PADDecision(None, identity, peerAddress, self.entries)

    def explain(self, identity: Identity, peerAddress: str) -> str:
        """
        A sentence saying which entry would govern C{identity} connecting from
        C{peerAddress}, and why each entry before it would not: for an operator asking why.
        """
        return self.lookup(identity, peerAddress).reason
