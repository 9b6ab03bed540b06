"""
The IKE endpoint: every IKE datagram the hub receives enters here, whatever its SA.

It is sans-IO: it is given datagrams with the address they came from, an injected
C{IReactorTime} for timers, and a C{send(datagram, peer, path)} callable for what it emits. It owns
the registry of IKE SAs keyed by our SPI (no scans), the half-open accounting that decides when to
demand cookies, the message-ID windows, and retransmission of our own requests. The exchanges are
in L{ResponderExchanges} and L{InitiatorExchanges}.

Bad input never raises out of L{IKEEndpoint.datagramReceived}: it is dropped and counted, or
answered with the notify RFC 7296 prescribes.
"""

import hashlib
import os
import struct
from typing import Callable, Hashable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from ikehub.crypto.errors import CryptoError
from ikehub.ike.cookies import CookieJar
from ikehub.ike.counters import Counters, RateLimiter
from ikehub.ike.createchild import CreateChildExchanges
from ikehub.ike.fragments import FragmentReassembler
from ikehub.ike.initiator import InitiatorExchanges
from ikehub.ike.liveness import LivenessChecks
from ikehub.ike.rekey import RekeyInitiator
from ikehub.ike.responder import ResponderExchanges
from ikehub.ike.sa import ZERO_SPI, IKESA, IKEState, PendingRequest
from ikehub.ike.settings import IKESettings
from ikehub.wire.constants import (
    IKE_HEADER_LENGTH,
    ExchangeType,
    HeaderFlag,
    NotifyType,
    PayloadType,
    ProtocolId,
)
from ikehub.wire.errors import InvalidMajorVersion, ParseError
from ikehub.wire.header import IKEHeader
from ikehub.wire.message import Message, decodePayloadChain, encodeMessage
from ikehub.wire.payloads import DeletePayload, NotifyPayload, SKFPayload, SKPayload

#: A path is the network glue's opaque token for "how this datagram travelled" (which local
#: socket, whether framed with the non-ESP marker). The endpoint hands it back when answering, so
#: a reply leaves the way the request came in.
Path = Hashable

#: How an endpoint hands a datagram to the network: (datagram, (host, port), path).
SendFunction = Callable[[bytes, tuple[str, int], Path], None]

_EXCHANGE_NAMES = {int(e): e.name for e in ExchangeType}
#: States in which an authenticated IKE SA still answers its peer's requests.
_ACCEPTS_REQUESTS = frozenset({IKEState.ESTABLISHED, IKEState.DELETING, IKEState.REKEYED})
#: Seconds between two INVALID_SPI notifies to one peer.
INVALID_SPI_INTERVAL = 10.0
_INITIATOR = int(HeaderFlag.INITIATOR)
_RESPONSE = int(HeaderFlag.RESPONSE)
_SKF = int(PayloadType.SKF)
#: What a datagram adds around an IKE message we send: IPv4 or IPv6 header, UDP header and
#: the 4-byte non-ESP marker (counted on every path, so a message that fits on port 500 also
#: fits once it moves to 4500).
_IPV4_OVERHEAD = 20 + 8 + 4
_IPV6_OVERHEAD = 40 + 8 + 4


def requestDigest(datagram: bytes) -> bytes:
    """
    A short fingerprint of a request, to recognise a byte-identical retransmission without keeping
    the request itself.
    """
    return hashlib.blake2b(datagram, digest_size=16).digest()


class IKEEndpoint(
    CreateChildExchanges,
    RekeyInitiator,
    LivenessChecks,
    ResponderExchanges,
    InitiatorExchanges,
):
    log = Logger()

    def __init__(
        self,
        settings: IKESettings,
        pad,
        sad,
        clock,
        send: SendFunction,
        floatPath: Path = "natt",
        auth=None,
    ) -> None:
        self.settings = settings
        if auth is None:
            from ikehub.auth.builtin import PSKAuthenticator
            from ikehub.auth.registry import AuthRegistry

            auth = AuthRegistry({"psk": PSKAuthenticator()}, {})
        #: The authenticators and EAP methods by name, the hub's signer and CERTREQ
        #: (L{ikehub.auth.registry.AuthRegistry}); PSK only unless given.
        self.auth = auth
        self.pad = pad
        self.sad = sad
        self.clock = clock
        self._send = send
        #: Where an initiator moves when it detects a NAT (RFC 7296 section 2.23).
        self.floatPath = floatPath
        #: Debugging only (C{save_keys}): called with every IKE SA once its keys exist.
        self.keysDerived: Callable[[IKESA], None] | None = None
        #: Every IKE SA by our own SPI.
        self.sas: dict[bytes, IKESA] = {}
        #: Responder SAs that have not finished IKE_AUTH, by (SPIi, peer): finds retransmitted
        #: IKE_SA_INIT requests, counts toward the cookie threshold, and expires oldest first
        #: (insertion order is creation order).
        self.halfOpen: dict[tuple, IKESA] = {}
        #: How many entries of C{halfOpen} each source IP address has, kept as entries come and
        #: go (never counted by a scan): the per-source cookie and block thresholds.
        self.halfOpenBySource: dict[str, int] = {}
        #: Established responder SAs by authenticated identity, for the PAD's duplicates
        #: policy and INITIAL_CONTACT.
        self.byIdentity: dict[str, list[IKESA]] = {}
        #: Established IKE SAs by the peer's current (host, port): which IKE SA to tell when
        #: ESP arrives from there for a CHILD SA we do not have (RFC 7296 section 1.5). The
        #: port matters: many peers may share one address behind a NAT.
        self.byPeer: dict[tuple[str, int], IKESA] = {}
        self.counters = Counters()
        self.cookies = CookieJar(clock)
        self._invalidSpiAnswers = RateLimiter(clock, settings.invalidSpiRate)
        self._invalidSpiNotifies = RateLimiter(clock, settings.invalidSpiRate)
        self._dropLog = RateLimiter(clock, 2.0, 10.0)
        #: Peers' fragmented messages being put back together (RFC 7383).
        self.fragments = FragmentReassembler(
            clock,
            self.counters,
            self._drop,
            settings.fragmentMaxCount,
            settings.fragmentMaxBytes,
            settings.fragmentTimeout,
            settings.fragmentMaxTotalBytes,
            settings.fragmentMaxSourceBytes,
        )
        self._sweepCall = None
        self._drainWaiters: list[Deferred] = []
        #: Set by L{shutdown}: new IKE SAs are no longer accepted.
        self.shuttingDown = False
        # One Logger for this endpoint: the class attribute builds a new one on every access.
        self.log = Logger(f"{type(self).__module__}.{type(self).__name__}", self)
        self.prepareResponder()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """
        Begin expiring half-open SAs (a single timer for all of them, not one per SA).
        """
        if self._sweepCall is None:
            self._sweepCall = self.clock.callLater(1.0, self._sweepHalfOpen)
        self.startLiveness()

    def stop(self) -> None:
        if self._sweepCall is not None and self._sweepCall.active():
            self._sweepCall.cancel()
        self._sweepCall = None
        self.stopLiveness()
        for sa in list(self.sas.values()):
            self._cancelPending(sa)
        self.fragments.stop()

    def _sweepHalfOpen(self) -> None:
        self._sweepCall = None
        deadline = self.clock.seconds() - self.settings.halfOpenTimeout
        for sa in list(self.halfOpen.values()):
            if sa.createdAt > deadline:
                break
            self.counters.increment("half_open_expired")
            self.removeSa(sa, "IKE_AUTH did not arrive in time")
        self.start()

    def shutdown(self, timeout: float = 2.0) -> Deferred:
        """
        Delete every established IKE SA with an INFORMATIONAL Delete, as a peer would expect on a
        clean stop; fires when all are answered or after C{timeout} seconds.

        From now on IKE_SA_INIT requests are dropped unanswered: a peer told of the Delete
        often comes straight back (strongSwan's close_action), and an IKE SA begun with a hub
        about to exit would only make it wait for the IKE_AUTH answer that never comes, where
        an unanswered IKE_SA_INIT is retransmitted until the restarted hub hears it.
        """
        self.shuttingDown = True
        for sa in list(self.sas.values()):
            if sa.state is IKEState.ESTABLISHED:
                self.deleteIkeSa(sa)
            elif sa.state is not IKEState.DELETING:
                self.removeSa(sa, "hub shutting down")
        if not self._deleting():
            return succeed(None)
        waiter: Deferred = Deferred()
        self._drainWaiters.append(waiter)
        self.clock.callLater(timeout, self._drained)
        return waiter

    def _deleting(self) -> bool:
        return any(sa.state is IKEState.DELETING for sa in self.sas.values())

    def _drained(self) -> None:
        waiters, self._drainWaiters = self._drainWaiters, []
        for sa in list(self.sas.values()):
            self.removeSa(sa, "hub shutting down")
        for waiter in waiters:
            waiter.callback(None)

    # -- receiving --------------------------------------------------------------------------

    def datagramReceived(self, data: bytes, peer: tuple[str, int], path: Path) -> None:
        """
        Handle one IKE message (without the non-ESP marker) from C{peer}, arrived by C{path}.
        Never raises.
        """
        try:
            self._dispatch(data, peer, path)
        except Exception:
            self.counters.increment("internal_error")
            self.log.failure("Internal error handling an IKE datagram from {peer}", peer=peer[0])

    def _drop(self, reason: str, peer: tuple[str, int]) -> None:
        self.counters.increment("drop_" + reason)
        if self._dropLog.allow():
            self.log.debug(
                "Dropped IKE datagram from {peer}: {reason}",
                peer=f"{peer[0]}:{peer[1]}",
                reason=reason,
            )

    def _dispatch(self, data: bytes, peer: tuple[str, int], path: Path) -> None:
        if len(data) < IKE_HEADER_LENGTH:
            return self._drop("truncated", peer)
        try:
            header = IKEHeader.fromBytes(data)
        except InvalidMajorVersion:
            return self._answerInvalidMajorVersion(data, peer, path)
        except ParseError:
            return self._drop("malformed_header", peer)
        if header.length != len(data):
            return self._drop("bad_length", peer)

        # The flags are read once here rather than through the header's properties, a call each.
        flags = header.flags
        fromInitiator = bool(flags & _INITIATOR)
        # Our SPI is the responder's if the sender is the original initiator.
        ourSpi = header.spiR if fromInitiator else header.spiI
        if flags & _RESPONSE:
            sa = self.sas.get(ourSpi)
            pending = sa.pending if sa is not None else None
            if (
                pending is None
                or pending.messageId != header.messageId
                or pending.exchangeType != header.exchangeType
                or sa.isInitiator == fromInitiator
            ):
                return self._drop("unexpected_response", peer)
            return self._handleResponse(sa, data, header, peer, path)

        if header.exchangeType == ExchangeType.IKE_SA_INIT:
            if not fromInitiator or header.spiR != ZERO_SPI or header.messageId != 0:
                return self._drop("bad_ike_sa_init_header", peer)
            if self.shuttingDown:
                return self._drop("shutting_down", peer)
            return self.receiveInitRequest(data, header, peer, path)

        sa = self.sas.get(ourSpi)
        if sa is None or sa.isInitiator == fromInitiator or sa.remoteSpi != (
            header.spiI if fromInitiator else header.spiR
        ):
            self._drop("unknown_spi", peer)
            return self._answerInvalidIkeSpi(header, peer, path)
        return self._handleRequest(sa, data, header, peer, path)

    def _handleRequest(self, sa: IKESA, data, header: IKEHeader, peer, path) -> None:
        messageId = header.messageId
        if messageId != sa.nextPeerRequestId:
            if messageId + 1 == sa.nextPeerRequestId and sa.lastResponse is not None:
                if requestDigest(data) == sa.lastRequestHash:
                    self.counters.increment("retransmitted_request")
                    self._sendAll(sa.lastResponse, peer, path)
                    return
                if header.nextPayload == _SKF:
                    return self._retransmittedFragment(sa, data, header, peer, path)
            return self._drop("message_id_outside_window", peer)
        state = sa.state
        if state is IKEState.HALF_OPEN:
            allowed = header.exchangeType == ExchangeType.IKE_AUTH or (
                # A peer may give up in the middle of EAP with an INFORMATIONAL (strongSwan
                # does, after an MSCHAPv2 failure); it is protected, so it is heard.
                header.exchangeType == ExchangeType.INFORMATIONAL
                and sa.authState is not None
                and sa.authState.session is not None
            )
        else:
            # Once authenticated, IKE_AUTH is over; CREATE_CHILD_SA on an SA being deleted or
            # rekeyed is answered TEMPORARY_FAILURE by its handler.
            allowed = (
                state in _ACCEPTS_REQUESTS and header.exchangeType != ExchangeType.IKE_AUTH
            )
        if not allowed:
            return self._drop("exchange_not_allowed_in_state", peer)
        if sa.authState is not None and sa.authState.busy:
            # Our answer to the previous request is still being decided (an authenticator
            # that answers later); the peer retransmits until it comes.
            return self._drop("request_while_authenticating", peer)
        try:
            message = Message.fromBytes(data, header)
        except ParseError:
            return self._drop("malformed", peer)
        sk = message.sk
        if not isinstance(sk, SKPayload) or sa.skIn is None:
            if isinstance(sk, SKFPayload) and sa.skIn is not None:
                return self._requestFragment(sa, data, header, sk, peer, path)
            return self._drop("unprotected_request", peer)
        try:
            payloads = sa.skIn.unprotect(data, message)
        except CryptoError:
            return self._drop("integrity", peer)
        except ParseError as e:
            return self._malformedRequest(sa, data, header, e, peer, path)
        self._acceptRequest(sa, data, messageId, peer, path)
        handler = getattr(self, "handle_" + _EXCHANGE_NAMES.get(header.exchangeType, "UNKNOWN"))
        handler(sa, header, payloads)

    def _malformedRequest(self, sa: IKESA, data, header: IKEHeader, error, peer, path) -> None:
        """
        An authenticated request that is malformed inside: the peer deserves the RFC's answer.
        """
        self._acceptRequest(sa, data, header.messageId, peer, path)
        notifyType = error.notifyType or NotifyType.INVALID_SYNTAX
        self.respond(sa, header.exchangeType, [self.notify(notifyType, error.notifyData)])
        if sa.state is IKEState.HALF_OPEN:
            self.removeSa(sa, "malformed IKE_AUTH request")

    def _requestFragment(self, sa: IKESA, data, header: IKEHeader, skf, peer, path) -> None:
        """
        One SKF fragment of the peer's next request (RFC 7383): kept once verified; the last
        one makes the request, which is then handled like any other. The window and the
        retransmission fingerprint (fragment 1's) move only then.
        """
        if not sa.fragmentSize:
            return self._drop("fragment_unnegotiated", peer)
        done = self.fragments.receive(sa, False, data, header, skf, peer)
        if done is None:
            return
        self._logReassembled(sa, header, done, "request", peer)
        try:
            payloads = decodePayloadChain(done.firstPayload, done.chain)
        except ParseError as e:
            return self._malformedRequest(sa, done.first, header, e, peer, path)
        self._acceptRequest(sa, done.first, header.messageId, peer, path)
        handler = getattr(self, "handle_" + _EXCHANGE_NAMES.get(header.exchangeType, "UNKNOWN"))
        handler(sa, header, payloads)

    def _retransmittedFragment(self, sa: IKESA, data, header: IKEHeader, peer, path) -> None:
        """
        A fragment of the request we answered last. RFC 7383 section 2.6.1: only fragment 1
        makes us resend our (possibly fragmented) response, and only once it verifies, so a
        peer retransmitting its request in ten fragments gets the answer once, and nobody
        else can make us send it.
        """
        if not sa.fragmentSize or sa.skIn is None:
            return self._drop("fragment_unnegotiated", peer)
        try:
            # The header names SKF as the first payload, which ends the chain: it is the SKF.
            skf = Message.fromBytes(data, header).sk
        except ParseError:
            return self._drop("malformed", peer)
        if skf.fragmentNumber != 1:
            return self._drop("fragment_retransmission_ignored", peer)
        try:
            sa.skIn.open(data, skf.encrypted)
        except CryptoError:
            return self._drop("fragment_integrity", peer)
        self.counters.increment("retransmitted_request")
        self._sendAll(sa.lastResponse, peer, path)

    def _logReassembled(self, sa: IKESA, header: IKEHeader, done, kind: str, peer) -> None:
        """
        Log a completed reassembly naming where its last fragment came from: a request may
        be the one that moves the SA to a new address or port (a client floating to 4500
        sends its IKE_AUTH there), which the SA learns only after this line.
        """
        self.log.info(
            "Reassembled {exchange} {kind} {msgid} from {peer} from {fragments} fragments "
            "({rejected} forged or corrupt fragments dropped)",
            event="ike_fragments_reassembled",
            exchange=_EXCHANGE_NAMES.get(header.exchangeType, str(header.exchangeType)),
            kind=kind,
            msgid=header.messageId,
            fragments=done.fragments,
            rejected=done.rejected,
            **{**sa.describe(), "peer": f"{peer[0]}:{peer[1]}"},
        )

    def _acceptRequest(self, sa: IKESA, data, messageId, peer, path) -> None:
        """
        An authenticated request moves the window and, if the peer's NAT mapping moved, the SA
        follows it (RFC 7296 section 2.23: only authenticated messages may move it). With MOBIKE
        it does not: RFC 4555 section 3.8 leaves moving to UPDATE_SA_ADDRESSES, and the answer
        goes back where the request came from (C{replyTo}).
        """
        sa.nextPeerRequestId = messageId + 1
        sa.lastRequestHash = requestDigest(data)
        if sa.reassembly is not None:
            # Fragments of this request that came whole after all are of no more use.
            self.fragments.forgetRequest(sa)
        sa.lastResponse = None
        sa.lastHeard = self.clock.seconds()
        sa.replyTo = None
        if sa.peer != peer or sa.path != path:
            if sa.mobike:
                sa.replyTo = (peer, path)
                self.counters.increment("mobike_request_from_elsewhere")
            else:
                self.movePeer(sa, peer, path)

    def movePeer(self, sa: IKESA, peer, path) -> None:
        """
        The IKE SA and its CHILD SAs talk to C{peer} by C{path} from now on: the ESP datapath
        reads each CHILD SA's address per packet, so outbound ESP follows at once; the peer
        index (C{byPeer}, for INVALID_SPI) follows too. A move between IPv4 and IPv6 (MOBIKE)
        changes the IP header our fragments must leave room for.
        """
        if self.byPeer.get(sa.peer) is sa:
            del self.byPeer[sa.peer]
            self.byPeer[peer] = sa
        if sa.fragmentSize and (":" in peer[0]) != (":" in sa.peer[0]):
            sa.fragmentSize = self.fragmentLimit(peer)
        sa.peer, sa.path = peer, path
        for child in sa.children:
            child.peer, child.path = peer, path

    def handle_UNKNOWN(self, sa: IKESA, header: IKEHeader, payloads) -> None:
        self.counters.increment("unknown_exchange")

    def _handleResponse(self, sa: IKESA, data, header: IKEHeader, peer, path) -> None:
        pending = sa.pending
        try:
            message = Message.fromBytes(data, header)
            sk = message.sk
            if header.exchangeType == ExchangeType.IKE_SA_INIT:
                if isinstance(sk, SKFPayload):
                    return self._drop("fragment_in_ike_sa_init", peer)
                payloads = message.payloads
            elif isinstance(sk, SKPayload) and sa.skIn is not None:
                payloads = sa.skIn.unprotect(data, message)
            elif isinstance(sk, SKFPayload) and sa.skIn is not None:
                if not sa.fragmentSize:
                    return self._drop("fragment_unnegotiated", peer)
                done = self.fragments.receive(sa, True, data, header, sk, peer)
                if done is None:
                    return
                self._logReassembled(sa, header, done, "response", peer)
                payloads = decodePayloadChain(done.firstPayload, done.chain)
            else:
                return self._drop("unprotected_response", peer)
        except (ParseError, CryptoError):
            # Keep waiting: a genuine answer may still come with our retransmission.
            return self._drop("bad_response", peer)
        self._cancelPending(sa)
        sa.lastHeard = self.clock.seconds()
        pending.onResponse(sa, header, payloads, data, peer, path)
        if sa.queued and sa.pending is None and sa.state is not IKEState.DEAD:
            self.sendRequest(sa, *sa.queued.pop(0))

    # -- answering --------------------------------------------------------------------------

    @staticmethod
    def notify(notifyType: int, data: bytes = b"", protocolId: int = ProtocolId.NONE, spi=b""):
        return NotifyPayload(protocolId, notifyType, spi, data)

    def respond(self, sa: IKESA, exchangeType: int, payloads) -> None:
        """
        Answer the request the SA just accepted, where it came from (RFC 7296 section 2.11),
        and keep the answer for retransmissions.
        """
        datagram = sa.sealForSending(
            exchangeType, sa.nextPeerRequestId - 1, payloads, response=True
        )
        sa.lastResponse = datagram
        replyTo = sa.replyTo
        peer, path = replyTo if replyTo is not None else (sa.peer, sa.path)
        if type(datagram) is not bytes:
            self._noteFragmented(sa, exchangeType, datagram, "response")
        self._sendAll(datagram, peer, path)

    def _sendAll(self, datagrams, peer, path) -> None:
        """Send a message: one datagram, or a tuple of fragments one after the other."""
        if type(datagrams) is bytes:
            self._send(datagrams, peer, path)
            return
        self.counters.increment("fragments_sent", len(datagrams))
        for datagram in datagrams:
            self._send(datagram, peer, path)

    def _noteFragmented(self, sa: IKESA, exchangeType: int, fragments, kind: str) -> None:
        """Count and log a message of ours that goes out in fragments (once, not per send)."""
        self.counters.increment("fragmented_messages_sent")
        self.log.info(
            "Sending {exchange} {kind} to {peer} in {fragments} fragments",
            event="ike_fragments_sent",
            exchange=_EXCHANGE_NAMES.get(exchangeType, str(exchangeType)),
            kind=kind,
            fragments=len(fragments),
            **sa.describe(),
        )

    def fragmentLimit(self, peer) -> int:
        """
        The largest IKE message we send whole to C{peer} once fragmentation is negotiated.

        C{fragment_size} is the whole IP datagram, as strongSwan's C{charon.fragment_size} is,
        because that is what has to fit the path MTU (RFC 7383 section 2.5.1). The IP header
        (20 bytes, 40 for IPv6), the UDP header (8) and the non-ESP marker (4) come off it.
        """
        overhead = _IPV6_OVERHEAD if ":" in peer[0] else _IPV4_OVERHEAD
        return self.settings.fragmentSize - overhead

    def sendPlain(self, header: IKEHeader, payloads, peer, path) -> bytes:
        """
        Send an unencrypted message (IKE_SA_INIT and the stateless error answers).
        """
        datagram = encodeMessage(header, payloads)
        self._send(datagram, peer, path)
        return datagram

    def _answerInvalidIkeSpi(self, header: IKEHeader, peer, path) -> None:
        """
        RFC 7296 section 2.21.4: a request for an IKE SA we do not have may be answered, outside
        any SA and rate-limited, so a peer that lost us (a hub restart) learns it quickly.
        """
        if not self._invalidSpiAnswers.allow():
            return
        self.counters.increment("sent_invalid_ike_spi")
        answer = IKEHeader(
            header.spiI,
            header.spiR,
            0,
            ExchangeType.INFORMATIONAL,
            int(HeaderFlag.RESPONSE),
            header.messageId,
        )
        self.sendPlain(answer, [self.notify(NotifyType.INVALID_IKE_SPI)], peer, path)

    def _answerInvalidMajorVersion(self, data, peer, path) -> None:
        self.counters.increment("drop_invalid_major_version")
        flags = data[19]
        if flags & HeaderFlag.RESPONSE or not self._invalidSpiAnswers.allow():
            return
        spiI, spiR = data[0:8], data[8:16]
        (messageId,) = struct.unpack_from("!I", data, 20)
        answer = IKEHeader(
            spiI, spiR, 0, data[18], int(HeaderFlag.RESPONSE), messageId
        )
        payload = self.notify(NotifyType.INVALID_MAJOR_VERSION, b"\x20")
        self.sendPlain(answer, [payload], peer, path)

    # -- our own requests ---------------------------------------------------------------------

    def sendRequest(self, sa: IKESA, exchangeType: int, payloads, onResponse, plain=False) -> None:
        """
        Send a request on C{sa} and retransmit it with exponential backoff until answered.
        """
        if sa.pending is not None:
            if sa.queued is None:
                sa.queued = []
            sa.queued.append((exchangeType, payloads, onResponse))
            return
        messageId = sa.nextRequestId
        sa.nextRequestId += 1
        if plain:
            datagram = encodeMessage(sa.header(exchangeType, messageId, response=False), payloads)
        else:
            datagram = sa.sealForSending(exchangeType, messageId, payloads, response=False)
            if type(datagram) is not bytes:
                self._noteFragmented(sa, exchangeType, datagram, "request")
        sa.pending = PendingRequest(messageId, datagram, exchangeType, onResponse)
        self._transmit(sa)

    def _transmit(self, sa: IKESA) -> None:
        pending = sa.pending
        self._sendAll(pending.datagram, sa.peer, sa.path)
        delay = self.settings.retransmitTimeout * self.settings.retransmitBase**pending.tries
        pending.timer = self.clock.callLater(delay, self._retransmit, sa)

    def _retransmit(self, sa: IKESA) -> None:
        pending = sa.pending
        if pending is None:
            return
        pending.timer = None
        if pending.tries >= self.settings.retransmitTries:
            self.counters.increment("peer_unresponsive")
            self.removeSa(sa, "peer did not answer our requests")
            return
        pending.tries += 1
        self.counters.increment("retransmitted")
        self._transmit(sa)

    def _cancelPending(self, sa: IKESA) -> None:
        """
        Our outstanding request is over (answered, superseded or abandoned): stop retransmitting
        it, and free the fragments of an answer to it that will no longer be wanted.
        """
        pending = sa.pending
        if pending is not None and pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        sa.pending = None
        if sa.reassembly is not None:
            self.fragments.forgetResponse(sa)

    # -- deleting -------------------------------------------------------------------------------

    def deleteIkeSa(self, sa: IKESA) -> None:
        """
        Delete an established IKE SA (and with it its CHILD SAs) with an INFORMATIONAL exchange.
        """
        if sa.state is not IKEState.ESTABLISHED:
            return self.removeSa(sa, "deleted locally")
        if sa.pending is not None:
            # One request at a time: the Delete supersedes whatever was outstanding or queued.
            self._cancelPending(sa)
        sa.queued = None
        sa.state = IKEState.DELETING
        self.sendRequest(
            sa,
            ExchangeType.INFORMATIONAL,
            [DeletePayload(ProtocolId.IKE, ())],
            lambda sa, *rest: self.removeSa(sa, "deleted by the hub"),
        )

    def replaceIkeSa(self, old: IKESA, new: IKESA) -> None:
        """
        A new IKE SA for the same identity supersedes C{old} (duplicates policy, or
        INITIAL_CONTACT): the old peer is told with one Delete, sent once and not waited for
        (it is usually the same device, gone or rebooted), and everything of the old SA goes
        at once, so its virtual IP is free for the new one.
        """
        if old.state in (IKEState.ESTABLISHED, IKEState.DELETING) and old.skOut is not None:
            self._cancelPending(old)
            datagram = old.seal(
                ExchangeType.INFORMATIONAL,
                old.nextRequestId,
                [DeletePayload(ProtocolId.IKE, ())],
                response=False,
            )
            old.nextRequestId += 1
            self._send(datagram, old.peer, old.path)
        self.counters.increment("ike_sa_replaced")
        self.removeSa(old, f"replaced by a new IKE SA from {new.peer[0]}:{new.peer[1]}")

    def deleteChildSa(self, child, makeBeforeBreak: bool = False) -> None:
        """
        Stop using a CHILD SA and tell the peer with an INFORMATIONAL Delete carrying our
        inbound SPI (RFC 7296 section 1.4.1). At once, or, with C{makeBeforeBreak} (the old SA
        of a rekey), once the peer has answered: until it has read the Delete it may still send
        on the old SA, and those packets must not be lost.
        """
        sa = self.sas.get(child.ikeSpi)
        if sa is None or child not in sa.children:
            self.sad.remove(child)
            return
        if not makeBeforeBreak or sa.state is not IKEState.ESTABLISHED:
            self.forgetChild(sa, child)
        if sa.state is IKEState.ESTABLISHED:
            self.sendRequest(
                sa,
                ExchangeType.INFORMATIONAL,
                [DeletePayload(ProtocolId.ESP, (child.inboundSpi,))],
                lambda *answer: self._childDeleted(child),
            )

    def _childDeleted(self, child) -> None:
        sa = self.sas.get(child.ikeSpi)
        if sa is not None and child in sa.children:
            self.forgetChild(sa, child)
        else:
            self.sad.remove(child)

    def forgetChild(self, sa: IKESA, child) -> None:
        """
        Take C{child} out of C{sa} and the SAD. If it was rekeyed by the peer, the CHILD SA that
        replaced it starts carrying our outbound traffic now.
        """
        if child in sa.children:
            sa.children.remove(child)
        self.sad.remove(child)
        successor = child.replacedBy
        if successor is not None and successor.predecessor is child:
            successor.predecessor = None
            self.sad.activateOutbound(successor)

    def removeSa(self, sa: IKESA, reason: str) -> None:
        """
        Forget an IKE SA at once: its CHILD SAs leave the SAD and its address leases return.
        """
        if sa.state is IKEState.DEAD:
            return
        wasEstablished = sa.state in (IKEState.ESTABLISHED, IKEState.DELETING)
        sa.state = IKEState.DEAD
        self._cancelPending(sa)
        if sa.reassembly is not None:
            self.fragments.forget(sa)
        sa.queued = None
        sa.ikeRekey = None
        if sa.lingerCall is not None:
            if sa.lingerCall.active():
                sa.lingerCall.cancel()
            sa.lingerCall = None
        if self.sas.get(sa.localSpi) is sa:
            del self.sas[sa.localSpi]
        if self.byPeer.get(sa.peer) is sa:
            del self.byPeer[sa.peer]
        if not sa.isInitiator:
            self.forgetHalfOpen(sa)
        if sa.uniqueKey is not None:
            same = self.byIdentity.get(sa.uniqueKey)
            if same is not None and sa in same:
                same.remove(sa)
                if not same:
                    del self.byIdentity[sa.uniqueKey]
            sa.uniqueKey = None
        state = sa.authState
        if state is not None:
            sa.authState = None
            # An EAP session waiting on a server (RADIUS) stops retransmitting for a dead SA.
            abort = getattr(state.session, "abort", None)
            if abort is not None:
                abort()
        for child in sa.children:
            self.sad.remove(child)
        sa.children = []
        for pool, address in sa.virtualIps:
            if pool is not None:  # an initiator's address was lent by the peer, not by us
                pool.release(address)
        sa.virtualIps = []
        if sa.isInitiator and sa.context is not None:
            self.abandonSetup(sa, reason)
        if wasEstablished:
            self.log.info(
                "IKE SA with {peer} ({identity}) deleted: {reason}",
                event="ike_sa_deleted",
                reason=reason,
                **sa.describe(),
            )
        if self._drainWaiters and not self._deleting():
            self.clock.callLater(0, self._drained)

    # -- ESP for SPIs we do not have ---------------------------------------------------------

    def indexPeer(self, sa: IKESA) -> None:
        """The SA is established: ESP from its peer's address can be answered on it."""
        self.byPeer[sa.peer] = sa

    def espUnknownSpi(self, spi: bytes, peer: tuple[str, int]) -> None:
        """
        ESP arrived from C{peer} for an SPI no CHILD SA of ours has (the datapath counted it).
        If we have an IKE SA with that address and port, tell the peer with an INVALID_SPI
        notify in an INFORMATIONAL request (RFC 7296 section 1.5; the notify carries no SPI
        field, the SPI is its data): at most once per INVALID_SPI_INTERVAL per IKE SA and
        C{invalidSpiRate} per second overall, never behind another outstanding request, since
        anyone can send ESP with a peer's address.

        A peer that restarted has no IKE SA with us, and one whose IKE SA we lost (our
        restart) is unknown here: both are left to the peer's own liveness checks.
        """
        sa = self.byPeer.get(peer)
        if sa is None or sa.state is not IKEState.ESTABLISHED:
            return
        now = self.clock.seconds()
        if (
            sa.pending is not None
            or now - sa.invalidSpiAt < INVALID_SPI_INTERVAL
            or not self._invalidSpiNotifies.allow()
        ):
            self.counters.increment("invalid_spi_rate_limited")
            return
        sa.invalidSpiAt = now
        self.counters.increment("sent_invalid_spi")
        self.sendRequest(
            sa,
            ExchangeType.INFORMATIONAL,
            [self.notify(NotifyType.INVALID_SPI, spi)],
            lambda *answer: None,
        )

    # -- half-open accounting ---------------------------------------------------------------

    def addHalfOpen(self, sa: IKESA) -> None:
        """
        Count a responder SA that answered IKE_SA_INIT until it completes IKE_AUTH or goes:
        under (SPIi, peer) and toward its source address's tally.
        """
        peer = sa.context
        self.halfOpen[(sa.spiI, peer)] = sa
        host = peer[0]
        self.halfOpenBySource[host] = self.halfOpenBySource.get(host, 0) + 1

    def forgetHalfOpen(self, sa: IKESA) -> None:
        """
        The SA is no longer half-open (established, failed, expired): take it out of both
        tallies; a source whose tally reaches zero leaves the map, so it cannot grow with
        addresses that come and go.
        """
        peer = sa.context
        key = (sa.spiI, peer)
        if self.halfOpen.get(key) is not sa:
            return
        del self.halfOpen[key]
        host = peer[0]
        left = self.halfOpenBySource[host] - 1
        if left:
            self.halfOpenBySource[host] = left
        else:
            del self.halfOpenBySource[host]

    def newSpi(self) -> bytes:
        while True:
            spi = os.urandom(8)
            if spi != ZERO_SPI and spi not in self.sas:
                return spi
