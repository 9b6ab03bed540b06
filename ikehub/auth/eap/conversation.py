"""
The authenticator side of RFC 3748: one peer's EAP conversation, from the first Request to
the final EAP-Success or EAP-Failure.

An L{EAPConversation} is sans-IO: L{EAPConversation.start} returns the first Request as
bytes and L{EAPConversation.receive} turns each Response into an outcome value. It does not
know about IKE; the IKE layer carries the bytes in EAP payloads (RFC 7296 section 2.16).

Rules it enforces, whatever the method:
 - Identifiers: every new Request gets the next identifier (modulo 256) after a random
   start. A Response whose identifier is not the outstanding Request's is silently
   discarded (RFC 3748 section 4.1): L{receive} answers L{Continue} with the I{same}
   outstanding Request, so the IKE layer can resend it. A Notification Response is
   discarded the same way, because this server never sends a Notification Request and
   RFC 3748 section 5.2 only allows one as an answer to such a Request. After
   C{maxDiscarded} discarded packets the conversation fails.
 - Only Responses come from a peer: a Request, Success or Failure from it fails the
   conversation, and so does any packet that does not parse (L{EAPParseError}).
 - A Nak (RFC 3748 section 5.3.1) refuses the only method this conversation offers, so
   it fails with C{"peer refused <method>"}; a Nak to the Identity Request, or a Response
   of some other Type than the Request's, is a protocol violation and fails too.
 - At most C{maxRounds} (50) Responses are processed; a peer that keeps a conversation
   going longer fails.
 - Once finished, the conversation answers every further packet with its final outcome.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.logger import Logger

from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPParseError, EAPType

__all__ = [
    "MAX_DISCARDED",
    "MAX_ROUNDS",
    "Continue",
    "EAPConversation",
    "EAPServerMethod",
    "Failed",
    "Outcome",
    "Succeeded",
]

#: The most Responses one conversation processes (discarded ones included).
MAX_ROUNDS = 50
#: The most Responses discarded (wrong identifier, stray Notification) before giving up.
MAX_DISCARDED = 3


@dataclass(frozen=True, slots=True)
class Continue:
    """
    The conversation goes on: send C{request} to the peer and wait for its Response.

    A method returns it with any identifier (the conversation assigns the real one);
    L{EAPConversation} returns it with the identifier set, and C{message} is its bytes.
    """

    request: EAPPacket

    @property
    def message(self) -> bytes:
        return self.request.toBytes()


@dataclass(frozen=True, slots=True)
class Succeeded:
    """
    The peer is authenticated.

    From a method only C{msk} is set: the Master Session Key (RFC 3748 section 7.10), or
    C{None} for a method that derives no keys (EAP-MD5). From L{EAPConversation},
    C{message} is also the EAP-Success packet to send and C{identity} the authenticated
    EAP identity.
    """

    msk: bytes | None = field(default=None, repr=False)
    message: bytes = b""
    identity: str | None = None
    #: Groups an external server (RADIUS Class) put the peer in, for the PAD to match.
    groups: tuple[str, ...] = ()
    #: A virtual IP an external server assigned (RADIUS Framed-IP-Address), as text.
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """
    The peer is not authenticated (or broke the protocol).

    C{reason} is for logs and never contains a password, hash or key. From
    L{EAPConversation}, C{message} is the EAP-Failure packet to send and C{identity} the
    EAP identity the peer claimed, if it got that far.
    """

    reason: str
    message: bytes = b""
    identity: str | None = None


Outcome = Continue | Succeeded | Failed


class EAPServerMethod:
    """
    The server side of one EAP method for one conversation.

    Subclasses set C{eapType} and C{name} (the configuration name, like C{"eap-md5"}) and
    implement L{start} and L{handle}. The conversation has already checked the Code, the
    identifier and the Type of every Response it passes to L{handle}; a method checks
    its own Type-Data and turns anything wrong into L{Failed}, never an exception.
    """

    eapType: int
    name: str

    def start(self, identifier: int) -> EAPPacket:
        """The first Request of this method, with this EAP identifier."""
        raise NotImplementedError

    def handle(self, response: EAPPacket) -> Outcome:
        """
        The peer's Response to this method's last Request. Requests in a returned
        L{Continue} get their identifier from the conversation.
        """
        raise NotImplementedError


MethodFactory = Callable[[str], EAPServerMethod]


class EAPConversation:
    """
    One peer's EAP conversation on the authenticator side.

    @param methodFactory: called once with the peer's identity (the EAP identity, or
        C{peerIdentity} without an identity round) to make the method to run.
    @param identityRound: start with an EAP Identity Request (RFC 3748 section 5.1)
        rather than going straight to the method.
    @param peerIdentity: the identity to run the method for when there is no identity
        round (in IKEv2, the initiator's IDi). With an identity round it is not used: the
        EAP identity is what the method authenticates, and whether it may differ from
        IDi is the PAD's decision, not EAP's.
    @param maxRounds: the most Responses processed before failing.
    @param maxDiscarded: the most Responses discarded before failing.
    @param firstIdentifier: the first EAP identifier; random if C{None}.
    """

    log = Logger()

    def __init__(
        self,
        methodFactory: MethodFactory,
        identityRound: bool,
        peerIdentity: str | None,
        *,
        firstIdentifier: int | None = None,
        maxRounds: int = MAX_ROUNDS,
        maxDiscarded: int = MAX_DISCARDED,
    ) -> None:
        if not identityRound and not peerIdentity:
            raise ValueError("without an identity round the peer's identity must be given")
        if firstIdentifier is None:
            firstIdentifier = secrets.randbelow(256)
        if not 0 <= firstIdentifier <= 0xFF:
            raise ValueError(f"EAP identifier {firstIdentifier} is not 0..255")
        self.methodFactory = methodFactory
        self.identityRound = identityRound
        self.identity = None if identityRound else peerIdentity
        self.method: EAPServerMethod | None = None
        self.maxRounds = maxRounds
        self.maxDiscarded = maxDiscarded
        self.rounds = 0
        self.discarded = 0
        self._nextIdentifier = firstIdentifier
        self._outstanding: EAPPacket | None = None
        self._methodAnswered = False
        self._final: Succeeded | Failed | None = None

    @property
    def finished(self) -> bool:
        return self._final is not None

    def start(self) -> bytes:
        """
        The first Request. Calling it again returns the outstanding Request unchanged.
        """
        if self._outstanding is None:
            identifier = self._takeIdentifier()
            if self.identityRound:
                self._outstanding = EAPPacket(EAPCode.REQUEST, identifier, EAPType.IDENTITY)
            else:
                self._outstanding = self._startMethod(self.identity or "", identifier)
        return self._outstanding.toBytes()

    def receive(self, data: bytes) -> Outcome:
        """
        Process the peer's next EAP packet. Never raises for any bytes.
        """
        if self._final is not None:
            return self._final
        if self._outstanding is None:
            return self._fail("a Response arrived before the first Request was sent")
        self.rounds += 1
        if self.rounds > self.maxRounds:
            return self._fail(f"more than {self.maxRounds} EAP rounds")
        try:
            packet = EAPPacket.fromBytes(data)
        except EAPParseError as e:
            return self._fail(f"malformed EAP packet: {e.reason}")
        if packet.code != EAPCode.RESPONSE:
            return self._fail(
                f"the peer sent an EAP {EAPCode(packet.code).name.title()}; "
                "only Responses are valid from a peer"
            )
        if packet.identifier != self._outstanding.identifier:
            return self._discard(
                self._outstanding,
                f"EAP identifier {packet.identifier} does not match the outstanding "
                f"Request's {self._outstanding.identifier}",
            )
        if packet.type == EAPType.NOTIFICATION and self._outstanding.type != packet.type:
            return self._discard(
                self._outstanding, "a Notification Response answers no Notification Request"
            )
        if self.method is None:
            return self._identityResponse(packet)
        return self._methodResponse(self.method, packet)

    # -- the two phases ------------------------------------------------------------------

    def _identityResponse(self, packet: EAPPacket) -> Outcome:
        if packet.type == EAPType.NAK:
            return self._fail("the peer sent a Nak to the Identity Request")
        if packet.type != EAPType.IDENTITY:
            return self._fail(f"EAP Type {packet.type} does not answer the Identity Request")
        try:
            identity = packet.data.decode("utf-8")
        except UnicodeDecodeError:
            return self._fail("the EAP identity is not UTF-8")
        if not identity:
            return self._fail("the peer sent an empty EAP identity")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in identity):
            return self._fail("the EAP identity contains control characters")
        self.identity = identity
        self._outstanding = self._startMethod(identity, self._takeIdentifier())
        return Continue(self._outstanding)

    def _methodResponse(self, method: EAPServerMethod, packet: EAPPacket) -> Outcome:
        if packet.type == EAPType.NAK:
            proposed = ", ".join(str(t) for t in packet.data if t) or "none"
            when = "" if not self._methodAnswered else " after answering it"
            return self._fail(
                f"peer refused {method.name}{when} (it proposes EAP types: {proposed})"
            )
        if packet.type != method.eapType:
            return self._fail(
                f"EAP Type {packet.type} does not answer a {method.name} Request "
                f"(Type {method.eapType})"
            )
        self._methodAnswered = True
        try:
            outcome = method.handle(packet)
        except Exception:  # noqa: BLE001
            # Fail closed: a bug in a method must not authenticate anyone nor escape.
            self.log.failure("EAP method {method} raised", method=method.name)
            return self._fail(f"internal error in {method.name}")
        if isinstance(outcome, Continue):
            request = dataclasses.replace(outcome.request, identifier=self._takeIdentifier())
            self._outstanding = request
            return Continue(request)
        finalIdentifier = packet.identifier
        if isinstance(outcome, Succeeded):
            self._final = Succeeded(
                outcome.msk,
                EAPPacket(EAPCode.SUCCESS, finalIdentifier, None).toBytes(),
                self.identity,
            )
            return self._final
        return self._fail(outcome.reason)

    # -- helpers ---------------------------------------------------------------------------

    def _startMethod(self, identity: str, identifier: int) -> EAPPacket:
        self.method = self.methodFactory(identity)
        request = self.method.start(identifier)
        if request.identifier != identifier:
            request = dataclasses.replace(request, identifier=identifier)
        return request

    def _takeIdentifier(self) -> int:
        identifier = self._nextIdentifier
        self._nextIdentifier = (identifier + 1) & 0xFF
        return identifier

    def _discard(self, outstanding: EAPPacket, why: str) -> Outcome:
        self.discarded += 1
        if self.discarded > self.maxDiscarded:
            return self._fail(f"{why} (and {self.maxDiscarded} discarded before)")
        return Continue(outstanding)

    def _fail(self, reason: str) -> Failed:
        """
        End with an EAP-Failure. Its identifier is the outstanding Request's, which is
        what the peer's Response carried (RFC 3748 section 4.2).
        """
        identifier = self._outstanding.identifier if self._outstanding is not None else 0
        self._final = Failed(
            reason, EAPPacket(EAPCode.FAILURE, identifier, None).toBytes(), self.identity
        )
        return self._final
