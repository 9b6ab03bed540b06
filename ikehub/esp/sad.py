"""
The Security Association Database (RFC 4301 section 4.4.2).

Inbound ESP finds its SA by SPI with one dict lookup; outbound packets find theirs by the inner
destination through the L{RouteTable}. The IKE machine reserves SPIs while it negotiates, installs
CHILD SAs when they are agreed, and removes them when deleted; each installed CHILD SA is wrapped
in an L{EspSA} holding its keyed ciphers and counters.
"""

import os

from zope.interface import implementer

from ikehub.esp.espsa import EspSA, Lifetime
from ikehub.esp.routes import RouteTable
from ikehub.ike.child import ChildSA
from ikehub.interfaces import ISecurityAssociationDatabase

#: SPI values 1-255 are reserved by IANA (RFC 4303 section 2.1); 0 is never valid.
_MIN_SPI = 256


@implementer(ISecurityAssociationDatabase)
class SAD:
    def __init__(self, replayWindow: int = 1024, lifetime: Lifetime | None = None) -> None:
        #: inbound SPI -> EspSA, or None while reserved during negotiation. The datapath reads
        #: this dict directly on every packet.
        self.bySpi: dict[bytes, EspSA | None] = {}
        self.routes = RouteTable()
        self.replayWindow = replayWindow
        self.lifetime = lifetime or Lifetime()
        #: Called with each EspSA installed or removed: the datapath keeps its timers there.
        self.installed = None
        self.removed = None

    def allocateSpi(self) -> bytes:
        while True:
            spi = os.urandom(4)
            if int.from_bytes(spi, "big") >= _MIN_SPI and spi not in self.bySpi:
                self.bySpi[spi] = None
                return spi

    def releaseSpi(self, spi: bytes) -> None:
        if spi in self.bySpi and self.bySpi[spi] is None:
            del self.bySpi[spi]

    def install(self, childSa: ChildSA, outbound: bool = True) -> EspSA:
        """
        Make C{childSa} carry traffic: inbound at once, outbound too unless C{outbound} is false
        (the responder of a rekey sends on the new SA only once the old one goes: see
        L{activateOutbound}). Of several CHILD SAs with the same selectors, the one whose
        outbound was activated last carries outbound packets.
        """
        sa = EspSA(childSa, self.replayWindow, self.lifetime)
        self.bySpi[childSa.inboundSpi] = sa
        if outbound:
            sa.routed = True
            self.routes.add(sa.remoteRanges, sa)
        if self.installed is not None:
            self.installed(sa)
        return sa

    def activateOutbound(self, childSa: ChildSA) -> None:
        """
        Send on C{childSa} from now on (make-before-break: it was installed inbound only).
        """
        sa = self.bySpi.get(childSa.inboundSpi)
        if sa is not None and sa.child is childSa and not sa.routed:
            sa.routed = True
            self.routes.add(sa.remoteRanges, sa)

    def remove(self, childSa: ChildSA) -> None:
        sa = self.bySpi.get(childSa.inboundSpi)
        if sa is None or sa.child is not childSa:
            return
        del self.bySpi[childSa.inboundSpi]
        if sa.routed:
            sa.routed = False
            self.routes.remove(sa.remoteRanges, sa)
        if self.removed is not None:
            self.removed(sa)

    def lookup(self, spi: bytes) -> EspSA | None:
        return self.bySpi.get(spi)

    def __len__(self) -> int:
        return sum(1 for sa in self.bySpi.values() if sa is not None)

    def __iter__(self):
        return (sa for sa in self.bySpi.values() if sa is not None)
