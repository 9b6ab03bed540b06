"""
The CHILD SA (RFC 7296 section 1.3): one pair of ESP SAs negotiated inside an IKE SA.

The IKE machine builds it and hands it to the SAD (C{ikehub.esp.sad}), which is all the ESP
datapath sees. Keys are already split by direction so the datapath never needs to know which side
initiated.
"""

from dataclasses import dataclass, field

from ikehub.crypto.keys import ChildKeys
from ikehub.crypto.proposals import ChildSuite
from ikehub.wire.payloads import TrafficSelector


@dataclass(slots=True, eq=False)
class ChildSA:
    #: Our SPI: ESP packets arriving with it belong to this CHILD SA.
    inboundSpi: bytes
    #: The peer's SPI: we put it in ESP packets we send.
    outboundSpi: bytes
    suite: ChildSuite
    #: Traffic selectors of our side and of the peer's side, as narrowed.
    localTs: tuple[TrafficSelector, ...]
    remoteTs: tuple[TrafficSelector, ...]
    #: The peer's current UDP address (host, port); NAT rebinding and MOBIKE move it.
    peer: tuple[str, int]
    #: The network glue's token for the socket and framing that reach the peer.
    path: object
    #: Local SPI of the IKE SA that owns this CHILD SA.
    ikeSpi: bytes
    encrIn: bytes = field(repr=False, default=b"")
    integIn: bytes = field(repr=False, default=b"")
    encrOut: bytes = field(repr=False, default=b"")
    integOut: bytes = field(repr=False, default=b"")
    createdAt: float = 0.0
    #: The CHILD SA that replaced this one in a rekey; this one then only awaits its Delete.
    replacedBy: "ChildSA | None" = field(default=None, repr=False)
    #: Our outstanding rekey of this CHILD SA (ikehub.ike.rekey.ChildRekey), or None.
    rekey: object = field(default=None, repr=False)
    #: A rekeyed-in CHILD SA we answered that sends only once its predecessor goes (the
    #: responder's side of make-before-break), else None.
    predecessor: "ChildSA | None" = field(default=None, repr=False)

    def setKeys(self, keys: ChildKeys, isInitiator: bool) -> None:
        """
        Take the KEYMAT halves for each direction: the initiator sends with the i->r keys.
        """
        if isInitiator:
            self.encrOut, self.integOut = keys.encrI, keys.integI
            self.encrIn, self.integIn = keys.encrR, keys.integR
        else:
            self.encrOut, self.integOut = keys.encrR, keys.integR
            self.encrIn, self.integIn = keys.encrI, keys.integI
