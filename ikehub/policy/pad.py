"""
The Peer Authorization Database (RFC 4301 section 4.4.3).

An ordered table: the first entry whose identity pattern matches the peer's authenticated
identity governs what that peer may do (which authenticator, which pool, which traffic selectors).
Every lookup returns a decision that says why, so a refused login can be explained without
guesswork.
"""

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from zope.interface import implementer

from ikehub.interfaces import IAddressPool, IPADEntry, IPeerAuthorizationDatabase
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


@dataclass(frozen=True, slots=True)
class PADDecision:
    """
    Which entry governs a peer, and why. The sentence saying why is written only when read:
    it is wanted when a peer is refused, and most lookups are not.
    """

    entry: PADEntry | None
    identity: Identity

    @property
    def reason(self) -> str:
        if self.entry is None:
            return f"no PAD entry matches identity {self.identity}"
        return f"identity {self.identity} matched PAD entry {self.entry.name!r}"


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
                name=peer.name,
                identity=peer.identity,
                auth=peer.auth,
                psk=peer.psk,
                pool=pools[peer.pool] if peer.pool is not None else None,
                localTs=peer.localTs,
                remoteTs=peer.remoteTs,
            )
            for peer in peers
        )

    def lookup(self, identity: Identity, peerAddress: str) -> PADDecision:
        for entry in self.entries:
            if identity.matches(entry.identity):
                return PADDecision(entry, identity)
        return PADDecision(None, identity)
