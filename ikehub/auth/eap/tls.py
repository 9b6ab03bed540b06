"""
EAP-TLS server (RFC 5216, with TLS 1.3 as RFC 9190 specifies), sans-IO.

The TLS handshake is OpenSSL's, through a pyOpenSSL C{Connection} on memory BIOs: each
reassembled message from the peer is written into the connection, the handshake is
stepped, and whatever TLS data OpenSSL produced is cut into EAP-TLS Requests. Nothing here
touches a socket, a reactor or a thread.

The exchange (TLS 1.2)::

    server                                   peer
    Start (S)                         ->
                                      <- ClientHello
    ServerHello .. ServerHelloDone    ->    (fragmented; each fragment is acknowledged)
                                      <- Certificate, ClientKeyExchange, CertificateVerify,
                                         ChangeCipherSpec, Finished
    ChangeCipherSpec, Finished        ->
                                      <- empty Response                   => Succeeded(msk)

With TLS 1.3 the server's Finished goes in its first flight, and after the peer's
Certificate/CertificateVerify/Finished the server sends the commitment message (one octet
of application data, 0x00, RFC 9190 section 2.5) instead; the peer's empty Response to it
ends the method with success.

Framing (RFC 5216 section 3.1): a Flags octet (L = length included, M = more fragments,
S = start), with L a four-octet TLS Message Length. Outgoing data is cut at
C{fragmentSize} octets of TLS data per Request; the first fragment (or the only packet)
carries L, every fragment but the last carries M, as strongSwan's charon does. Incoming
fragments are acknowledged with an empty Request and reassembled, up to
L{MAX_MESSAGE_LENGTH} octets and L{MAX_FRAGMENTS} fragments per message.

The peer must present a certificate. OpenSSL is told to ask for one and to fail the
handshake without one, but its own path validation is overridden: the chain is checked
after the handshake with L{ikehub.auth.certs.validatePeerCertificate}, the same policy
as a certificate in an IKE CERT payload, and the certificate must name the EAP identity
(L{ikehub.auth.certs.identityMatches}). A refusal at that point ends the method with
C{Failed} before the server's TLS 1.2 Finished or the TLS 1.3 commitment is sent; the
peer gets the EAP-Failure, not a TLS alert (pyOpenSSL cannot send a chosen alert after
the handshake). When OpenSSL itself fails the handshake and has an alert to send, the
alert is sent in one more Request, as RFC 5216 section 2.1.3 asks, and the peer's
Response to it ends the method with C{Failed}.

Keys (RFC 5216 section 2.3 and RFC 9190 section 2.3): 128 octets of Key_Material, the
MSK its first 64, the EMSK the next 64::

    TLS 1.2:  Key_Material = TLS-PRF-128(master_secret, "client EAP encryption",
                                         client.random || server.random)
              (the RFC 5705 exporter with that label and no context value)
    TLS 1.3:  Key_Material = TLS-Exporter("EXPORTER_EAP_TLS_Key_Material", 0x0D, 128)

TLS 1.3 and strongSwan 5.9 (the C{tls13_profile} option, L{TLS13_PROFILES}): strongSwan's
libtls (5.9.2 and later, 5.9.8 tested against this module with real clients) implements
EAP-TLS over TLS 1.3 as an early draft of RFC 9190 did, not as the RFC does:

  - its Key_Material is the TLS 1.3 exporter with the TLS 1.2 label and no context,
    C{TLS-Exporter("client EAP encryption", "", 128)} (libtls's C{tls_crypto.c} exports
    C{msk_label} = "client EAP encryption" with an empty context once the application keys
    are derived), so an RFC 9190 MSK makes the final IKE AUTH payloads disagree;
  - it knows no commitment message: a 5.9.8 peer that receives the one octet of application
    data crashes (SIGSEGV in libtls), so nothing but handshake messages may be sent;
  - its own server ends the method with EAP-Success right after the peer's Finished.

With C{tls13Profile="strongswan"} the server does exactly that: no commitment message, the
Key_Material above, and after the peer's Finished either the NewSessionTicket messages
OpenSSL insists on sending (which strongSwan's peer reads and acknowledges) or, when there are
none, success at once. The default, C{"rfc9190"}, is the RFC. The hub cannot tell the two kinds
of peer apart before it is too late (the difference shows only after the handshake), hence a
configuration choice; TLS 1.2 is the same in both profiles, and strongSwan's default maximum
version is 1.2.

There is no resumption: session tickets are disabled and the session cache is off, so
every handshake presents and validates a certificate. OpenSSL's TLS 1.3 server still
sends (stateful, never honoured) NewSessionTicket messages to a client that offers PSK
modes, and pyOpenSSL has no C{SSL_CTX_set_num_tickets} to stop it; they go out in the
same flight as, and before, the commitment message, which RFC 9190 section 2.1.1
allows. strongSwan's client does not offer PSK modes, and ignores tickets anyway.
"""

from __future__ import annotations

import datetime
import ipaddress
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL, crypto

from ikehub.auth.certs import (
    CertificateError,
    TrustStore,
    ValidatedPeer,
    identityMatches,
    validatePeerCertificate,
)
from ikehub.auth.eap.conversation import Continue, EAPServerMethod, Failed, Outcome, Succeeded
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.wire.constants import IDType
from ikehub.wire.identity import Identity

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ikehub.auth.credentials import HubCredentials

__all__ = [
    "DEFAULT_FRAGMENT_SIZE",
    "FLAG_LENGTH",
    "FLAG_MORE",
    "FLAG_START",
    "KEY_MATERIAL_LENGTH",
    "MAX_FRAGMENTS",
    "MAX_FRAGMENT_SIZE",
    "MAX_MESSAGE_LENGTH",
    "MIN_FRAGMENT_SIZE",
    "TLS13_PROFILES",
    "TLS_VERSIONS",
    "EAPTLSServer",
    "eapIdentityAsIkeId",
    "keyMaterial",
    "serverContext",
]

FLAG_LENGTH = 0x80
FLAG_MORE = 0x40
FLAG_START = 0x20

#: Octets of TLS data per outgoing EAP-TLS packet (strongSwan's charon uses about 1024).
DEFAULT_FRAGMENT_SIZE = 1024
MIN_FRAGMENT_SIZE = 64
MAX_FRAGMENT_SIZE = 16384
#: The longest TLS message (one flight) accepted from a peer.
MAX_MESSAGE_LENGTH = 64 * 1024
#: The most fragments one incoming TLS message may come in.
MAX_FRAGMENTS = 32

#: The Key_Material length: 64 octets of MSK, then 64 of EMSK.
KEY_MATERIAL_LENGTH = 128
MSK_LENGTH = 64
LABEL_TLS12 = b"client EAP encryption"
LABEL_TLS13 = b"EXPORTER_EAP_TLS_Key_Material"
#: RFC 9190 section 2.3: the exporter context is the EAP Type-Code.
TYPE_CODE = bytes([EAPType.TLS])
#: RFC 9190 section 2.5: the server's commitment not to send more handshake messages.
COMMITMENT_MESSAGE = b"\x00"

#: How TLS 1.3 ends and what it exports: RFC 9190, or strongSwan 5.9's draft-era variant.
TLS13_PROFILES = ("rfc9190", "strongswan")

#: The configuration spelling of the highest TLS version, and OpenSSL's number for it.
TLS_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}

_LENGTH = struct.Struct("!I")
_BIO_CHUNK = 16 * 1024

# The method's states, by what the next Response must be.
_AWAIT_DATA = "await-data"  # the peer's next TLS message (or a fragment of it)
_AWAIT_FINAL_ACK = "await-final-ack"  # handshake done and checked: an empty Response
_FAILING = "failing"  # a TLS alert was sent: any Response ends it
_DONE = "done"


# -- the parts that do not depend on one conversation -----------------------------------------


def _acceptForLaterValidation(
    connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
) -> bool:
    """
    OpenSSL's verify callback: accept whatever OpenSSL thinks of the chain. The peer's
    certificate is validated after the handshake by L{validatePeerCertificate}, under the
    same policy as IKE CERT payloads (OpenSSL would apply TLS client purpose rules and
    the system clock instead). OpenSSL still verifies the CertificateVerify signature,
    so the peer proves possession of the key.
    """
    return True


def serverContext(
    trust: TrustStore, credentials: HubCredentials, maxVersion: str = "1.3"
) -> SSL.Context:
    """
    The OpenSSL context every conversation of one EAP-TLS configuration shares: the
    hub's chain and key, TLS 1.2 up to C{maxVersion}, a required client certificate whose
    acceptable issuers are the trust store's CAs, no tickets, no session cache, no
    renegotiation, no compression.

    @raise ValueError: for an unknown C{maxVersion}.
    @raise OpenSSL.SSL.Error: if OpenSSL refuses the certificate or key (for example a
        key that does not belong to the certificate).
    """
    if maxVersion not in TLS_VERSIONS:
        raise ValueError(f"maximum TLS version {maxVersion!r} is not one of 1.2, 1.3")
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(TLS_VERSIONS[maxVersion])
    context.set_options(
        SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_SSLv3
    )
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    context.use_certificate(credentials.certificate)
    for intermediate in credentials.chain[1:]:
        context.add_extra_chain_cert(intermediate)
    context.use_privatekey(credentials.privateKey)
    context.check_privatekey()
    context.set_verify(
        SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT | SSL.VERIFY_CLIENT_ONCE,
        _acceptForLaterValidation,
    )
    # The CertificateRequest names the CAs we trust, so that a client with several
    # certificates (strongSwan's charon among them) picks one we can validate.
    for ca in trust.cas:
        context.add_client_ca(ca)
    return context


def keyMaterial(connection: SSL.Connection, tls13Profile: str = "rfc9190") -> bytes:
    """
    The 128-octet EAP-TLS Key_Material of a finished handshake, for its TLS version
    (RFC 5216 section 2.3 up to TLS 1.2, RFC 9190 section 2.3 for TLS 1.3, or with
    C{tls13Profile="strongswan"} the exporter with the TLS 1.2 label and no context, which
    OpenSSL treats as the empty context strongSwan uses; see the module docstring).
    """
    if connection.get_protocol_version_name() == "TLSv1.3" and tls13Profile == "rfc9190":
        return connection.export_keying_material(LABEL_TLS13, KEY_MATERIAL_LENGTH, TYPE_CODE)
    return connection.export_keying_material(LABEL_TLS12, KEY_MATERIAL_LENGTH)


def eapIdentityAsIkeId(identity: str) -> tuple[int, bytes] | None:
    """
    The IKE ID type and data an EAP identity stands for, to look for in the peer's
    certificate: an IP address is ID_IPV4_ADDR/ID_IPV6_ADDR, text with C{=} that parses
    as a distinguished name (strongSwan's syntax, C{"C=CH, O=..., CN=..."}) is
    ID_DER_ASN1_DN, text with C{@} is ID_RFC822_ADDR, anything else ID_FQDN. C{None}
    for an identity that looks like a DN but does not parse.
    """
    try:
        address = ipaddress.ip_address(identity)
    except ValueError:
        address = None
    if address is not None:
        idType = IDType.ID_IPV4_ADDR if address.version == 4 else IDType.ID_IPV6_ADDR
        return idType, address.packed
    if "=" in identity:
        try:
            parsed = Identity.fromString(identity)
        except ValueError:
            return None
        if parsed.idType == IDType.ID_DER_ASN1_DN:
            return parsed.idType, parsed.data
        return None
    if "@" in identity:
        return IDType.ID_RFC822_ADDR, identity.encode("utf-8")
    return IDType.ID_FQDN, identity.encode("utf-8")


def _describeSSLError(error: SSL.Error) -> str:
    """OpenSSL's reason strings from an C{SSL.Error}, without library or function names."""
    reasons: list[str] = []
    for entry in error.args[0] if error.args and isinstance(error.args[0], list) else ():
        if isinstance(entry, tuple) and entry:
            reasons.append(str(entry[-1]))
    return "; ".join(reasons) or str(error) or type(error).__name__


def _handshakeFailure(error: SSL.Error) -> str:
    """A C{Failed} reason for an OpenSSL handshake error, saying who gave up and why."""
    if isinstance(error, SSL.ZeroReturnError):
        return "the peer closed the TLS connection during the handshake"
    detail = _describeSSLError(error)
    lowered = detail.lower()
    if "alert" in lowered:
        return f"the peer sent a TLS alert: {detail}"
    if "did not return a certificate" in lowered or "certificate required" in lowered:
        return "the peer sent no client certificate; EAP-TLS requires one"
    return f"TLS handshake failed: {detail}"


# -- one conversation -------------------------------------------------------------------------


class EAPTLSServer(EAPServerMethod):
    """
    EAP-TLS for one peer.

    @param identity: the EAP identity the peer's certificate must name.
    @param trust: the CAs for the peer's certificate (and its CRLs).
    @param credentials: the hub's certificate chain and key; not needed with C{context}.
    @param context: a shared L{serverContext}; built from C{trust} and C{credentials}
        when not given.
    @param fragmentSize: octets of TLS data per outgoing EAP-TLS packet.
    @param maxVersion: the highest TLS version, C{"1.2"} or C{"1.3"}, when building the
        context here.
    @param clock: an C{IReactorTime} for the certificate validation time; the system
        clock when C{None}.
    @param maxMessageLength: the longest reassembled TLS message accepted from the peer.
    @param maxFragments: the most fragments one incoming message may come in.
    @param tls13Profile: C{"rfc9190"} or C{"strongswan"}, how a TLS 1.3 handshake ends and
        derives its keys (see the module docstring).

    After success, C{msk}, C{emsk}, C{sessionId} (RFC 5216 / RFC 9190 Session-Id),
    C{tlsVersion} and C{peer} (the L{ValidatedPeer}) are set.
    """

    eapType = EAPType.TLS
    name = "eap-tls"

    def __init__(
        self,
        identity: str,
        trust: TrustStore,
        credentials: HubCredentials | None = None,
        *,
        context: SSL.Context | None = None,
        fragmentSize: int = DEFAULT_FRAGMENT_SIZE,
        maxVersion: str = "1.3",
        clock: IReactorTime | None = None,
        maxMessageLength: int = MAX_MESSAGE_LENGTH,
        maxFragments: int = MAX_FRAGMENTS,
        tls13Profile: str = "rfc9190",
    ) -> None:
        if tls13Profile not in TLS13_PROFILES:
            raise ValueError(f"TLS 1.3 profile {tls13Profile!r} is not one of {TLS13_PROFILES}")
        if not MIN_FRAGMENT_SIZE <= fragmentSize <= MAX_FRAGMENT_SIZE:
            raise ValueError(
                f"fragment size {fragmentSize} is not {MIN_FRAGMENT_SIZE}..{MAX_FRAGMENT_SIZE}"
            )
        if context is None:
            if credentials is None:
                raise ValueError("EAP-TLS needs the hub's credentials or a server context")
            context = serverContext(trust, credentials, maxVersion)
        self.identity = identity
        self.trust = trust
        self.fragmentSize = fragmentSize
        self.clock = clock
        self.maxMessageLength = maxMessageLength
        self.maxFragments = maxFragments
        self.tls13Profile = tls13Profile
        self.state = _AWAIT_DATA
        self.tlsVersion: str | None = None
        self.peer: ValidatedPeer | None = None
        self.msk: bytes | None = None
        self.emsk: bytes | None = None
        self.sessionId: bytes | None = None
        self._connection = SSL.Connection(context, None)
        self._connection.set_accept_state()
        self._started = False
        self._partialMessages = 0
        # Incoming reassembly.
        self._inFragments: list[bytes] = []
        self._inLength = 0
        self._inTotal: int | None = None
        # Outgoing fragmentation.
        self._outgoing = b""
        self._outOffset = 0
        self._failure = ""

    @classmethod
    def factory(
        cls,
        trust: TrustStore,
        credentials: HubCredentials,
        *,
        maxVersion: str = "1.3",
        **options: Any,
    ) -> Callable[[str], EAPServerMethod]:
        """
        A C{methodFactory} for L{EAPConversation}. The OpenSSL context is built once,
        here, so a bad certificate or key fails now rather than at the first peer.
        """
        context = serverContext(trust, credentials, maxVersion)
        return lambda identity: cls(identity, trust, context=context, **options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} identity={self.identity!r} state={self.state}>"

    # -- EAPServerMethod --------------------------------------------------------------------

    def start(self, identifier: int) -> EAPPacket:
        self._started = True
        return EAPPacket(EAPCode.REQUEST, identifier, EAPType.TLS, bytes([FLAG_START]))

    def handle(self, response: EAPPacket) -> Outcome:
        if self.state == _DONE:
            return Failed("EAP-TLS Response after the method finished")
        if not self._started:
            return self._finish(Failed("EAP-TLS Response before the Start"))
        data = response.data
        if not data:
            return self._finish(Failed("EAP-TLS Response without a Flags octet"))
        if self.state == _FAILING:
            return self._finish(Failed(self._failure))
        flags = data[0]
        body = data[1:]
        total: int | None = None
        if flags & FLAG_LENGTH:
            if len(body) < _LENGTH.size:
                return self._finish(
                    Failed("EAP-TLS Response has the L flag but no full TLS Message Length")
                )
            (total,) = _LENGTH.unpack_from(body)
            body = body[_LENGTH.size :]
        if flags & FLAG_START:
            return self._finish(Failed("the peer sent an EAP-TLS Start; only the server starts"))
        isAck = not body and not flags & FLAG_MORE and not total

        if self._outgoing:
            if not isAck:
                return self._finish(
                    Failed(
                        "the peer sent TLS data while the server's fragmented message was "
                        "incomplete; it must acknowledge each fragment with an empty Response"
                    )
                )
            return Continue(self._nextFragment())
        if self.state == _AWAIT_FINAL_ACK:
            if not isAck:
                return self._finish(
                    Failed(
                        "the peer sent TLS data after the handshake finished; "
                        "expected an empty acknowledgement"
                    )
                )
            return self._finish(Succeeded(self.msk))
        if isAck:
            if self._inFragments:
                return self._finish(
                    Failed("the peer sent an empty Response in the middle of its fragments")
                )
            return self._finish(Failed("the peer sent an empty Response where TLS data was due"))
        return self._receive(flags, total, body)

    # -- incoming ---------------------------------------------------------------------------

    def _receive(self, flags: int, total: int | None, body: bytes) -> Outcome:
        more = bool(flags & FLAG_MORE)
        if not self._inFragments:
            if more and total is None:
                return self._finish(
                    Failed("the first EAP-TLS fragment lacks the L flag and TLS Message Length")
                )
            if total is not None:
                if total > self.maxMessageLength:
                    return self._finish(
                        Failed(
                            f"the peer announces a TLS message of {total} octets; "
                            f"at most {self.maxMessageLength} are accepted"
                        )
                    )
                if total < len(body):
                    return self._finish(
                        Failed(
                            f"TLS Message Length {total} is less than the {len(body)} "
                            "octets in the packet"
                        )
                    )
            self._inTotal = total
        elif total is not None and total != self._inTotal:
            return self._finish(
                Failed(
                    f"TLS Message Length changed from {self._inTotal} to {total} between fragments"
                )
            )
        if more and not body:
            return self._finish(Failed("an empty EAP-TLS fragment with the M flag"))
        self._inFragments.append(body)
        self._inLength += len(body)
        if len(self._inFragments) > self.maxFragments:
            return self._finish(
                Failed(f"the peer's TLS message came in more than {self.maxFragments} fragments")
            )
        limit = self._inTotal if self._inTotal is not None else self.maxMessageLength
        if self._inLength > limit:
            return self._finish(
                Failed(
                    f"the peer's fragments carry {self._inLength} octets, more than "
                    f"the {limit} announced"
                    if self._inTotal is not None
                    else f"the peer's TLS message exceeds {limit} octets"
                )
            )
        if more:
            return Continue(self._request(b"\x00"))
        if self._inTotal is not None and self._inLength != self._inTotal:
            return self._finish(
                Failed(
                    f"TLS Message Length says {self._inTotal} octets but {self._inLength} arrived"
                )
            )
        message = b"".join(self._inFragments)
        self._inFragments = []
        self._inLength = 0
        self._inTotal = None
        return self._step(message)

    # -- TLS --------------------------------------------------------------------------------

    def _step(self, message: bytes) -> Outcome:
        """Give the peer's message to OpenSSL and answer with what it produced."""
        connection = self._connection
        try:
            connection.bio_write(message)
            connection.do_handshake()
        except SSL.WantReadError:
            output = self._drain()
            if output:
                return Continue(self._startSending(output))
            # OpenSSL needs more of the peer's flight: ask for it, as strongSwan does,
            # but not forever.
            self._partialMessages += 1
            if self._partialMessages > self.maxFragments:
                return self._finish(
                    Failed("the peer keeps sending TLS data that completes no handshake step")
                )
            return Continue(self._request(b"\x00"))
        except SSL.Error as e:
            reason = _handshakeFailure(e)
            alert = self._drain()
            if not alert:
                return self._finish(Failed(reason))
            # RFC 5216 section 2.1.3: send the alert; the peer's Response ends it.
            self.state = _FAILING
            self._failure = reason
            return Continue(self._startSending(alert))
        return self._handshakeDone()

    def _handshakeDone(self) -> Outcome:
        connection = self._connection
        self.tlsVersion = connection.get_protocol_version_name()
        refusal = self._checkPeer()
        if refusal is not None:
            return self._finish(Failed(refusal))
        rfc9190 = self.tls13Profile == "rfc9190"
        if self.tlsVersion == "TLSv1.3" and rfc9190:
            try:
                connection.write(COMMITMENT_MESSAGE)
            except SSL.Error as e:
                return self._finish(Failed(f"TLS commitment message: {_describeSSLError(e)}"))
        output = self._drain()
        material = keyMaterial(connection, self.tls13Profile)
        self.msk = material[:MSK_LENGTH]
        self.emsk = material[MSK_LENGTH:]
        if self.tlsVersion == "TLSv1.3":
            methodId = connection.export_keying_material(
                b"EXPORTER_EAP_TLS_Method-Id", 64, TYPE_CODE
            )
            self.sessionId = TYPE_CODE + methodId
        else:
            self.sessionId = TYPE_CODE + connection.client_random() + connection.server_random()
        self.state = _AWAIT_FINAL_ACK
        if not output and self.tlsVersion == "TLSv1.3" and not rfc9190:
            # strongSwan's way: the peer's Finished ends the method, EAP-Success follows.
            return self._finish(Succeeded(self.msk))
        if not output:
            # Nothing left to send (cannot happen with OpenSSL's TLS 1.2 or 1.3 server,
            # which always ends with its Finished or the commitment message).
            return self._finish(Failed("the TLS handshake ended without the server's last flight"))
        return Continue(self._startSending(output))

    def _checkPeer(self) -> str | None:
        """Validate the peer's chain and identity; the refusal reason, or C{None}."""
        connection = self._connection
        endEntity = connection.get_peer_certificate(as_cryptography=True)
        if endEntity is None:
            return "the peer sent no client certificate; EAP-TLS requires one"
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
        intermediates = [cert for cert in chain if cert != endEntity]
        try:
            self.peer = validatePeerCertificate(self.trust, endEntity, intermediates, self._now())
        except CertificateError as e:
            return f"peer certificate refused: {e.reason}"
        wanted = eapIdentityAsIkeId(self.identity)
        if wanted is None:
            return f"EAP identity {self.identity!r} looks like a DN but does not parse"
        if not identityMatches(endEntity, *wanted):
            return f"peer certificate does not name the EAP identity {self.identity!r}"
        return None

    def _now(self) -> datetime.datetime:
        if self.clock is None:
            return datetime.datetime.now(datetime.UTC)
        return datetime.datetime.fromtimestamp(self.clock.seconds(), datetime.UTC)

    def _drain(self) -> bytes:
        """Everything OpenSSL has written for the peer."""
        chunks = []
        while True:
            try:
                chunk = self._connection.bio_read(_BIO_CHUNK)
            except SSL.WantReadError:
                break
            except SSL.Error:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    # -- outgoing ---------------------------------------------------------------------------

    def _startSending(self, data: bytes) -> EAPPacket:
        self._outgoing = data
        self._outOffset = 0
        return self._nextFragment()

    def _nextFragment(self) -> EAPPacket:
        """
        The next piece of the outgoing TLS data: L and the total length on the first,
        M on all but the last.
        """
        data = self._outgoing
        first = self._outOffset == 0
        chunk = data[self._outOffset : self._outOffset + self.fragmentSize]
        self._outOffset += len(chunk)
        more = self._outOffset < len(data)
        flags = (FLAG_LENGTH if first else 0) | (FLAG_MORE if more else 0)
        header = _LENGTH.pack(len(data)) if first else b""
        if not more:
            self._outgoing = b""
            self._outOffset = 0
        return self._request(bytes([flags]) + header + chunk)

    @staticmethod
    def _request(typeData: bytes) -> EAPPacket:
        """An EAP-TLS Request; the conversation sets the identifier."""
        return EAPPacket(EAPCode.REQUEST, 0, EAPType.TLS, typeData)

    def _finish(self, outcome: Succeeded | Failed) -> Outcome:
        self.state = _DONE
        self._outgoing = b""
        self._inFragments = []
        if isinstance(outcome, Failed):
            self.msk = self.emsk = None
        return outcome
