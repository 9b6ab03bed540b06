"""
The exchanges as the initiator runs them: IKE_SA_INIT (following COOKIE and INVALID_KE_PAYLOAD
answers), IKE_AUTH and the first CHILD SA.

We authenticate with a pre-shared key, with a certificate and a signature (RFC 7296 section
2.15, RFC 7427), or with EAP-MSCHAPv2 (RFC 7296 section 2.16; the peer side of RFC 2759 and
the MSK of RFC 3079). The responder's AUTH is checked against the pre-shared key, or its
certificate chain against the spec's trust store and its IDr, or the EAP MSK.

The pre-shared-key path is the benchmarked one: it does no work for the other methods, whose
code (and its imports from L{ikehub.auth}) runs only in their own branches.

The same endpoint that serves road warriors uses this for the in-memory tests, the handshake
benchmark and, later, site-to-site tunnels.
"""

import dataclasses
import hmac
import ipaddress
import os
import struct
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.ke import newKeyExchange
from ikehub.crypto.keys import deriveIkeKeys
from ikehub.crypto.proposals import ProposalSpec, checkChosenProposal
from ikehub.ike.cookies import COOKIE_MAX, COOKIE_MIN
from ikehub.ike.configpayload import grantedAddresses
from ikehub.ike.nat import natDetectionNotifies, peerIsBehindNat
from ikehub.ike.psk import pskAuthData, sessionKeyAuthData, signedOctets, verifyPskAuth
from ikehub.ike.sa import ZERO_SPI, IKESA, IKEState
from ikehub.ike.ts import covers, selectorsFromNetworks
from ikehub.wire.constants import (
    AuthMethod,
    CfgType,
    ConfigAttributeType,
    ExchangeType,
    NotifyType,
    ProtocolId,
    notifyName,
)
from ikehub.wire.identity import Identity
from ikehub.wire.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
    CPPayload,
    DeletePayload,
    EAPPayload,
    IDiPayload,
    IDrPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    SAPayload,
    TSiPayload,
    TSrPayload,
)

_GROUP = struct.Struct("!H")
#: COOKIE answers we follow for one IKE SA before giving up on the responder.
MAX_COOKIE_RETRIES = 3
_ANY4 = ipaddress.ip_network("0.0.0.0/0")
#: What a road warrior asks for in IKE_AUTH: an IPv4 address and a DNS server.
_CP_REQUEST = CPPayload(
    CfgType.CFG_REQUEST,
    (
        ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS, b""),
        ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_DNS, b""),
    ),
)
#: CERT and CERTREQ encoding 4: X.509 Certificate - Signature.
_X509 = 4

#: How we authenticate (InitiatorSpec.authMode).
AUTH_PSK = "psk"
AUTH_PUBKEY = "pubkey"
AUTH_EAP_MSCHAPV2 = "eap-mschapv2"


class IKEFailure(Exception):
    """
    Setting up an IKE SA failed; C{notifyType} is the peer's error notify when it sent one.
    """

    def __init__(self, reason: str, notifyType: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notifyType = notifyType


@dataclass(frozen=True, kw_only=True)
class InitiatorSpec:
    """
    What an initiator asks for.

    How we authenticate: with C{credentials} (certificate chain and key; CERT payloads and a
    signature AUTH), else with C{eapPassword} (EAP-MSCHAPv2 as C{eapIdentity}, by default the
    string form of C{identity}), else with C{psk}. Exactly one of C{credentials} and
    C{eapPassword} may be given, and C{psk} is required when neither is.

    How we check the responder: a shared key MIC against C{psk}, a signature against
    C{trust} (an L{ikehub.auth.certs.TrustStore}: its chain must be trusted and its
    certificate must name its IDr), and after EAP the MSK-keyed AUTH.
    """

    identity: Identity
    psk: bytes | None = dataclasses.field(default=None, repr=False)
    ikeProposals: tuple[ProposalSpec, ...]
    espProposals: tuple[ProposalSpec, ...]
    remoteIdentity: Identity | None = None
    requestVirtualIp: bool = False
    localTs: tuple = (_ANY4,)
    remoteTs: tuple = (_ANY4,)
    #: The responder's NAT-T port, where we move when a NAT is detected.
    remoteNattPort: int = 4500
    #: Our certificate chain (end entity first) and key: an
    #: L{ikehub.auth.credentials.HubCredentials}.
    credentials: Any = None
    #: The CAs the responder's certificate must chain to: an L{ikehub.auth.certs.TrustStore}.
    trust: Any = None
    #: EAP-MSCHAPv2: the user name (default: C{str(identity)}) and password.
    eapIdentity: str | None = None
    eapPassword: str | None = dataclasses.field(default=None, repr=False)
    #: Send INITIAL_CONTACT (RFC 7296 section 2.4): we hold no other IKE SA with the peer.
    initialContact: bool = False
    #: With C{requestVirtualIp}, the CFG_REQUEST's attribute types (each sent empty) instead
    #: of an IPv4 address and DNS server: e.g. INTERNAL_IP6_ADDRESS, INTERNAL_DNS_DOMAIN.
    configAttributes: tuple = ()
    #: Announce MOBIKE (RFC 4555) in IKE_AUTH; the SA's C{mobike} says whether the peer agreed.
    mobike: bool = False
    #: Offer IKE fragmentation (RFC 7383); our fragments are the endpoint's fragmentSize.
    fragmentation: bool = False

    # Derived once in __post_init__, never per handshake.
    #: AUTH_PSK, AUTH_PUBKEY or AUTH_EAP_MSCHAPV2.
    authMode: str = dataclasses.field(init=False, default=AUTH_PSK, compare=False)
    #: A pre-shared key both ways and nothing else: the original, benchmarked path.
    pskOnly: bool = dataclasses.field(init=False, default=True, compare=False, repr=False)
    #: Our SIGNATURE_HASH_ALGORITHMS notify for IKE_SA_INIT, or None.
    hashesNotify: Any = dataclasses.field(init=False, default=None, compare=False, repr=False)
    #: The DER of our CERT payloads, end entity first.
    certificateData: tuple = dataclasses.field(init=False, default=(), compare=False, repr=False)
    #: Our CERTREQ (the SHA-1 hashes of the trusted CAs' keys), or None.
    certReq: Any = dataclasses.field(init=False, default=None, compare=False, repr=False)
    #: The CP payload our IKE_AUTH carries when we want a virtual IP.
    configRequest: Any = dataclasses.field(
        init=False, default=_CP_REQUEST, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.credentials is not None and self.eapPassword is not None:
            raise ValueError(
                "InitiatorSpec: give credentials (certificate) or eapPassword (EAP), not both"
            )
        if self.credentials is not None:
            mode = AUTH_PUBKEY
        elif self.eapPassword is not None:
            mode = AUTH_EAP_MSCHAPV2
        elif self.psk is not None:
            mode = AUTH_PSK
        else:
            raise ValueError("InitiatorSpec: give psk, credentials or eapPassword")
        setField = object.__setattr__
        setField(self, "authMode", mode)
        if self.configAttributes:
            setField(
                self,
                "configRequest",
                CPPayload(
                    CfgType.CFG_REQUEST,
                    tuple(ConfigAttribute(t, b"") for t in self.configAttributes),
                ),
            )
        setField(self, "pskOnly", mode == AUTH_PSK and self.trust is None)
        if self.pskOnly:
            return
        from ikehub.auth.signatures import SIGNATURE_HASH_ALGORITHMS

        setField(
            self,
            "hashesNotify",
            NotifyPayload(
                ProtocolId.NONE,
                NotifyType.SIGNATURE_HASH_ALGORITHMS,
                b"",
                b"".join(_GROUP.pack(h) for h in SIGNATURE_HASH_ALGORITHMS),
            ),
        )
        if self.credentials is not None:
            from cryptography.hazmat.primitives.serialization import Encoding

            setField(
                self,
                "certificateData",
                tuple(cert.public_bytes(Encoding.DER) for cert in self.credentials.chain),
            )
        if self.trust is not None:
            from ikehub.auth.certs import certReqHashes

            setField(self, "certReq", CertReqPayload(_X509, certReqHashes(self.trust)))


class _Setup:
    """
    The initiator's scratch state while an IKE SA is being set up.
    """

    __slots__ = (
        "spec",
        "deferred",
        "kex",
        "cookie",
        "cookieRetries",
        "keRetries",
        "tsi",
        "tsr",
        "inboundSpi",
        "failure",
        # Set (and read) only when the spec is not pskOnly:
        "responderHashes",
        "idiBody",
        "idrBody",
        "eap",
    )

    def __init__(self, spec: InitiatorSpec, deferred: Deferred, kex) -> None:
        self.spec = spec
        self.deferred = deferred
        self.kex = kex
        self.cookie: bytes | None = None
        self.cookieRetries = 0
        self.keRetries = 0
        self.tsi = selectorsFromNetworks(spec.localTs)
        self.tsr = selectorsFromNetworks(spec.remoteTs)
        #: Our CHILD SA's SPI, reserved in the SAD while IKE_AUTH is under way.
        self.inboundSpi: bytes | None = None
        self.failure: IKEFailure | None = None


def _errorNotify(payloads) -> NotifyPayload | None:
    for payload in payloads:
        if type(payload) is NotifyPayload and payload.notifyType < 16384:
            return payload
    return None


def _ignoreResponse(sa, header, payloads, data, peer, path) -> None:
    pass


def _announcedHashes(notifies) -> tuple[int, ...] | None:
    """The hashes of the responder's SIGNATURE_HASH_ALGORITHMS notify, or None without one."""
    for notify in notifies:
        if notify.notifyType == NotifyType.SIGNATURE_HASH_ALGORITHMS:
            data = notify.data
            return tuple(_GROUP.unpack_from(data, i)[0] for i in range(0, len(data) - 1, 2))
    return None


# -- the peer side of EAP-MSCHAPv2 --------------------------------------------------------------


class EAPRefused(Exception):
    """The responder's EAP conversation is not one we go on with; C{reason} says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mschapv2PeerMsk(passwordHash: bytes, ntResponse: bytes) -> bytes:
    """
    The 64-octet EAP-MSCHAPv2 MSK as the peer derives it (RFC 3079 section 3.4 with IsServer
    false): MasterSendKey | MasterReceiveKey | 32 zero octets. The peer's send key is the
    server's receive key and the other way round, so this is the authenticator's
    MasterReceiveKey | MasterSendKey layout of L{ikehub.auth.eap.mschapv2.serverMsk}.
    """
    from ikehub.auth.eap.mschapv2 import (
        getAsymmetricStartKey,
        getMasterKey,
        hashNtPasswordHash,
    )

    masterKey = getMasterKey(hashNtPasswordHash(passwordHash), ntResponse)
    sendKey = getAsymmetricStartKey(masterKey, 16, isSend=True, isServer=False)
    receiveKey = getAsymmetricStartKey(masterKey, 16, isSend=False, isServer=False)
    return sendKey + receiveKey + b"\x00" * 32


class MSCHAPv2Peer:
    """
    The peer of one EAP-MSCHAPv2 conversation (draft-kamath-pppext-eap-mschapv2-02, RFC 2759):
    answers Identity, Challenge, Success and Failure requests, and Naks other methods. The
    MSK is set only after the authenticator response "S=..." of the Success request proved
    that the server knows the password.
    """

    __slots__ = ("name", "passwordHash", "ntResponse", "expected", "msk")

    def __init__(self, name: str, password: str) -> None:
        from ikehub.auth.eap.mschapv2 import ntPasswordHash

        self.name = name.encode("utf-8")
        self.passwordHash = ntPasswordHash(password)
        self.ntResponse: bytes | None = None
        #: The authenticator response we expect in the Success request.
        self.expected: bytes | None = None
        self.msk: bytes | None = None

    def answer(self, request):
        """
        The EAP Response to the EAP Request C{request} (an L{EAPPacket}).

        @raise EAPRefused: a request we must not answer (a Success with a wrong authenticator
            response, a malformed Challenge, an unknown OpCode).
        """
        from ikehub.auth.eap import mschapv2
        from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType

        def response(eapType: int, data: bytes) -> EAPPacket:
            return EAPPacket(EAPCode.RESPONSE, request.identifier, eapType, data)

        if request.type == EAPType.IDENTITY:
            return response(EAPType.IDENTITY, self.name)
        if request.type == EAPType.NOTIFICATION:
            return response(EAPType.NOTIFICATION, b"")
        if request.type != EAPType.MSCHAPV2:
            return response(EAPType.NAK, bytes([EAPType.MSCHAPV2]))
        data = request.data
        if len(data) < _MSCHAP_HEADER.size:
            raise EAPRefused("truncated MS-CHAPv2 request")
        opcode, msChapId, _ = _MSCHAP_HEADER.unpack_from(data)
        if opcode == mschapv2.OPCODE_CHALLENGE:
            start = _MSCHAP_HEADER.size
            if len(data) < start + 1 + mschapv2.CHALLENGE_LENGTH or data[start] != 16:
                raise EAPRefused("malformed MS-CHAPv2 Challenge")
            challenge = data[start + 1 : start + 1 + mschapv2.CHALLENGE_LENGTH]
            peerChallenge = os.urandom(16)
            userName = mschapv2.mschapUserName(self.name)
            ntResponse = mschapv2.generateNtResponse(
                challenge, peerChallenge, userName, self.passwordHash
            )
            self.ntResponse = ntResponse
            self.expected = mschapv2.generateAuthenticatorResponse(
                self.passwordHash, ntResponse, peerChallenge, challenge, userName
            ).encode("ascii")
            value = bytes([mschapv2.RESPONSE_VALUE_LENGTH]) + peerChallenge + bytes(8)
            value += ntResponse + b"\x00" + self.name
            header = _MSCHAP_HEADER.pack(
                mschapv2.OPCODE_RESPONSE, msChapId, _MSCHAP_HEADER.size + len(value)
            )
            return response(EAPType.MSCHAPV2, header + value)
        if opcode == mschapv2.OPCODE_SUCCESS:
            received = data[_MSCHAP_HEADER.size : _MSCHAP_HEADER.size + 42]
            if self.expected is None or not hmac.compare_digest(received.upper(), self.expected):
                raise EAPRefused(
                    "responder's MS-CHAPv2 authenticator response is wrong "
                    "(it does not know the password)"
                )
            self.msk = mschapv2PeerMsk(self.passwordHash, self.ntResponse)
            return response(EAPType.MSCHAPV2, bytes([mschapv2.OPCODE_SUCCESS]))
        if opcode == mschapv2.OPCODE_FAILURE:
            # A wrong password (E=691, R=0): acknowledge; the responder ends with EAP-Failure.
            return response(EAPType.MSCHAPV2, bytes([mschapv2.OPCODE_FAILURE]))
        raise EAPRefused(f"unexpected MS-CHAPv2 OpCode {opcode}")


#: OpCode, MS-CHAPv2-ID, MS-Length.
_MSCHAP_HEADER = struct.Struct("!BBH")


class InitiatorExchanges:
    """
    Mixed into L{ikehub.ike.endpoint.IKEEndpoint}.
    """

    def initiate(self, spec: InitiatorSpec, peer: tuple[str, int], path=None) -> Deferred:
        """
        Set up an IKE SA and its first CHILD SA with C{peer}.

        @return: a Deferred firing with the established L{IKESA}, or failing with L{IKEFailure}.
        """
        deferred: Deferred = Deferred()
        group = spec.ikeProposals[0].ke[0]
        sa = IKESA(True, self.newSpi(), ZERO_SPI, peer, path, self.clock.seconds())
        sa.context = _Setup(spec, deferred, newKeyExchange(group))
        sa.nonceI = os.urandom(32)
        self.sas[sa.spiI] = sa
        self._sendInit(sa)
        return deferred

    def _sendInit(self, sa: IKESA) -> None:
        setup: _Setup = sa.context
        proposals = tuple(
            spec.toWire(number, b"") for number, spec in enumerate(setup.spec.ikeProposals, 1)
        )
        payloads: list = []
        if setup.cookie is not None:
            payloads.append(self.notify(NotifyType.COOKIE, setup.cookie))
        payloads += [
            SAPayload(proposals),
            KEPayload(setup.kex.group, setup.kex.publicKey),
            NoncePayload(sa.nonceI),
        ]
        payloads += natDetectionNotifies(sa.spiI, ZERO_SPI, None, sa.peer)
        if not setup.spec.pskOnly:
            payloads.append(setup.spec.hashesNotify)
        if setup.spec.fragmentation:
            payloads.append(self.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        sa.nextRequestId = 0
        self.sendRequest(sa, ExchangeType.IKE_SA_INIT, payloads, self._initAnswered, plain=True)
        sa.initRequest = sa.pending.datagram

    def _fail(self, sa: IKESA, reason: str, notifyType: int | None = None) -> None:
        sa.context.failure = IKEFailure(reason, notifyType)
        self.removeSa(sa, reason)

    def abandonSetup(self, sa: IKESA, reason: str) -> None:
        """
        Called when an IKE SA we initiate goes away before it is established (refused, timed out,
        shut down): release what it reserved and tell whoever is waiting.
        """
        setup: _Setup = sa.context
        sa.context = None
        self.counters.increment("initiation_failed")
        if setup.inboundSpi is not None:
            self.sad.releaseSpi(setup.inboundSpi)
        if not setup.deferred.called:
            setup.deferred.errback(setup.failure or IKEFailure(reason))

    def _initAnswered(self, sa: IKESA, header, payloads, data, peer, path) -> None:
        setup: _Setup = sa.context
        notifies = [p for p in payloads if type(p) is NotifyPayload]
        cookie = next((n for n in notifies if n.notifyType == NotifyType.COOKIE), None)
        if cookie is not None:
            # RFC 7296 section 2.6: 1..64 octets, echoed unchanged as the first payload. A
            # responder may refuse our cookie and send a fresh one (its secret rotated); a few
            # rounds, not forever.
            if not COOKIE_MIN <= len(cookie.data) <= COOKIE_MAX:
                return self._fail(sa, "responder sent a COOKIE of a length RFC 7296 forbids")
            if setup.cookieRetries >= MAX_COOKIE_RETRIES:
                return self._fail(sa, "responder keeps asking for a cookie")
            setup.cookieRetries += 1
            setup.cookie = cookie.data
            return self._sendInit(sa)
        invalidKe = next(
            (n for n in notifies if n.notifyType == NotifyType.INVALID_KE_PAYLOAD), None
        )
        if invalidKe is not None:
            wanted = _GROUP.unpack(invalidKe.data)[0] if len(invalidKe.data) == 2 else None
            offered = {g for spec in setup.spec.ikeProposals for g in spec.ke}
            if wanted not in offered or setup.keRetries >= 2:
                return self._fail(sa, "responder wants a group we did not offer")
            setup.keRetries += 1
            setup.kex = newKeyExchange(wanted)
            return self._sendInit(sa)
        error = _errorNotify(payloads)
        if error is not None:
            return self._fail(sa, f"IKE_SA_INIT refused: {error.notifyType}", error.notifyType)

        saPayload = next((p for p in payloads if type(p) is SAPayload), None)
        kePayload = next((p for p in payloads if type(p) is KEPayload), None)
        noncePayload = next((p for p in payloads if type(p) is NoncePayload), None)
        if saPayload is None or kePayload is None or noncePayload is None:
            return self._fail(sa, "IKE_SA_INIT response lacks SA, KE or Nonce")
        if len(saPayload.proposals) != 1:
            return self._fail(sa, "responder chose more than one proposal")
        suite = checkChosenProposal(setup.spec.ikeProposals, saPayload.proposals[0])
        if suite is None or suite.keGroup != setup.kex.group or kePayload.group != setup.kex.group:
            return self._fail(sa, "responder chose a proposal we did not offer")
        if not 16 <= len(noncePayload.nonce) <= 256:
            return self._fail(sa, "responder nonce has a bad length")
        try:
            sharedSecret = setup.kex.computeSharedSecret(kePayload.keyData)
        except CryptoError:
            return self._fail(sa, "responder's KE public value is invalid")

        sa.spiR = header.spiR
        sa.nonceR = noncePayload.nonce
        sa.initResponse = data
        sa.installKeys(
            suite,
            deriveIkeKeys(
                suite.prf,
                suite.encr,
                suite.integ,
                sa.nonceI,
                sa.nonceR,
                sharedSecret,
                sa.spiI,
                sa.spiR,
            ),
        )
        if self.keysDerived is not None:
            self.keysDerived(sa)
        if setup.spec.fragmentation and any(
            n.notifyType == NotifyType.IKEV2_FRAGMENTATION_SUPPORTED for n in notifies
        ):
            sa.fragmentSize = self.fragmentLimit(peer)
        if sa.path != self.floatPath and peerIsBehindNat(notifies, sa.spiI, sa.spiR, peer):
            # RFC 7296 section 2.23: float to the NAT-T port; IKE and ESP travel in UDP there.
            self.movePeer(sa, (peer[0], setup.spec.remoteNattPort), self.floatPath)
        if not setup.spec.pskOnly:
            setup.responderHashes = _announcedHashes(notifies)
        self._sendAuth(sa)

    def _sendAuth(self, sa: IKESA) -> None:
        setup: _Setup = sa.context
        spec = setup.spec
        if not spec.pskOnly:
            return self._sendAuthWith(sa, setup, spec)
        idi = IDiPayload(spec.identity.idType, spec.identity.data)
        octets = signedOctets(
            sa.suite.prf, sa.initRequest, sa.nonceR, sa.keys.skPi, idi.bodyBytes()
        )
        payloads: list = [idi]
        if spec.initialContact:
            payloads.append(self.notify(NotifyType.INITIAL_CONTACT))
        if spec.remoteIdentity is not None:
            payloads.append(IDrPayload(spec.remoteIdentity.idType, spec.remoteIdentity.data))
        payloads.append(
            AuthPayload(AuthMethod.SHARED_KEY_MIC, pskAuthData(sa.suite.prf, spec.psk, octets))
        )
        self._sendAuthRequest(sa, setup, payloads, self._authAnswered)

    def _sendAuthRequest(self, sa: IKESA, setup: "_Setup", payloads: list, onResponse) -> None:
        """
        Finish our first IKE_AUTH request, whatever the authentication: a CP request when we
        want a virtual IP, the first CHILD SA's proposals (its SPI reserved meanwhile) and
        selectors; then send it.
        """
        spec = setup.spec
        if spec.requestVirtualIp:
            payloads.append(spec.configRequest)
        if spec.mobike:
            payloads.append(self.notify(NotifyType.MOBIKE_SUPPORTED))
        inboundSpi = self.sad.allocateSpi()
        proposals = tuple(
            child.toWire(number, inboundSpi) for number, child in enumerate(spec.espProposals, 1)
        )
        payloads += [SAPayload(proposals), TSiPayload(setup.tsi), TSrPayload(setup.tsr)]
        setup.inboundSpi = inboundSpi
        sa.state = IKEState.AUTH_SENT
        self.sendRequest(sa, ExchangeType.IKE_AUTH, payloads, onResponse)

    def _authAnswered(self, sa: IKESA, header, payloads, data, peer, path) -> None:
        setup: _Setup = sa.context
        error = _errorNotify(payloads)
        idr = next((p for p in payloads if type(p) is IDrPayload), None)
        auth = next((p for p in payloads if type(p) is AuthPayload), None)
        if idr is None or auth is None:
            notifyType = error.notifyType if error is not None else None
            return self._fail(sa, f"IKE_AUTH refused: {notifyType}", notifyType)
        octets = signedOctets(
            sa.suite.prf, sa.initResponse, sa.nonceI, sa.keys.skPr, idr.bodyBytes()
        )
        try:
            identity = Identity(idr.idType, idr.data)
        except ValueError:
            return self._fail(sa, "responder's IDr is not a valid identity")
        expected = setup.spec.remoteIdentity
        if (
            auth.method != AuthMethod.SHARED_KEY_MIC
            or not verifyPskAuth(sa.suite.prf, setup.spec.psk, octets, auth.data)
            or (expected is not None and identity != expected)
        ):
            return self._fail(sa, "responder's AUTH did not verify")
        self._established(sa, setup, identity, payloads)

    def _established(self, sa: IKESA, setup: _Setup, identity: Identity, payloads) -> None:
        """The responder is authenticated: install the first CHILD SA and report the IKE SA."""
        sa.peerIdentity = identity
        sa.state = IKEState.ESTABLISHED
        self.indexPeer(sa)
        sa.initRequest = sa.initResponse = b""
        if setup.spec.mobike:
            sa.mobike = any(
                type(p) is NotifyPayload and p.notifyType == NotifyType.MOBIKE_SUPPORTED
                for p in payloads
            )

        cp = next((p for p in payloads if type(p) is CPPayload), None)
        if cp is not None and setup.spec.requestVirtualIp and cp.cfgType == CfgType.CFG_REPLY:
            sa.configReply = cp.attributes
            sa.virtualIps.extend(
                (None, address) for address in grantedAddresses(setup.spec.configRequest, cp)
            )
        self._installInitiatorChild(sa, setup, payloads)
        deferred = setup.deferred
        sa.context = None
        self.counters.increment("ike_sa_initiated")
        deferred.callback(sa)

    # -- certificates and EAP (not on the pre-shared-key path) -----------------------------------

    def _sendAuthWith(self, sa: IKESA, setup: _Setup, spec: InitiatorSpec) -> None:
        """
        IKE_AUTH for every spec that is not pskOnly: our CERT payloads and a signature, no AUTH
        at all for EAP, or a pre-shared key checked against a responder that may sign.
        """
        idi = IDiPayload(spec.identity.idType, spec.identity.data)
        setup.idiBody = idi.bodyBytes()
        mode = spec.authMode
        payloads: list = [idi]
        if spec.initialContact:
            payloads.append(self.notify(NotifyType.INITIAL_CONTACT))
        payloads.extend(CertPayload(_X509, der) for der in spec.certificateData)
        if spec.certReq is not None:
            payloads.append(spec.certReq)
        if spec.remoteIdentity is not None:
            payloads.append(IDrPayload(spec.remoteIdentity.idType, spec.remoteIdentity.data))
        if mode == AUTH_EAP_MSCHAPV2:
            setup.eap = MSCHAPv2Peer(spec.eapIdentity or str(spec.identity), spec.eapPassword)
            onResponse = self._eapAnswered
        else:
            octets = signedOctets(
                sa.suite.prf, sa.initRequest, sa.nonceR, sa.keys.skPi, setup.idiBody
            )
            if mode == AUTH_PUBKEY:
                from ikehub.auth.signatures import signWithBestHash

                method, data = signWithBestHash(
                    spec.credentials.privateKey, octets, setup.responderHashes
                )
            else:
                method, data = (
                    AuthMethod.SHARED_KEY_MIC,
                    pskAuthData(sa.suite.prf, spec.psk, octets),
                )
            payloads.append(AuthPayload(method, data))
            onResponse = self._signedAuthAnswered
        self._sendAuthRequest(sa, setup, payloads, onResponse)

    def _refuseResponder(self, sa: IKESA, reason: str) -> None:
        """
        We do not accept the responder: tell it once (RFC 7296 section 2.21.2, an INFORMATIONAL
        with AUTHENTICATION_FAILED, and a Delete for a responder that already established its
        side), not waiting for an answer, and fail the setup with C{reason}.
        """
        self.sendRequest(
            sa,
            ExchangeType.INFORMATIONAL,
            [self.notify(NotifyType.AUTHENTICATION_FAILED), DeletePayload(ProtocolId.IKE, ())],
            _ignoreResponse,
        )
        self._fail(sa, reason)

    def _responderIdentity(self, sa: IKESA, setup: _Setup, payloads):
        """
        The responder's IDr payload and identity, or None after failing the setup (an error
        notify, no IDr, or not the identity we asked for).
        """
        idr = next((p for p in payloads if type(p) is IDrPayload), None)
        if idr is None:
            error = _errorNotify(payloads)
            notifyType = error.notifyType if error is not None else None
            self._fail(sa, f"IKE_AUTH refused: {notifyName(notifyType)}", notifyType)
            return None
        try:
            identity = Identity(idr.idType, idr.data)
        except ValueError:
            self._refuseResponder(sa, "responder's IDr is not a valid identity")
            return None
        expected = setup.spec.remoteIdentity
        if expected is not None and identity != expected:
            self._refuseResponder(sa, f"responder is {identity}, not {expected}")
            return None
        return idr, identity

    def _responderAuthProblem(self, sa: IKESA, setup: _Setup, idr, auth, payloads) -> str | None:
        """
        Why the responder's AUTH payload (before or without EAP) is not accepted, or None:
        a shared key MIC needs our pre-shared key; a signature needs a certificate that chains
        to the spec's trust store, names the IDr and made the signature.
        """
        spec = setup.spec
        octets = signedOctets(
            sa.suite.prf, sa.initResponse, sa.nonceI, sa.keys.skPr, idr.bodyBytes()
        )
        if auth.method == AuthMethod.SHARED_KEY_MIC:
            if spec.psk is None:
                return "responder used a pre-shared key, and we have none"
            if not verifyPskAuth(sa.suite.prf, spec.psk, octets, auth.data):
                return "responder's AUTH did not verify"
            return None
        if spec.trust is None:
            return (
                "responder signed its AUTH, and no trust store was given to check its certificate"
            )
        import datetime

        from cryptography import x509

        from ikehub.auth import certs
        from ikehub.auth.signatures import SignatureError, verifyAuth

        blobs = [p.data for p in payloads if type(p) is CertPayload and p.encoding == _X509]
        if not blobs:
            return "responder signed its AUTH but sent no certificate"
        if len(blobs) > certs.MAX_INTERMEDIATES + 1 or any(
            len(blob) > certs.MAX_CERTIFICATE_SIZE for blob in blobs
        ):
            return f"responder's certificate refused: {certs.REASON_TOO_LARGE}"
        try:
            endEntity, *intermediates = [x509.load_der_x509_certificate(b) for b in blobs]
            now = datetime.datetime.fromtimestamp(self.clock.seconds(), datetime.UTC)
            validated = certs.validatePeerCertificate(spec.trust, endEntity, intermediates, now)
        except ValueError:
            return f"responder's certificate refused: {certs.REASON_MALFORMED}"
        except certs.CertificateError as e:
            return f"responder's certificate refused: {e.reason}"
        if not certs.identityMatches(validated.endEntity, idr.idType, idr.data):
            return f"responder's certificate refused: {certs.REASON_IDENTITY}"
        try:
            verifyAuth(validated.publicKey, auth.method, auth.data, octets)
        except SignatureError as e:
            return f"responder's signature refused: {e.reason}"
        return None

    def _signedAuthAnswered(self, sa: IKESA, header, payloads, data, peer, path) -> None:
        """The IKE_AUTH response to our signature (or a PSK checked against a signing hub)."""
        setup: _Setup = sa.context
        verified = self._verifiedResponder(sa, setup, payloads, "responder sent no AUTH payload")
        if verified is not None:
            self._established(sa, setup, verified[1], payloads)

    def _verifiedResponder(self, sa: IKESA, setup: _Setup, payloads, withoutAuth: str):
        """
        (IDr, identity) once the responder's identity, certificate and AUTH check out; else
        None, the SA refused (with C{withoutAuth} as the reason when it sent no AUTH).
        """
        found = self._responderIdentity(sa, setup, payloads)
        if found is None:
            return None
        idr, identity = found
        auth = next((p for p in payloads if type(p) is AuthPayload), None)
        if auth is None:
            self._refuseResponder(sa, withoutAuth)
            return None
        problem = self._responderAuthProblem(sa, setup, idr, auth, payloads)
        if problem is not None:
            self._refuseResponder(sa, problem)
            return None
        return found

    def _eapAnswered(self, sa: IKESA, header, payloads, data, peer, path) -> None:
        """
        An IKE_AUTH response while EAP runs: the first one also carries the responder's
        identity, certificate and signature, checked before we answer its first request.
        """
        setup: _Setup = sa.context
        error = _errorNotify(payloads)
        if error is not None:
            return self._fail(
                sa, f"IKE_AUTH refused: {notifyName(error.notifyType)}", error.notifyType
            )
        if sa.peerIdentity is None:
            verified = self._verifiedResponder(
                sa,
                setup,
                payloads,
                "responder did not authenticate (EAP-only is not accepted with MSCHAPv2)",
            )
            if verified is None:
                return
            idr, sa.peerIdentity = verified
            setup.idrBody = idr.bodyBytes()
        from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPParseError

        eap = next((p for p in payloads if type(p) is EAPPayload), None)
        if eap is None:
            return self._refuseResponder(sa, "responder sent no EAP payload")
        try:
            packet = EAPPacket.fromBytes(eap.message)
        except EAPParseError as e:
            return self._refuseResponder(sa, f"responder's EAP message is malformed: {e.reason}")
        if packet.code == EAPCode.REQUEST:
            try:
                answer = setup.eap.answer(packet)
            except EAPRefused as e:
                return self._refuseResponder(sa, e.reason)
            return self.sendRequest(
                sa, ExchangeType.IKE_AUTH, [EAPPayload(answer.toBytes())], self._eapAnswered
            )
        if packet.code != EAPCode.SUCCESS:
            return self._refuseResponder(sa, "EAP failed")
        msk = setup.eap.msk
        if msk is None:
            return self._refuseResponder(
                sa, "EAP-Success before the responder proved it knows the password"
            )
        prf = sa.suite.prf
        octets = signedOctets(prf, sa.initRequest, sa.nonceR, sa.keys.skPi, setup.idiBody)
        auth = AuthPayload(AuthMethod.SHARED_KEY_MIC, sessionKeyAuthData(prf, msk, octets))
        self.sendRequest(sa, ExchangeType.IKE_AUTH, [auth], self._eapFinalAnswered)

    def _eapFinalAnswered(self, sa: IKESA, header, payloads, data, peer, path) -> None:
        """The last IKE_AUTH response: the responder's AUTH keyed with the MSK, and the SA."""
        setup: _Setup = sa.context
        auth = next((p for p in payloads if type(p) is AuthPayload), None)
        if auth is None:
            error = _errorNotify(payloads)
            notifyType = error.notifyType if error is not None else None
            return self._fail(sa, f"IKE_AUTH refused: {notifyName(notifyType)}", notifyType)
        prf = sa.suite.prf
        octets = signedOctets(prf, sa.initResponse, sa.nonceI, sa.keys.skPr, setup.idrBody)
        expected = sessionKeyAuthData(prf, setup.eap.msk, octets)
        if auth.method != AuthMethod.SHARED_KEY_MIC or not hmac.compare_digest(expected, auth.data):
            return self._refuseResponder(sa, "responder's AUTH after EAP did not verify")
        setup.eap = None
        self._established(sa, setup, sa.peerIdentity, payloads)

    def _installInitiatorChild(self, sa: IKESA, setup: _Setup, payloads) -> None:
        inboundSpi = setup.inboundSpi
        setup.inboundSpi = None
        saPayload = next((p for p in payloads if type(p) is SAPayload), None)
        tsi = next((p for p in payloads if type(p) is TSiPayload), None)
        tsr = next((p for p in payloads if type(p) is TSrPayload), None)
        if saPayload is None or tsi is None or tsr is None or len(saPayload.proposals) != 1:
            self.sad.releaseSpi(inboundSpi)
            return
        chosen = saPayload.proposals[0]
        suite = checkChosenProposal(setup.spec.espProposals, chosen, ignoreKe=True)
        if (
            suite is None
            or len(chosen.spi) != 4
            or not covers(setup.tsr, tsr.selectors)
            or not (sa.virtualIps or covers(setup.tsi, tsi.selectors))
        ):
            self.sad.releaseSpi(inboundSpi)
            return
        self._newChild(
            sa, chosen.spi, suite, tsi.selectors, tsr.selectors, sa.nonceI, sa.nonceR, None,
            isInitiator=True, outbound=True, inboundSpi=inboundSpi,
        )
