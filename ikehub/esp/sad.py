"""
The Security Association Database (RFC 4301 section 4.4.2).

Inbound ESP finds its CHILD SA by SPI here, with one dict lookup. The IKE machine reserves SPIs
while it negotiates, installs CHILD SAs when they are agreed, and removes them when deleted.
"""

import os

from zope.interface import implementer

from ikehub.ike.child import ChildSA
from ikehub.interfaces import ISecurityAssociationDatabase

#: SPI values 1-255 are reserved by IANA (RFC 4303 section 2.1); 0 is never valid.
_MIN_SPI = 256


@implementer(ISecurityAssociationDatabase)
class SAD:
    def __init__(self) -> None:
        #: inbound SPI -> CHILD SA, or None while reserved during negotiation.
        self._bySpi: dict[bytes, ChildSA | None] = {}

    def allocateSpi(self) -> bytes:
        while True:
            spi = os.urandom(4)
            if int.from_bytes(spi, "big") >= _MIN_SPI and spi not in self._bySpi:
                self._bySpi[spi] = None
                return spi

    def releaseSpi(self, spi: bytes) -> None:
        if spi in self._bySpi and self._bySpi[spi] is None:
            del self._bySpi[spi]

    def install(self, childSa: ChildSA) -> None:
        self._bySpi[childSa.inboundSpi] = childSa

    def remove(self, childSa: ChildSA) -> None:
        if self._bySpi.get(childSa.inboundSpi) is childSa:
            del self._bySpi[childSa.inboundSpi]

    def lookup(self, spi: bytes) -> ChildSA | None:
        return self._bySpi.get(spi)

    def __len__(self) -> int:
        return sum(1 for child in self._bySpi.values() if child is not None)

    def __iter__(self):
        return (child for child in self._bySpi.values() if child is not None)
