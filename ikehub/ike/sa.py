"""
The IKE SA (RFC 7296 section 1): its keys, its peer, and the two message-ID windows.

An IKE SA is both a responder (to the peer's requests: message-ID window of one, the last response
cached and re-sent on a byte-identical retransmission) and an initiator (of our own requests: one
outstanding at a time, retransmitted with exponential backoff on the injected clock until answered
or given up). The exchanges themselves live in C{ikehub.ike.endpoint}.
"""

from enum import Enum
from typing import Any, Callable

from ikehub.crypto.keys import IkeKeys
from ikehub.crypto.proposals import IkeSuite
from ikehub.crypto.sk import SKCodec, ikeSkCodecs
from ikehub.wire.constants import HeaderFlag
from ikehub.wire.header import IKEHeader

ZERO_SPI = b"\x00" * 8
_NEVER = float("-inf")
_INITIATOR = int(HeaderFlag.INITIATOR)
_RESPONSE = int(HeaderFlag.RESPONSE)


class IKEState(Enum):
    #: Initiator: IKE_SA_INIT sent, waiting for the response.
    INIT_SENT = "INIT_SENT"
    #: Responder: IKE_SA_INIT answered, waiting for IKE_AUTH (a half-open SA).
    HALF_OPEN = "HALF_OPEN"
    #: Initiator: IKE_AUTH sent, waiting for the response.
    AUTH_SENT = "AUTH_SENT"
    ESTABLISHED = "ESTABLISHED"
    #: A Delete for the IKE SA was sent; waiting for its answer.
    DELETING = "DELETING"
    #: Superseded by a rekey (RFC 7296 section 2.18): its CHILD SAs, leases and identity moved to
    #: the new IKE SA; it lives on only for the Delete that ends it (and answers nothing else).
    REKEYED = "REKEYED"
    DEAD = "DEAD"


class PendingRequest:
    """
    Our one outstanding request: its bytes, for retransmission, and what to do with the answer.
    """

    __slots__ = ("messageId", "datagram", "exchangeType", "tries", "timer", "onResponse")

    def __init__(self, messageId, datagram, exchangeType, onResponse):
        self.messageId = messageId
        self.datagram = datagram
        self.exchangeType = exchangeType
        self.tries = 0
        self.timer: Any = None
        self.onResponse: Callable = onResponse


class IKESA:
    __slots__ = (
        "isInitiator",
        "spiI",
        "spiR",
        "state",
        "peer",
        "path",
        "suite",
        "keys",
        "skOut",
        "skIn",
        "nonceI",
        "nonceR",
        "initRequest",
        "initResponse",
        "peerIdentity",
        "entry",
        "virtualIps",
        "children",
        "createdAt",
        "lastHeard",
        "nextPeerRequestId",
        "lastResponse",
        "lastRequestHash",
        "nextRequestId",
        "pending",
        "queued",
        "context",
        "authState",
        "uniqueKey",
        "ikeRekey",
        "rekeyAt",
        "espSeen",
        "lingerCall",
        "invalidSpiAt",
        "configReply",
        "mobike",
        "peerAddresses",
        "replyTo",
        "fragmentSize",
        "reassembly",
    )

    def __init__(self, isInitiator: bool, spiI: bytes, spiR: bytes, peer, path, now: float):
        self.isInitiator = isInitiator
        self.spiI = spiI
        self.spiR = spiR
        self.state = IKEState.INIT_SENT if isInitiator else IKEState.HALF_OPEN
        self.peer: tuple[str, int] = peer
        #: The network glue's token for how we reach the peer (see ikehub.ike.endpoint.Path).
        self.path = path
        self.suite: IkeSuite | None = None
        self.keys: IkeKeys | None = None
        self.skOut: SKCodec | None = None
        self.skIn: SKCodec | None = None
        self.nonceI = b""
        self.nonceR = b""
        self.initRequest = b""
        self.initResponse = b""
        self.peerIdentity = None
        self.entry = None
        self.virtualIps: list = []
        self.children: list = []
        self.createdAt = now
        self.lastHeard = now
        self.nextPeerRequestId = 0
        self.lastResponse: bytes | None = None
        self.lastRequestHash = 0
        self.nextRequestId = 0
        self.pending: PendingRequest | None = None
        #: Requests waiting for the outstanding one to be answered (one at a time, RFC 7296
        #: section 2.3 with a window of 1): (exchangeType, payloads, onResponse).
        self.queued: list | None = None
        #: Role-specific scratch space during setup (the initiator's Deferred and spec).
        self.context: Any = None
        #: The responder's IKE_AUTH state (ikehub.ike.authstate.AuthState) while it lasts:
        #: the peer's signature hashes, EAP rounds, an answer being prepared.
        self.authState: Any = None
        #: The identity this established responder SA is indexed by (duplicates policy).
        self.uniqueKey: str | None = None
        #: Our outstanding rekey of this IKE SA (ikehub.ike.rekey.IkeRekey), or None.
        self.ikeRekey: Any = None
        #: When the hub rekeys this IKE SA itself (clock seconds), or None for never.
        self.rekeyAt: float | None = None
        #: Inbound ESP packets of its CHILD SAs when liveness was last judged: ESP counts as
        #: hearing from the peer (ikehub.ike.liveness).
        self.espSeen = 0
        #: The timer that removes a REKEYED SA whose Delete never comes.
        self.lingerCall: Any = None
        #: When we last told the peer of ESP for an SPI we do not have (INVALID_SPI).
        self.invalidSpiAt = _NEVER
        #: Initiator: the attributes of the responder's CFG_REPLY (empty without one).
        self.configReply: tuple = ()
        #: MOBIKE (RFC 4555) was negotiated in IKE_AUTH: the SA moves only when the peer says
        #: UPDATE_SA_ADDRESSES, not with every authenticated request from elsewhere.
        self.mobike = False
        #: The peer's other addresses as it announced them (ADDITIONAL_IP4/6_ADDRESS), for the
        #: operator: the hub, as responder, never picks a path itself.
        self.peerAddresses: tuple = ()
        #: Where the answer to the request being handled goes, when that is not (peer, path):
        #: a MOBIKE peer asking from an address it has not (yet) moved the SA to.
        self.replyTo: tuple | None = None
        #: 0 unless IKE fragmentation (RFC 7383) was negotiated in IKE_SA_INIT; then the
        #: largest IKE message we send whole, and the size of our SKF fragments.
        self.fragmentSize = 0
        #: Fragmented messages from the peer being reassembled (ikehub.ike.fragments), by
        #: direction (True: responses to our requests); None while there are none.
        self.reassembly: dict | None = None

    @property
    def localSpi(self) -> bytes:
        return self.spiI if self.isInitiator else self.spiR

    @property
    def remoteSpi(self) -> bytes:
        return self.spiR if self.isInitiator else self.spiI

    def installKeys(self, suite: IkeSuite, keys: IkeKeys) -> None:
        self.suite = suite
        self.keys = keys
        self.skOut, self.skIn = ikeSkCodecs(suite, keys, self.isInitiator)

    def header(self, exchangeType: int, messageId: int, response: bool) -> IKEHeader:
        flags = (_INITIATOR if self.isInitiator else 0) | (_RESPONSE if response else 0)
        return IKEHeader.outgoing(self.spiI, self.spiR, exchangeType, flags, messageId)

    def seal(self, exchangeType: int, messageId: int, payloads, response: bool) -> bytes:
        """
        Encode C{payloads} inside an SK payload under this SA's outbound keys.
        """
        return self.skOut.protect(self.header(exchangeType, messageId, response), payloads)

    def sealForSending(
        self, exchangeType: int, messageId: int, payloads, response: bool
    ) -> bytes | tuple[bytes, ...]:
        """
        L{seal}, or with fragmentation negotiated and a message too large for
        C{fragmentSize}, a tuple of SKF fragments (RFC 7383) to send one after the other.
        """
        header = self.header(exchangeType, messageId, response)
        if self.fragmentSize:
            return self.skOut.protectFragments(header, payloads, self.fragmentSize)
        return self.skOut.protect(header, payloads)

    def describe(self) -> dict:
        """
        Structured log fields naming this SA; never keys.
        """
        return {
            "peer": f"{self.peer[0]}:{self.peer[1]}",
            "spi_i": self.spiI.hex(),
            "spi_r": self.spiR.hex(),
            "identity": str(self.peerIdentity) if self.peerIdentity is not None else None,
        }
