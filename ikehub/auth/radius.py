"""
EAP pass-through to RADIUS (RFC 3579): the hub relays a peer's EAP messages to a RADIUS
server in Access-Requests and turns the server's answers into EAP outcomes.

Three layers, kept apart as in C{twisted.names}:

  - the codec: L{RADIUSPacket} (bytes in, an immutable packet out, and back), the
    authenticators (RFC 2865 section 3, RFC 3579 section 3.2), EAP-Message splitting and
    joining, and the RFC 2548 salt decryption of MS-MPPE-Send/Recv-Key. No reactor, no
    logging. Everything a server or an attacker can get wrong raises L{RADIUSParseError};
  - L{RADIUSClient}: sans-IO request/response matching over an injected C{send} function and
    C{clock}. Identifiers per server, a random 16-octet Request Authenticator per request,
    retransmission after C{timeout} seconds C{retries} times, then fail-over to the next
    server. Responses that match no outstanding request, or whose Response Authenticator or
    Message-Authenticator is wrong, are dropped and counted in L{RADIUSClient.counters};
  - L{RADIUSEAPSession} (an L{IEAPSession}): one peer's conversation, mapping
    Access-Challenge / Access-Accept / Access-Reject to Continue / Succeeded / Failed;

and the Twisted glue, L{RADIUSClientProtocol}, a C{DatagramProtocol} on an ephemeral port
that feeds responses to the client.

Why no RADIUS library: pyrad (the maintained one) was considered. Its C{Packet} is a mutable
dictionary keyed through a dictionary file, carrying the secret and the request state, and its
decoder silently truncates an attribute whose Length runs past the end of the packet where this
module must refuse it; it also pulls in netaddr. The part needed here is a few dozen lines of
type-length-value handling plus MD5/HMAC-MD5 from C{hashlib}/C{hmac}, so it is written here,
strictly.

MD5 is what RADIUS mandates; it only ever comes from C{hashlib} and C{hmac}.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from ikehub.auth.eap.conversation import MAX_ROUNDS, Continue, Failed, Outcome, Succeeded
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPParseError, EAPType
from ikehub.interfaces import IEAPMethod, IEAPSession

__all__ = [
    "ACCESS_ACCEPT",
    "ACCESS_CHALLENGE",
    "ACCESS_REJECT",
    "ACCESS_REQUEST",
    "RADIUSClient",
    "RADIUSClientProtocol",
    "RADIUSEAPMethod",
    "RADIUSEAPSession",
    "RADIUSPacket",
    "RADIUSParseError",
    "RADIUSResponse",
    "RADIUSServer",
    "decryptMPPEKey",
    "joinEAPMessage",
    "messageAuthenticator",
    "responseAuthenticator",
    "splitEAPMessage",
]

# -- RFC 2865 / 3579 / 2548 numbers ----------------------------------------------------------

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCESS_CHALLENGE = 11

ATTR_USER_NAME = 1
ATTR_SERVICE_TYPE = 6
ATTR_FRAMED_IP_ADDRESS = 8
ATTR_REPLY_MESSAGE = 18
ATTR_STATE = 24
ATTR_CLASS = 25
ATTR_VENDOR_SPECIFIC = 26
ATTR_CALLED_STATION_ID = 30
ATTR_CALLING_STATION_ID = 31
ATTR_NAS_IDENTIFIER = 32
ATTR_NAS_PORT_TYPE = 61
ATTR_EAP_MESSAGE = 79
ATTR_MESSAGE_AUTHENTICATOR = 80

SERVICE_TYPE_FRAMED = 2
NAS_PORT_TYPE_VIRTUAL = 5

VENDOR_MICROSOFT = 311
MS_MPPE_SEND_KEY = 16
MS_MPPE_RECV_KEY = 17

#: Code, Identifier, Length, Authenticator.
HEADER_LENGTH = 20
#: RFC 2865 section 3: the largest packet.
MAX_PACKET_LENGTH = 4096
#: The most value octets one attribute holds.
MAX_ATTRIBUTE_VALUE = 253
AUTHENTICATOR_LENGTH = 16

_HEADER = struct.Struct("!BBH16s")
_RESPONSE_CODES = frozenset((ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE))
_CODE_NAMES = {
    ACCESS_REQUEST: "Access-Request",
    ACCESS_ACCEPT: "Access-Accept",
    ACCESS_REJECT: "Access-Reject",
    ACCESS_CHALLENGE: "Access-Challenge",
}


# -- the codec -------------------------------------------------------------------------------


class RADIUSParseError(Exception):
    """
    Bytes that are not a RADIUS packet (or attribute value) this codec accepts.

    @ivar reason: what is wrong, for logs; never packet contents beyond numbers.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RADIUSPacket:
    """
    One RADIUS packet (RFC 2865 section 3): attributes in wire order as (type, value) pairs,
    each value at most 253 octets.
    """

    code: int
    identifier: int
    authenticator: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.code <= 0xFF:
            raise ValueError(f"RADIUS code {self.code} is not 0..255")
        if not 0 <= self.identifier <= 0xFF:
            raise ValueError(f"RADIUS identifier {self.identifier} is not 0..255")
        if len(self.authenticator) != AUTHENTICATOR_LENGTH:
            raise ValueError("the RADIUS authenticator is 16 octets")
        for attrType, value in self.attributes:
            if not 1 <= attrType <= 0xFF:
                raise ValueError(f"RADIUS attribute type {attrType} is not 1..255")
            if len(value) > MAX_ATTRIBUTE_VALUE:
                raise ValueError(f"attribute {attrType} value longer than 253 octets")
        if self.length > MAX_PACKET_LENGTH:
            raise ValueError(f"RADIUS packet of {self.length} octets exceeds 4096")

    @property
    def length(self) -> int:
        return HEADER_LENGTH + sum(2 + len(v) for _, v in self.attributes)

    def encodeAttributes(self) -> bytes:
        return b"".join(struct.pack("!BB", t, 2 + len(v)) + v for t, v in self.attributes)

    def toBytes(self) -> bytes:
        return (
            _HEADER.pack(self.code, self.identifier, self.length, self.authenticator)
            + self.encodeAttributes()
        )

    @classmethod
    def fromBytes(cls, data: bytes) -> RADIUSPacket:
        """
        Parse one packet. Octets past the Length field are padding and ignored (RFC 2865
        section 3); a Length shorter than the header, longer than the data or above 4096,
        and an attribute whose Length is below 2 or runs past the packet, are errors.

        @raise RADIUSParseError: for all of those.
        """
        data = bytes(data)
        if len(data) < HEADER_LENGTH:
            raise RADIUSParseError(f"{len(data)} octets is shorter than the RADIUS header")
        code, identifier, length, authenticator = _HEADER.unpack_from(data)
        if length < HEADER_LENGTH:
            raise RADIUSParseError(f"Length field {length} is shorter than the header")
        if length > MAX_PACKET_LENGTH:
            raise RADIUSParseError(f"Length field {length} exceeds 4096")
        if length > len(data):
            raise RADIUSParseError(f"Length field says {length} octets but {len(data)} arrived")
        return cls(code, identifier, authenticator, parseAttributes(data[HEADER_LENGTH:length]))

    def values(self, attrType: int) -> list[bytes]:
        """Every value of attribute C{attrType}, in order."""
        return [v for t, v in self.attributes if t == attrType]

    def first(self, attrType: int) -> bytes | None:
        for t, v in self.attributes:
            if t == attrType:
                return v
        return None

    def vendorAttributes(self, vendorId: int) -> list[tuple[int, bytes]]:
        """
        The sub-attributes of C{vendorId}'s Vendor-Specific attributes, in the RFC 2865
        section 5.26 recommended format (Vendor-Type, Vendor-Length, value).

        @raise RADIUSParseError: a Vendor-Specific attribute of this vendor whose
            sub-attributes do not add up.
        """
        found: list[tuple[int, bytes]] = []
        for value in self.values(ATTR_VENDOR_SPECIFIC):
            if len(value) < 4:
                raise RADIUSParseError("Vendor-Specific attribute shorter than a Vendor-Id")
            if int.from_bytes(value[:4], "big") != vendorId:
                continue
            found.extend(parseAttributes(value[4:], "vendor sub-attribute"))
        return found


def parseAttributes(data: bytes, what: str = "attribute") -> tuple[tuple[int, bytes], ...]:
    """
    Type-Length-Value triples covering C{data} exactly.

    @raise RADIUSParseError: a truncated header, a Length below 2 or past the end.
    """
    attributes = []
    offset = 0
    end = len(data)
    while offset < end:
        if end - offset < 2:
            raise RADIUSParseError(f"truncated {what} header at offset {offset}")
        attrType = data[offset]
        attrLength = data[offset + 1]
        if attrType == 0:
            raise RADIUSParseError(f"{what} type 0 at offset {offset}")
        if attrLength < 2:
            raise RADIUSParseError(f"{what} {attrType} has Length {attrLength} (below 2)")
        if offset + attrLength > end:
            raise RADIUSParseError(f"{what} {attrType} of Length {attrLength} runs past the end")
        attributes.append((attrType, data[offset + 2 : offset + attrLength]))
        offset += attrLength
    return tuple(attributes)


def splitEAPMessage(message: bytes) -> list[tuple[int, bytes]]:
    """EAP-Message attributes carrying C{message}, 253 octets each (RFC 3579 section 3.1)."""
    if not message:
        raise ValueError("an empty EAP message")
    return [
        (ATTR_EAP_MESSAGE, message[i : i + MAX_ATTRIBUTE_VALUE])
        for i in range(0, len(message), MAX_ATTRIBUTE_VALUE)
    ]


def joinEAPMessage(packet: RADIUSPacket) -> bytes | None:
    """
    The EAP packet carried by C{packet}'s EAP-Message attributes, joined in order, or
    C{None} if it has none. RFC 3579 section 3.1 requires them to be consecutive.

    @raise RADIUSParseError: EAP-Message attributes separated by other attributes.
    """
    positions = [i for i, (t, _) in enumerate(packet.attributes) if t == ATTR_EAP_MESSAGE]
    if not positions:
        return None
    if positions[-1] - positions[0] != len(positions) - 1:
        raise RADIUSParseError("EAP-Message attributes are not consecutive")
    return b"".join(packet.attributes[i][1] for i in positions)


def _md5(*parts: bytes) -> bytes:
    digest = hashlib.md5()
    for part in parts:
        digest.update(part)
    return digest.digest()


def responseAuthenticator(response: bytes, requestAuthenticator: bytes, secret: bytes) -> bytes:
    """
    RFC 2865 section 3: MD5(Code | Identifier | Length | Request Authenticator | Attributes |
    Secret), over C{response}'s bytes up to its Length.
    """
    length = struct.unpack_from("!H", response, 2)[0]
    return _md5(response[:4], requestAuthenticator, response[HEADER_LENGTH:length], secret)


def _zeroMessageAuthenticators(attributes: bytes) -> bytes:
    """The encoded attributes with every Message-Authenticator value set to 16 zeros."""
    out = bytearray(attributes)
    for (attrType, value), offset in zip(
        parseAttributes(attributes), _attributeOffsets(attributes), strict=True
    ):
        if attrType == ATTR_MESSAGE_AUTHENTICATOR:
            out[offset + 2 : offset + 2 + len(value)] = bytes(len(value))
    return bytes(out)


def _attributeOffsets(attributes: bytes) -> Iterable[int]:
    offset = 0
    while offset < len(attributes):
        yield offset
        offset += attributes[offset + 1]


def messageAuthenticator(packet: bytes, authenticator: bytes, secret: bytes) -> bytes:
    """
    RFC 3579 section 3.2: HMAC-MD5 keyed with the secret over the packet with C{authenticator}
    in the Authenticator field (the Request Authenticator, for a response too) and every
    Message-Authenticator value zeroed.
    """
    length = struct.unpack_from("!H", packet, 2)[0]
    attributes = _zeroMessageAuthenticators(packet[HEADER_LENGTH:length])
    return hmac.new(secret, packet[:4] + authenticator + attributes, "md5").digest()


def encodeRequest(
    identifier: int,
    requestAuthenticator: bytes,
    attributes: Sequence[tuple[int, bytes]],
    secret: bytes,
) -> bytes:
    """
    An Access-Request with C{attributes}, preceded by a Message-Authenticator (first, as the
    BlastRADIUS advisories recommend) computed over the whole packet.
    """
    packet = RADIUSPacket(
        ACCESS_REQUEST,
        identifier,
        requestAuthenticator,
        ((ATTR_MESSAGE_AUTHENTICATOR, bytes(16)), *attributes),
    )
    raw = packet.toBytes()
    mac = messageAuthenticator(raw, requestAuthenticator, secret)
    # The Message-Authenticator value sits right after its 2-octet header.
    return raw[: HEADER_LENGTH + 2] + mac + raw[HEADER_LENGTH + 2 + 16 :]


def verifyResponse(data: bytes, requestAuthenticator: bytes, secret: bytes) -> RADIUSPacket:
    """
    Parse and authenticate a response to the request with C{requestAuthenticator}.

    The Response Authenticator must be right, and exactly one 16-octet Message-Authenticator
    must be present and right: this client always sends EAP-Message, so RFC 3579 section 3.2
    requires one in every response (and it is the BlastRADIUS defence).

    @raise RADIUSParseError: anything wrong, including a code that is not a response.
    """
    packet = RADIUSPacket.fromBytes(data)
    if packet.code not in _RESPONSE_CODES:
        raise RADIUSParseError(f"RADIUS code {packet.code} is not an Access response")
    raw = bytes(data[: packet.length])
    expected = responseAuthenticator(raw, requestAuthenticator, secret)
    if not hmac.compare_digest(expected, packet.authenticator):
        raise RADIUSParseError("wrong Response Authenticator")
    macs = packet.values(ATTR_MESSAGE_AUTHENTICATOR)
    if len(macs) != 1 or len(macs[0]) != 16:
        raise RADIUSParseError(
            f"{len(macs)} Message-Authenticator attributes where exactly one is required"
        )
    if not hmac.compare_digest(messageAuthenticator(raw, requestAuthenticator, secret), macs[0]):
        raise RADIUSParseError("wrong Message-Authenticator")
    return packet


def decryptMPPEKey(value: bytes, secret: bytes, requestAuthenticator: bytes) -> bytes:
    """
    An MS-MPPE-Send-Key or MS-MPPE-Recv-Key value (RFC 2548 sections 2.4.2 and 2.4.3):
    Salt (2 octets, high bit set) then String, the encryption of Key-Length | Key | padding
    with b(1) = MD5(Secret | Request-Authenticator | Salt), b(i) = MD5(Secret | c(i-1)).

    @raise RADIUSParseError: a wrong length, a salt without its high bit, or a Key-Length
        beyond the decrypted data.
    """
    if len(value) < 2 + 16 or (len(value) - 2) % 16:
        raise RADIUSParseError(f"MPPE key attribute of {len(value)} octets")
    salt = value[:2]
    if not salt[0] & 0x80:
        raise RADIUSParseError("MPPE key salt without its high bit set")
    cipher = value[2:]
    plain = bytearray()
    last = requestAuthenticator + salt
    for i in range(0, len(cipher), 16):
        block = cipher[i : i + 16]
        b = _md5(secret, last)
        plain.extend(x ^ y for x, y in zip(block, b, strict=True))
        last = block
    keyLength = plain[0]
    if keyLength == 0 or 1 + keyLength > len(plain):
        raise RADIUSParseError(f"MPPE Key-Length {keyLength} does not fit {len(plain)} octets")
    return bytes(plain[1 : 1 + keyLength])


# -- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RADIUSServer:
    """One configured server; C{address} is an IP address literal."""

    address: str
    port: int = 1812
    secret: bytes = field(default=b"", repr=False)

    @property
    def key(self) -> tuple[str, int]:
        """C{(address, port)} with the address in canonical form, to match replies by."""
        return (str(ipaddress.ip_address(self.address)), self.port)

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class RADIUSResponse:
    """
    An authenticated response, with what is needed to decrypt its attributes.
    """

    packet: RADIUSPacket
    server: RADIUSServer
    serverIndex: int
    requestAuthenticator: bytes = field(repr=False)

    def mppeKeys(self) -> tuple[bytes | None, bytes | None]:
        """
        (MS-MPPE-Recv-Key, MS-MPPE-Send-Key), decrypted, either C{None} when absent.

        @raise RADIUSParseError: a malformed Microsoft Vendor-Specific or key value.
        """
        recv = send = None
        for vendorType, value in self.packet.vendorAttributes(VENDOR_MICROSOFT):
            if vendorType == MS_MPPE_RECV_KEY and recv is None:
                recv = decryptMPPEKey(value, self.server.secret, self.requestAuthenticator)
            elif vendorType == MS_MPPE_SEND_KEY and send is None:
                send = decryptMPPEKey(value, self.server.secret, self.requestAuthenticator)
        return recv, send


class _Pending:
    """One request in flight: mutable, re-armed on every retransmission and fail-over."""

    __slots__ = (
        "_client",
        "attributes",
        "authenticator",
        "deferred",
        "identifier",
        "raw",
        "sent",
        "serverIndex",
        "serversTried",
        "timer",
    )

    def __init__(self, attributes: tuple[tuple[int, bytes], ...]) -> None:
        self.attributes = attributes
        self.deferred: defer.Deferred[RADIUSResponse | None] = defer.Deferred(self._cancel)
        self.serverIndex = 0
        self.serversTried = 0
        self.identifier = 0
        self.authenticator = b""
        self.raw = b""
        self.sent = 0
        self.timer: Any = None
        self._client: RADIUSClient | None = None

    def _cancel(self, _: object) -> None:
        if self._client is not None:
            self._client._forget(self)


class RADIUSClient:
    """
    Sans-IO RADIUS client shared by every session of one hub.

    @param servers: tried in order; a request goes to C{servers[start]} first (see
        L{request}) and fails over to the next after C{retries} retransmissions.
    @param send: C{send(data, (address, port))} puts a datagram on the wire.
    @param clock: an C{IReactorTime}.
    @param timeout: seconds to wait for an answer before retransmitting.
    @param retries: retransmissions to one server before failing over.
    @param randomBytes: the source of Request Authenticators (C{os.urandom}).
    """

    log = Logger()

    def __init__(
        self,
        servers: Sequence[RADIUSServer],
        send: Callable[[bytes, tuple[str, int]], None],
        clock: Any,
        *,
        timeout: float = 3.0,
        retries: int = 2,
        randomBytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not servers:
            raise ValueError("at least one RADIUS server is needed")
        self.servers = tuple(servers)
        self.send = send
        self.clock = clock
        self.timeout = timeout
        self.retries = retries
        self.randomBytes = randomBytes
        self._keys = {server.key: i for i, server in enumerate(self.servers)}
        self._nextIdentifier = [secrets.randbelow(256) for _ in self.servers]
        self._outstanding: dict[tuple[int, int], _Pending] = {}
        #: The server that answered last; new conversations start there.
        self.preferred = 0
        #: Counts of retransmissions, fail-overs and dropped datagrams by reason.
        self.counters: Counter[str] = Counter()

    def request(
        self, attributes: Iterable[tuple[int, bytes]], start: int | None = None
    ) -> defer.Deferred[RADIUSResponse | None]:
        """
        Send an Access-Request with C{attributes} (and a Message-Authenticator).

        @param start: the index of the server to try first; L{preferred} if C{None}.
        @return: a Deferred firing with the authenticated L{RADIUSResponse}, or with C{None}
            once every server has been tried and none answered. It never errbacks (except
            with C{CancelledError} when the caller cancels it).
        """
        pending = _Pending(tuple(attributes))
        pending._client = self
        pending.serverIndex = (self.preferred if start is None else start) % len(self.servers)
        self._sendTo(pending)
        return pending.deferred

    def datagramReceived(self, data: bytes, address: tuple[Any, ...]) -> None:
        """A datagram arrived on the client's socket from C{address}. Never raises."""
        try:
            source = (str(ipaddress.ip_address(address[0].split("%")[0])), address[1])
        except (ValueError, IndexError, AttributeError):
            self._drop("unknown_source", address)
            return
        serverIndex = self._keys.get(source)
        if serverIndex is None:
            self._drop("unknown_source", address)
            return
        if len(data) < HEADER_LENGTH:
            self._drop("malformed", address)
            return
        pending = self._outstanding.get((serverIndex, data[1]))
        if pending is None:
            self._drop("unexpected", address)
            return
        server = self.servers[serverIndex]
        try:
            packet = verifyResponse(data, pending.authenticator, server.secret)
        except RADIUSParseError as e:
            self._drop("bad_response", address, e.reason)
            return
        self._forget(pending)
        self.preferred = serverIndex
        self.counters[_CODE_NAMES[packet.code]] += 1
        pending.deferred.callback(
            RADIUSResponse(packet, server, serverIndex, pending.authenticator)
        )

    # -- internals ---------------------------------------------------------------------------

    def _sendTo(self, pending: _Pending) -> None:
        """Send C{pending} as a new request to its current server, or fail over."""
        while pending.serversTried < len(self.servers):
            pending.serversTried += 1
            index = pending.serverIndex
            identifier = self._takeIdentifier(index)
            if identifier is None:
                self.log.warn(
                    "all 256 RADIUS identifiers to {server} are in use; trying the next server",
                    server=str(self.servers[index]),
                )
                pending.serverIndex = (index + 1) % len(self.servers)
                continue
            server = self.servers[index]
            pending.identifier = identifier
            pending.authenticator = self.randomBytes(AUTHENTICATOR_LENGTH)
            try:
                pending.raw = encodeRequest(
                    identifier, pending.authenticator, pending.attributes, server.secret
                )
            except ValueError as e:
                self.log.warn("cannot encode the Access-Request: {why}", why=str(e))
                break
            pending.sent = 0
            self._outstanding[(index, identifier)] = pending
            self._transmit(pending)
            return
        pending._client = None
        pending.deferred.callback(None)

    def _transmit(self, pending: _Pending) -> None:
        server = self.servers[pending.serverIndex]
        pending.sent += 1
        if pending.sent > 1:
            self.counters["retransmissions"] += 1
        try:
            self.send(pending.raw, (server.address, server.port))
        except Exception:  # noqa: BLE001
            # A send error (no route, ...) is like a lost datagram: the timer still runs.
            self.log.failure("sending to RADIUS server {server} failed", server=str(server))
        pending.timer = self.clock.callLater(self.timeout, self._timedOut, pending)

    def _timedOut(self, pending: _Pending) -> None:
        pending.timer = None
        if pending.sent <= self.retries:
            self._transmit(pending)
            return
        server = self.servers[pending.serverIndex]
        self.counters["timeouts"] += 1
        del self._outstanding[(pending.serverIndex, pending.identifier)]
        pending.serverIndex = (pending.serverIndex + 1) % len(self.servers)
        if pending.serversTried < len(self.servers):
            self.counters["failovers"] += 1
            self.log.warn(
                "RADIUS server {server} did not answer; failing over to {next}",
                server=str(server),
                next=str(self.servers[pending.serverIndex]),
            )
        else:
            self.log.warn("no RADIUS server answered")
        self._sendTo(pending)

    def _forget(self, pending: _Pending) -> None:
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.timer = None
        key = (pending.serverIndex, pending.identifier)
        if self._outstanding.get(key) is pending:
            del self._outstanding[key]
        pending._client = None

    def _takeIdentifier(self, index: int) -> int | None:
        start = self._nextIdentifier[index]
        for step in range(256):
            identifier = (start + step) & 0xFF
            if (index, identifier) not in self._outstanding:
                self._nextIdentifier[index] = (identifier + 1) & 0xFF
                return identifier
        return None

    def _drop(self, reason: str, address: object, detail: str = "") -> None:
        self.counters[f"dropped_{reason}"] += 1
        # Rate-limited in effect: only the first of each kind, then every 100th, is logged.
        if self.counters[f"dropped_{reason}"] % 100 == 1:
            self.log.info(
                "dropped a RADIUS datagram from {source}: {reason} {detail}",
                source=str(address),
                reason=reason,
                detail=detail,
            )

    @property
    def outstanding(self) -> int:
        """The number of requests in flight."""
        return len(self._outstanding)


# -- the EAP session -------------------------------------------------------------------------

NO_SERVER_ANSWERED = "no RADIUS server answered"


@implementer(IEAPSession)
class RADIUSEAPSession:
    """
    One peer's EAP conversation relayed to RADIUS.

    Without an identity round, L{start} sends an Access-Request with an EAP-Response/Identity
    carrying C{peerIdentity} (identifier 0), as strongSwan's eap-radius does when it skips the
    identity exchange; the server's first Request comes back in a L{Continue}. With an
    identity round L{start} answers a local EAP Identity Request and the peer's Identity
    Response is relayed.

    Every Deferred it returns fires with an outcome and never errbacks. The hub does only
    light checks (the packet parses and is a Response; a wrong identifier is answered by the
    outstanding Request, as RFC 3748 section 4.1 allows); the server runs the method.

    @param peerAddress: the peer's IP address, for Calling-Station-Id.
    @param localAddress: the hub's address the peer reached, for Called-Station-Id.
    """

    log = Logger()

    def __init__(
        self,
        client: RADIUSClient,
        peerIdentity: str,
        identityRound: bool,
        *,
        nasIdentifier: str = "ikehub",
        peerAddress: str | None = None,
        localAddress: str | None = None,
        firstIdentifier: int | None = None,
        maxRounds: int = MAX_ROUNDS,
        maxDiscarded: int = 3,
    ) -> None:
        if not identityRound and not peerIdentity:
            raise ValueError("without an identity round the peer's identity must be given")
        self.client = client
        self.identityRound = identityRound
        self.identity: str | None = None if identityRound else peerIdentity
        self.nasIdentifier = nasIdentifier
        self.peerAddress = peerAddress
        self.localAddress = localAddress
        self.maxRounds = maxRounds
        self.maxDiscarded = maxDiscarded
        self.rounds = 0
        self.discarded = 0
        self._firstIdentifier = (
            secrets.randbelow(256) if firstIdentifier is None else firstIdentifier
        )
        self._state: bytes | None = None
        self._server: int | None = None
        self._outstanding: EAPPacket | None = None
        self._lastResponseId = 0
        self._inFlight: defer.Deferred[Outcome] | None = None
        self._request: defer.Deferred[Any] | None = None
        self._final: Succeeded | Failed | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} identity={self.identity!r}>"

    @property
    def finished(self) -> bool:
        return self._final is not None

    def start(self) -> defer.Deferred[Outcome]:
        """
        The first Request: a local Identity Request, or the RADIUS server's first Request.
        """
        if self._inFlight is not None:
            return self._follow(self._inFlight)
        if self._final is not None:
            return defer.succeed(self._final)
        if self._outstanding is not None:
            return defer.succeed(Continue(self._outstanding))
        if self.identityRound:
            self._outstanding = EAPPacket(EAPCode.REQUEST, self._firstIdentifier, EAPType.IDENTITY)
            return defer.succeed(Continue(self._outstanding))
        identity = EAPPacket(EAPCode.RESPONSE, 0, EAPType.IDENTITY, (self.identity or "").encode())
        return self._relay(identity)

    def receive(self, data: bytes) -> defer.Deferred[Outcome]:
        """Relay the peer's next EAP packet. Never raises; the Deferred never errbacks."""
        try:
            return self._receive(bytes(data))
        except Exception:  # noqa: BLE001
            self.log.failure("EAP-RADIUS session raised")
            return defer.succeed(self._fail("internal error in eap-radius"))

    # -- internals ---------------------------------------------------------------------------

    def _receive(self, data: bytes) -> defer.Deferred[Outcome]:
        if self._final is not None:
            return defer.succeed(self._final)
        if self._inFlight is not None:
            # The IKE layer should not send a second message before the first is answered;
            # if it does, both get the same answer.
            return self._follow(self._inFlight)
        if self._outstanding is None:
            return defer.succeed(self._fail("a Response arrived before the first Request"))
        self.rounds += 1
        if self.rounds > self.maxRounds:
            return defer.succeed(self._fail(f"more than {self.maxRounds} EAP rounds"))
        try:
            packet = EAPPacket.fromBytes(data)
        except EAPParseError as e:
            return defer.succeed(self._fail(f"malformed EAP packet: {e.reason}"))
        if packet.code != EAPCode.RESPONSE:
            return defer.succeed(self._fail("the peer sent an EAP packet that is not a Response"))
        if packet.identifier != self._outstanding.identifier:
            self.discarded += 1
            if self.discarded > self.maxDiscarded:
                return defer.succeed(
                    self._fail(
                        f"more than {self.maxDiscarded} EAP Responses with a wrong identifier"
                    )
                )
            return defer.succeed(Continue(self._outstanding))
        if self.identity is None:
            # The answer to our local Identity Request.
            if packet.type != EAPType.IDENTITY:
                return defer.succeed(self._fail("the peer did not answer the Identity Request"))
            try:
                identity = packet.data.decode("utf-8")
            except UnicodeDecodeError:
                return defer.succeed(self._fail("the EAP identity is not UTF-8"))
            if not identity or any(ord(c) < 0x20 or ord(c) == 0x7F for c in identity):
                return defer.succeed(
                    self._fail("the EAP identity is empty or has control characters")
                )
            if len(packet.data) > MAX_ATTRIBUTE_VALUE:
                return defer.succeed(self._fail("the EAP identity is longer than 253 octets"))
            self.identity = identity
        return self._relay(packet)

    def _relay(self, packet: EAPPacket) -> defer.Deferred[Outcome]:
        self._lastResponseId = packet.identifier
        message = packet.toBytes()
        userName = (self.identity or "").encode("utf-8")
        if not userName or len(userName) > MAX_ATTRIBUTE_VALUE:
            return defer.succeed(self._fail("the identity does not fit a RADIUS User-Name"))
        attributes: list[tuple[int, bytes]] = [
            (ATTR_USER_NAME, userName),
            (ATTR_SERVICE_TYPE, struct.pack("!L", SERVICE_TYPE_FRAMED)),
            (ATTR_NAS_PORT_TYPE, struct.pack("!L", NAS_PORT_TYPE_VIRTUAL)),
            (ATTR_NAS_IDENTIFIER, self.nasIdentifier.encode("utf-8")),
        ]
        if self.peerAddress:
            attributes.append((ATTR_CALLING_STATION_ID, self.peerAddress.encode("utf-8")))
        if self.localAddress:
            attributes.append((ATTR_CALLED_STATION_ID, self.localAddress.encode("utf-8")))
        if self._state is not None:
            attributes.append((ATTR_STATE, self._state))
        attributes.extend(splitEAPMessage(message))
        # Header, Message-Authenticator and the rest must fit 4096 octets.
        if HEADER_LENGTH + 18 + sum(2 + len(v) for _, v in attributes) > MAX_PACKET_LENGTH:
            return defer.succeed(self._fail("the EAP message is too long for a RADIUS packet"))
        d = self.client.request(attributes, start=self._server)
        self._request = d
        outcome = d.addCallback(self._answered).addErrback(self._internalError)
        if not outcome.called:
            self._inFlight = outcome
        return self._follow(outcome)

    def abort(self) -> None:
        """
        Give up the request in flight, if any (the IKE SA went away): the session ends with
        L{Failed}. Cancelling a Deferred from L{start} or L{receive} does the same.
        """
        request, self._request = self._request, None
        if request is not None and not request.called:
            request.cancel()

    def _follow(self, d: defer.Deferred[Outcome]) -> defer.Deferred[Outcome]:
        """A Deferred firing with C{d}'s result without consuming it."""
        follower: defer.Deferred[Outcome] = defer.Deferred(lambda _: self.abort())

        def forward(outcome: Outcome) -> Outcome:
            follower.callback(outcome)
            return outcome

        d.addCallback(forward)
        return follower

    def _internalError(self, failure: Any) -> Outcome:
        self._inFlight = self._request = None
        if failure.check(defer.CancelledError):
            return self._fail("the RADIUS request was cancelled")
        self.log.failure("EAP-RADIUS session failed", failure)
        return self._fail("internal error in eap-radius")

    def _answered(self, response: RADIUSResponse | None) -> Outcome:
        self._inFlight = self._request = None
        if response is None:
            return self._fail(NO_SERVER_ANSWERED)
        self._server = response.serverIndex
        packet = response.packet
        try:
            message = joinEAPMessage(packet)
            eap = EAPPacket.fromBytes(message) if message is not None else None
        except (RADIUSParseError, EAPParseError) as e:
            return self._fail(f"the RADIUS server sent a malformed EAP-Message: {e}")
        if packet.code == ACCESS_CHALLENGE:
            if eap is None or eap.code != EAPCode.REQUEST:
                return self._fail("Access-Challenge without an EAP Request")
            self._state = packet.first(ATTR_STATE)
            self._outstanding = eap
            return Continue(eap)
        if packet.code == ACCESS_REJECT:
            failure = eap if eap is not None and eap.code == EAPCode.FAILURE else None
            return self._fail("the RADIUS server rejected the peer", failure)
        # Access-Accept
        if eap is not None and eap.code != EAPCode.SUCCESS:
            return self._fail("Access-Accept carrying an EAP packet that is not a Success")
        if eap is None:
            eap = EAPPacket(EAPCode.SUCCESS, self._lastResponseId, None)
        try:
            recv, send = response.mppeKeys()
        except RADIUSParseError as e:
            return self._fail(f"the RADIUS server sent malformed MPPE keys: {e}")
        msk = recv + send if recv is not None and send is not None else None
        self._final = Succeeded(
            msk=msk,
            message=eap.toBytes(),
            identity=self.identity,
            groups=_classGroups(packet),
            address=_framedAddress(packet),
        )
        self.log.info(
            "RADIUS server {server} accepted {identity}",
            server=str(response.server),
            identity=self.identity,
        )
        return self._final

    def _fail(self, reason: str, failure: EAPPacket | None = None) -> Failed:
        if failure is None:
            failure = EAPPacket(EAPCode.FAILURE, self._lastResponseId, None)
        self._final = Failed(reason, failure.toBytes(), self.identity)
        return self._final


def _classGroups(packet: RADIUSPacket) -> tuple[str, ...]:
    """Class values that are printable UTF-8, as group names; others are not names."""
    groups = []
    for value in packet.values(ATTR_CLASS):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and text.isprintable():
            groups.append(text)
    return tuple(groups)


def _framedAddress(packet: RADIUSPacket) -> str | None:
    """
    Framed-IP-Address as text. 255.255.255.255 ("let the user choose") and 255.255.255.254
    ("the NAS chooses") are not addresses (RFC 2865 section 5.8): the hub's pool decides.
    """
    value = packet.first(ATTR_FRAMED_IP_ADDRESS)
    if value is None or len(value) != 4 or value in (b"\xff\xff\xff\xff", b"\xff\xff\xff\xfe"):
        return None
    return str(ipaddress.IPv4Address(value))


# -- the built method and the Twisted glue ---------------------------------------------------


@implementer(IEAPMethod)
class RADIUSEAPMethod:
    """
    The built C{eap-radius} method: one L{RADIUSClient} for the hub, a session per peer.

    @ivar ports: the listening UDP ports (one per address family), for L{close}.
    """

    def __init__(
        self,
        name: str,
        client: RADIUSClient,
        *,
        nasIdentifier: str = "ikehub",
        ports: Sequence[Any] = (),
        sockets: LazyUDPSockets | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.nasIdentifier = nasIdentifier
        self.ports = list(ports)
        #: Sockets opened on the first request instead of at build time (see L{listen}).
        self.sockets = sockets

    def newSession(
        self,
        peerIdentity: str,
        identityRound: bool,
        peerAddress: str | None = None,
        localAddress: str | None = None,
    ) -> RADIUSEAPSession:
        return RADIUSEAPSession(
            self.client,
            peerIdentity,
            identityRound,
            nasIdentifier=self.nasIdentifier,
            peerAddress=peerAddress,
            localAddress=localAddress,
        )

    def close(self) -> defer.Deferred[None]:
        """Stop listening on the client's UDP ports."""
        ports, self.ports = self.ports, []
        if self.sockets is not None:
            ports.extend(self.sockets.close())
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports]
        ).addCallback(lambda _: None)


class RADIUSClientProtocol(DatagramProtocol):
    """
    One UDP socket of the client (one per address family): datagrams in go to the client's
    L{RADIUSClient.datagramReceived}.
    """

    def __init__(self) -> None:
        self.client: RADIUSClient | None = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if self.client is not None:
            self.client.datagramReceived(datagram, addr)


class _GlobalReactor:
    """The global reactor, imported only when first used (so that building does not)."""

    def __getattr__(self, name: str) -> Any:
        from twisted.internet import reactor

        return getattr(reactor, name)


class LazyUDPSockets:
    """
    The client's UDP sockets (one per address family), bound on the first datagram sent
    rather than when the method is built: C{ikehub check} builds every plugin without a
    reactor and must neither bind sockets nor install a reactor.

    @param reactor: an C{IReactorUDP}, or C{None} for the global reactor (imported on first
        use).
    """

    def __init__(self, reactor: Any, families: Iterable[int]) -> None:
        self.reactor = reactor
        self.families = sorted(set(families))
        self.protocols: dict[int, RADIUSClientProtocol] = {}
        self.ports: list[Any] = []
        self.client: RADIUSClient | None = None
        self.closed = False

    @property
    def opened(self) -> bool:
        return bool(self.ports)

    def open(self) -> None:
        """Bind the sockets (once); raises what C{listenUDP} raises."""
        if self.ports or self.closed:
            return
        reactor = self.reactor
        if reactor is None:
            from twisted.internet import reactor  # type: ignore[no-redef]
        for family in self.families:
            protocol = RADIUSClientProtocol()
            protocol.client = self.client
            interface = "::" if family == 6 else ""
            self.ports.append(reactor.listenUDP(0, protocol, interface=interface))
            self.protocols[family] = protocol

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        self.open()
        protocol = self.protocols.get(ipaddress.ip_address(address[0]).version)
        if protocol is not None and protocol.transport is not None:
            protocol.transport.write(data, address)

    def close(self) -> list[Any]:
        """Never open again; returns the ports that were open, for the caller to stop."""
        self.closed = True
        ports, self.ports = self.ports, []
        self.protocols = {}
        return ports


def listen(
    reactor: Any,
    clock: Any,
    servers: Sequence[RADIUSServer],
    *,
    timeout: float,
    retries: int,
    lazy: bool = False,
) -> tuple[RADIUSClient, list[Any] | LazyUDPSockets]:
    """
    Bind an ephemeral UDP port for each address family the servers use and make the
    client that sends through them.

    With C{lazy}, nothing is bound now: the ports are bound on the first request (through
    the returned L{LazyUDPSockets}), and C{reactor} and C{clock} may be C{None} for the
    global reactor, which is then only imported when first needed.

    @return: the client and the listening ports, or with C{lazy} the L{LazyUDPSockets}.
    """
    if lazy:
        sockets = LazyUDPSockets(reactor, (server.family for server in servers))
        lazyClient = RADIUSClient(
            servers,
            sockets.send,
            clock if clock is not None else _GlobalReactor(),
            timeout=timeout,
            retries=retries,
        )
        sockets.client = lazyClient
        return lazyClient, sockets
    protocols: dict[int, RADIUSClientProtocol] = {}
    ports = []
    for family in sorted({server.family for server in servers}):
        protocol = RADIUSClientProtocol()
        interface = "::" if family == 6 else ""
        ports.append(reactor.listenUDP(0, protocol, interface=interface))
        protocols[family] = protocol

    def send(data: bytes, address: tuple[str, int]) -> None:
        transport = protocols[ipaddress.ip_address(address[0]).version].transport
        if transport is not None:
            transport.write(data, address)

    client = RADIUSClient(servers, send, clock, timeout=timeout, retries=retries)
    for protocol in protocols.values():
        protocol.client = client
    return client, ports
