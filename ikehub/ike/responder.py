"""
The exchanges as the responder runs them (RFC 7296 sections 1.2-1.4, 2.6, 2.9, 2.15, 2.19).

Order matters for safety: nothing is kept for an IKE_SA_INIT that fails (no proposal, wrong KE
group, bad public value, missing cookie), and the hub sends its own AUTH only after verifying the
initiator's. Authentication failures look the same for an unknown identity and a wrong key.
"""

import hmac
import ipaddress
import os
import struct

from twisted.internet.defer import Deferred

from ikehub.auth.eap.conversation import Continue, Failed
from ikehub.auth.plugin import AuthAttempt
from ikehub.crypto.errors import CryptoError
from ikehub.auth.signatures import SIGNATURE_HASH_ALGORITHMS
from ikehub.crypto.ke import newKeyExchange
from ikehub.crypto.keys import deriveIkeKeys
from ikehub.crypto.proposals import ProposalSelector
from ikehub.ike.authstate import AuthState
from ikehub.ike.configpayload import addressAttribute, domainAttribute, subnetAttribute
from ikehub.ike.mobike import MalformedMobility, MobikeResponder, parseMobility, peerAddressList
from ikehub.ike.nat import natDetectionNotifies
from ikehub.ike.psk import DECOY_PSK, pskAuthData, sessionKeyAuthData, signedOctets
from ikehub.ike.sa import ZERO_SPI, IKESA, IKEState
from ikehub.ike.ts import hostRange, narrow, networkRange
from ikehub.wire.constants import (
    AuthMethod,
    CfgType,
    ConfigAttributeType,
    ExchangeType,
    HeaderFlag,
    NotifyType,
    PayloadType,
    ProtocolId,
    notifyName,
)
from ikehub.wire.errors import ParseError, UnsupportedCriticalPayload
from ikehub.wire.header import IKEHeader
from ikehub.wire.identity import Identity
from ikehub.wire.message import Message
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
    Proposal,
    SAPayload,
    TSiPayload,
    TSrPayload,
)

NONCE_MIN, NONCE_MAX = 16, 256
_RESPONSE = int(HeaderFlag.RESPONSE)
_SKF = int(PayloadType.SKF)
_SIGNATURE_HASHES = int(NotifyType.SIGNATURE_HASH_ALGORITHMS)
_FRAGMENTATION = int(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)
_GROUP = struct.Struct("!H")
#: EAP Code 4 (RFC 3748 section 4.2).
_EAP_FAILURE = 4
#: Status notifies of IKE_AUTH whose presence matters (see indexed).
_NOTED = frozenset(
    {
        NotifyType.ANOTHER_AUTH_FOLLOWS,
        NotifyType.INITIAL_CONTACT,
        NotifyType.MOBIKE_SUPPORTED,
        NotifyType.ADDITIONAL_IP4_ADDRESS,
        NotifyType.ADDITIONAL_IP6_ADDRESS,
    }
)
#: The peer's additional addresses (RFC 4555 section 3.4), kept in order under this key of
#: the index rather than as a flag.
_ADDITIONAL = frozenset({NotifyType.ADDITIONAL_IP4_ADDRESS, NotifyType.ADDITIONAL_IP6_ADDRESS})
ADDITIONAL_ADDRESSES = "additional addresses"
#: CERT and CERTREQ encoding 4: X.509 Certificate - Signature.
_X509 = 4
#: The CFG_REQUEST attributes asking for an address, and for protected subnets, per family.
_ADDRESS_TYPES = (
    (4, ConfigAttributeType.INTERNAL_IP4_ADDRESS),
    (6, ConfigAttributeType.INTERNAL_IP6_ADDRESS),
)
_SUBNET_TYPES = (
    (4, ConfigAttributeType.INTERNAL_IP4_SUBNET),
    (6, ConfigAttributeType.INTERNAL_IP6_SUBNET),
)
_ADDRESS_SET = frozenset(attrType for _, attrType in _ADDRESS_TYPES)
_SUBNET_SET = frozenset(attrType for _, attrType in _SUBNET_TYPES)
_DNS_DOMAIN = ConfigAttributeType.INTERNAL_DNS_DOMAIN


class DuplicatePayload(Exception):
    pass


#: Payloads an IKE_AUTH request carries at most once; a second one is a malformed message.
_SINGULAR = frozenset(
    {IDiPayload, IDrPayload, AuthPayload, CPPayload, SAPayload, TSiPayload, TSrPayload, EAPPayload}
)


def indexed(payloads) -> dict:
    """
    The request's singular payloads by type, in one pass (an IKE_AUTH handler looks up
    several), and under C{CertPayload} the Certificate Data of its X.509 CERT payloads in
    order; two singular payloads of one kind raise L{DuplicatePayload}.
    """
    found: dict = {}
    for payload in payloads:
        kind = type(payload)
        if kind in _SINGULAR:
            if kind in found:
                raise DuplicatePayload(kind.__name__)
            found[kind] = payload
        elif kind is CertPayload and payload.encoding == _X509:
            found.setdefault(CertPayload, []).append(payload.data)
        elif kind is NotifyPayload and payload.notifyType in _NOTED:
            if payload.notifyType in _ADDITIONAL:
                found.setdefault(ADDITIONAL_ADDRESSES, []).append(payload)
            else:
                found[payload.notifyType] = True
    return found


def single(payloads, cls):
    """
    The one payload of type C{cls}, or None; two of them is a malformed message.
    """
    found = None
    for payload in payloads:
        if type(payload) is cls:
            if found is not None:
                raise DuplicatePayload(cls.__name__)
            found = payload
    return found


class ResponderExchanges(MobikeResponder):
    """
    Mixed into L{ikehub.ike.endpoint.IKEEndpoint}.
    """

    def prepareResponder(self) -> None:
        """
        Do once per endpoint what every handshake would otherwise repeat: our IDr payload and
        the bytes of it that our AUTH covers, the memory of choices among offered proposals, and
        each pool's DNS attributes.
        """
        identity = self.settings.identity
        self._idr = IDrPayload(identity.idType, identity.data)
        self._idrBody = self._idr.bodyBytes()
        self._ikeSelector = ProposalSelector(self.settings.ikeProposals)
        self._espSelector = ProposalSelector(self.settings.espProposals)
        #: Each pool's DNS servers as CP attributes (see _dnsAttributes).
        self._poolDns: dict = {}
        #: CERTREQ naming our CAs, sent in every IKE_SA_INIT response when we have CAs.
        certReqData = self.auth.certReqData
        self._certReq = CertReqPayload(_X509, certReqData) if certReqData else None
        #: Our SIGNATURE_HASH_ALGORITHMS (RFC 7427), answered to peers that announce theirs.
        self._multipleAuth = self.notify(NotifyType.MULTIPLE_AUTH_SUPPORTED)
        self._mobikeSupported = self.notify(NotifyType.MOBIKE_SUPPORTED)
        #: RFC 7383 section 2.3: answered to an initiator that offers fragmentation.
        self._fragmentationSupported = self.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)
        self._ourHashes = self.notify(
            NotifyType.SIGNATURE_HASH_ALGORITHMS,
            b"".join(_GROUP.pack(h) for h in SIGNATURE_HASH_ALGORITHMS),
        )

    @staticmethod
    def _initOffers(payloads) -> tuple[tuple[int, ...] | None, bool]:
        """
        In one pass over an IKE_SA_INIT request: the hashes its SIGNATURE_HASH_ALGORITHMS
        notify lists (None without one), and whether it offers IKE fragmentation.
        """
        hashes = None
        fragmentation = False
        for payload in payloads:
            if type(payload) is NotifyPayload:
                notifyType = payload.notifyType
                if notifyType == _SIGNATURE_HASHES:
                    data = payload.data
                    hashes = tuple(
                        int.from_bytes(data[i : i + 2], "big")
                        for i in range(0, len(data) - 1, 2)
                    )
                elif notifyType == _FRAGMENTATION:
                    fragmentation = True
        return hashes, fragmentation

    # -- IKE_SA_INIT ------------------------------------------------------------------------

    def receiveInitRequest(self, data: bytes, header: IKEHeader, peer, path) -> None:
        if header.nextPayload == _SKF:
            # RFC 7383 section 2.5: IKE_SA_INIT is never fragmented (there are no keys yet).
            return self._drop("fragment_in_ike_sa_init", peer)
        existing = self.halfOpen.get((header.spiI, peer))
        if existing is not None:
            if existing.lastResponse is not None and existing.initRequest == data:
                self.counters.increment("retransmitted_request")
                self._send(existing.lastResponse, peer, path)
            else:
                self._drop("ike_sa_init_for_existing_sa", peer)
            return
        fromSource = self.halfOpenBySource.get(peer[0], 0)
        if fromSource >= self.settings.blockThreshold:
            # Before parsing or any cryptography: this address already holds its share.
            return self._drop("blocked_source", peer)
        try:
            message = Message.fromBytes(data, header)
        except UnsupportedCriticalPayload as e:
            notifyType = NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
            return self._initError(header, peer, path, notifyType, e.notifyData)
        except ParseError:
            return self._drop("malformed", peer)
        try:
            self._respondToInit(data, header, message, peer, path, fromSource)
        except DuplicatePayload:
            self._drop("duplicate_payload", peer)

    def _initError(self, header: IKEHeader, peer, path, notifyType: int, data: bytes = b""):
        """
        A stateless IKE_SA_INIT answer: only the notify, responder SPI zero (RFC 7296 section 2.6,
        1.2, 2.21.1).
        """
        self.counters.increment("sent_" + NotifyType(notifyType).name.lower())
        answer = IKEHeader(
            header.spiI,
            ZERO_SPI,
            0,
            ExchangeType.IKE_SA_INIT,
            int(HeaderFlag.RESPONSE),
            header.messageId,
        )
        self.sendPlain(answer, [self.notify(notifyType, data)], peer, path)

    def _respondToInit(
        self, data, header: IKEHeader, message: Message, peer, path, fromSource: int
    ) -> None:
        payloads = message.payloads
        saPayload = single(payloads, SAPayload)
        kePayload = single(payloads, KEPayload)
        noncePayload = single(payloads, NoncePayload)
        if saPayload is None or kePayload is None or noncePayload is None:
            return self._drop("ike_sa_init_missing_payload", peer)
        nonceI = noncePayload.nonce
        if not NONCE_MIN <= len(nonceI) <= NONCE_MAX:
            return self._initError(header, peer, path, NotifyType.INVALID_SYNTAX)

        if (
            len(self.halfOpen) >= self.settings.cookieThreshold
            or fromSource >= self.settings.cookieThresholdPerSource
        ) and not self._cookieAccepted(payloads, nonceI, peer, header.spiI):
            made = self.cookies.make(nonceI, peer[0], header.spiI)
            return self._initError(header, peer, path, NotifyType.COOKIE, made)

        chosen = self._ikeSelector.selectIke(saPayload.proposals)
        if chosen is None:
            return self._initError(header, peer, path, NotifyType.NO_PROPOSAL_CHOSEN)
        proposal, suite = chosen
        if kePayload.group != suite.keGroup:
            return self._initError(
                header, peer, path, NotifyType.INVALID_KE_PAYLOAD, _GROUP.pack(suite.keGroup)
            )
        try:
            kex = newKeyExchange(suite.keGroup)
            sharedSecret = kex.computeSharedSecret(kePayload.keyData)
        except CryptoError:
            return self._initError(header, peer, path, NotifyType.INVALID_SYNTAX)

        spiR = self.newSpi()
        nonceR = os.urandom(32)
        sa = IKESA(False, header.spiI, spiR, peer, path, self.clock.seconds())
        sa.context = peer
        sa.nonceI, sa.nonceR = nonceI, nonceR
        sa.installKeys(
            suite,
            deriveIkeKeys(
                suite.prf, suite.encr, suite.integ, nonceI, nonceR, sharedSecret, header.spiI, spiR
            ),
        )
        if self.keysDerived is not None:
            self.keysDerived(sa)
        sa.nextPeerRequestId = 1
        sa.initRequest = data

        answer = [
            SAPayload((proposal,)),
            KEPayload(suite.keGroup, kex.publicKey),
            NoncePayload(nonceR),
        ]
        if self._certReq is not None:
            answer.append(self._certReq)
        peerHashes, fragmentation = self._initOffers(payloads)
        if fragmentation and self.settings.fragmentation:
            sa.fragmentSize = self.fragmentLimit(peer)
            answer.append(self._fragmentationSupported)
        if peerHashes is not None:
            sa.authState = AuthState()
            sa.authState.peerHashes = peerHashes
            answer.append(self._ourHashes)
        # RFC 4739: the responder announces in IKE_SA_INIT that it takes a second round; the
        # initiator answers in IKE_AUTH (strongSwan sends ANOTHER_AUTH_FOLLOWS only then).
        answer.append(self._multipleAuth)
        # Always report a NAT (a random source hash): the hub's ESP lives in userspace and only
        # sees UDP, so every peer must encapsulate (RFC 3948).
        answer.extend(natDetectionNotifies(header.spiI, spiR, None, peer))
        responseHeader = IKEHeader.outgoing(
            header.spiI, spiR, ExchangeType.IKE_SA_INIT, _RESPONSE, 0
        )
        sa.initResponse = sa.lastResponse = self.sendPlain(responseHeader, answer, peer, path)
        sa.lastRequestHash = b""
        self.sas[spiR] = sa
        self.addHalfOpen(sa)

    def _cookieAccepted(self, payloads, nonceI: bytes, peer, spiI: bytes) -> bool:
        """
        Whether the request's first payload is a COOKIE we made for this nonce, address and
        SPI (RFC 7296 section 2.6: the cookie comes first, everything else unchanged). A
        cookie anywhere else, for another request, or under an expired secret does not count;
        the caller answers with a fresh one.
        """
        first = payloads[0]
        if type(first) is not NotifyPayload or first.notifyType != NotifyType.COOKIE:
            self.counters.increment("cookie_missing")
            return False
        if not self.cookies.check(first.data, nonceI, peer[0], spiI):
            self.counters.increment("cookie_refused")
            return False
        self.counters.increment("cookie_accepted")
        return True

    # -- IKE_AUTH ---------------------------------------------------------------------------

    def handle_IKE_AUTH(self, sa: IKESA, header: IKEHeader, payloads) -> None:
        state = sa.authState
        try:
            if state is not None and state.session is not None:
                self._continueEap(sa, state, payloads)
            elif state is not None and state.secondRound:
                self._secondRound(sa, state, payloads)
            else:
                self._authenticate(sa, payloads)
        except DuplicatePayload as e:
            self.respond(sa, ExchangeType.IKE_AUTH, [self.notify(NotifyType.INVALID_SYNTAX)])
            self.removeSa(sa, f"duplicate {e} payload in IKE_AUTH")

    def _authFailed(self, sa: IKESA, reason: str, before=()) -> None:
        """
        Refuse the peer: AUTHENTICATION_FAILED (after C{before}, e.g. an EAP-Failure), a log
        line carrying the PAD's decision record, and nothing kept.
        """
        self.counters.increment("authentication_failed")
        answer = [*before, self.notify(NotifyType.AUTHENTICATION_FAILED)]
        self.respond(sa, ExchangeType.IKE_AUTH, answer)
        self.log.warn(
            "IKE SA with {peer} ({identity}) failed: {reason}",
            event="ike_sa_failed",
            reason=reason,
            **sa.describe(),
        )
        self.removeSa(sa, reason)

    def _whenReady(self, sa: IKESA, result, then) -> None:
        """
        Call C{then(result)} now, or when a Deferred C{result} fires; meanwhile the SA is busy
        (requests are dropped), and if it was removed in between the verdict is dropped too.
        """
        if not isinstance(result, Deferred):
            then(result)
            return
        state = sa.authState
        state.busy = True

        def ready(value):
            state.busy = False
            if sa.state is IKEState.HALF_OPEN and self.sas.get(sa.localSpi) is sa:
                then(value)

        def failed(failure):
            state.busy = False
            self.log.failure("Authenticator failed for {peer}", failure, peer=sa.peer[0])
            if sa.state is IKEState.HALF_OPEN and self.sas.get(sa.localSpi) is sa:
                self._authFailed(sa, "internal error in the authenticator")

        result.addCallbacks(ready, failed)

    def _authenticate(self, sa: IKESA, payloads) -> None:
        found = indexed(payloads)
        idi = found.get(IDiPayload)
        auth = found.get(AuthPayload)
        if idi is None:
            self.respond(sa, ExchangeType.IKE_AUTH, [self.notify(NotifyType.INVALID_SYNTAX)])
            return self.removeSa(sa, "IKE_AUTH without IDi")
        try:
            sa.peerIdentity = Identity(idi.idType, idi.data)
        except ValueError:
            return self._authFailed(sa, "IDi payload is not a valid identity")
        state = sa.authState
        if state is None:
            state = sa.authState = AuthState()
        decision = state.decision = self.pad.lookup(sa.peerIdentity, sa.peer[0])
        entry = decision.entry
        state.idiBody = idi.bodyBytes()
        state.request = found
        if auth is None:
            return self._startEap(sa, state, payloads)

        prf = sa.suite.prf
        octets = signedOctets(prf, sa.initRequest, sa.nonceR, sa.keys.skPi, state.idiBody)
        attempt = AuthAttempt(
            identity=sa.peerIdentity,
            peerAddress=sa.peer[0],
            entry=entry,
            method=auth.method,
            authData=auth.data,
            octets=octets,
            certificates=tuple(found.get(CertPayload, ())),
            now=self.clock.seconds(),
            pskMac=lambda psk: pskAuthData(prf, psk, octets),
        )
        authenticator = self.auth.authenticators.get(entry.auth) if entry is not None else None
        if authenticator is None:
            # An unknown identity costs what a wrong key costs.
            attempt.verifyPsk(DECOY_PSK)
            if entry is None:
                return self._authFailed(sa, decision.reason)
            return self._authFailed(
                sa,
                f"{decision.reason}; it requires auth {entry.auth!r}, and the peer sent an "
                f"AUTH payload (method {auth.method}) instead of starting EAP",
            )
        self._whenReady(
            sa,
            authenticator.authenticate(attempt),
            lambda result: self._peerAuthenticated(sa, state, result),
        )

    def _peerAuthenticated(self, sa: IKESA, state: AuthState, result) -> None:
        entry = state.entry = state.decision.entry
        if not result.accepted:
            return self._authFailed(sa, f"{state.decision.reason}; {result.reason}")
        groupRefusal = entry.groupRefusal(result.groups)
        if groupRefusal is not None:
            return self._authFailed(sa, f"{state.decision.reason}; {groupRefusal}")
        another = state.request.get(NotifyType.ANOTHER_AUTH_FOLLOWS, False)
        if another != (entry.secondAuth is not None):
            why = (
                f"the PAD entry requires a second round ({entry.secondAuth}) and the peer did "
                "not announce one (ANOTHER_AUTH_FOLLOWS)"
                if entry.secondAuth is not None
                else "the peer announced another authentication round the PAD entry has not"
            )
            return self._authFailed(sa, f"{state.decision.reason}; {why}")
        answer: list = [self._idr]
        if entry.localAuth == "psk":
            key = result.sharedKey if result.sharedKey is not None else entry.psk
            ourOctets = self._ourOctets(sa)
            answer.append(
                AuthPayload(AuthMethod.SHARED_KEY_MIC, pskAuthData(sa.suite.prf, key, ourOctets))
            )
        else:
            answer.extend(self._signedAuth(sa, state))
        if entry.secondAuth is not None:
            # RFC 4739: we are authenticated now; the peer's next round is EAP.
            state.secondRound = True
            return self.respond(sa, ExchangeType.IKE_AUTH, answer)
        self._finishAuth(sa, state, answer)

    def _secondRound(self, sa: IKESA, state: AuthState, payloads) -> None:
        """
        RFC 4739: the peer's second authentication, an EAP method for a new IDi (typically
        the user after the device's certificate). Its final AUTH covers this round's IDi.
        """
        found = indexed(payloads)
        idi = found.get(IDiPayload)
        if idi is None or AuthPayload in found:
            return self._authFailed(
                sa, f"{state.decision.reason}; the second round must start EAP: IDi, no AUTH"
            )
        try:
            identity = Identity(idi.idType, idi.data)
        except ValueError:
            return self._authFailed(sa, "the second round's IDi is not a valid identity")
        state.idiBody = idi.bodyBytes()
        for kind in (SAPayload, TSiPayload, TSrPayload, CPPayload):
            if kind in found:
                state.request[kind] = found[kind]
        entry = state.entry
        state.session = self.auth.eapMethods[entry.secondAuth].newSession(
            str(identity), entry.eapIdentity
        )
        self._whenReady(sa, state.session.start(), lambda o: self._eapStarted(sa, state, o))

    def _ourOctets(self, sa: IKESA) -> bytes:
        return signedOctets(
            sa.suite.prf, sa.initResponse, sa.nonceI, sa.keys.skPr, self._idrBody
        )

    def _signedAuth(self, sa: IKESA, state: AuthState) -> list:
        """Our certificate chain and our signature AUTH payload (RFC 7296 section 2.15)."""
        signer = self.auth.signer
        method, data = signer.sign(self._ourOctets(sa), state.peerHashes)
        payloads: list = [CertPayload(_X509, der) for der in signer.certificates]
        payloads.append(AuthPayload(method, data))
        return payloads

    # -- EAP (RFC 7296 section 2.16, RFC 5998) ------------------------------------------------

    def _startEap(self, sa: IKESA, state: AuthState, payloads) -> None:
        entry = state.decision.entry
        method = self.auth.eapMethods.get(entry.auth) if entry is not None else None
        if method is None:
            if entry is None:
                return self._authFailed(sa, f"{state.decision.reason} (the peer asked for EAP)")
            return self._authFailed(
                sa,
                f"{state.decision.reason}; it requires auth {entry.auth!r}, but the peer sent "
                "no AUTH payload (it wants EAP)",
            )
        state.entry = entry
        # EAP-only (RFC 5998) is the responder's option, taken per PAD entry (local_auth =
        # "eap"): strongSwan announces EAP_ONLY_AUTHENTICATION with every mutual method yet
        # refuses an unsigned responder when its remote.auth is pubkey, so by default the hub
        # signs.
        if entry.localAuth == "eap":
            asked = any(
                type(p) is NotifyPayload and p.notifyType == NotifyType.EAP_ONLY_AUTHENTICATION
                for p in payloads
            )
            if not asked or entry.auth not in self.auth.mutualMethods:
                return self._authFailed(
                    sa,
                    f"{state.decision.reason}; EAP-only authentication (local_auth = \"eap\") "
                    "needs a mutual method and the peer's EAP_ONLY_AUTHENTICATION",
                )
            state.eapOnly = True
        elif self.auth.signer is None:
            return self._authFailed(sa, "EAP needs the hub's certificate (hub.certificate)")
        state.session = method.newSession(str(sa.peerIdentity), entry.eapIdentity)
        self._whenReady(sa, state.session.start(), lambda o: self._eapStarted(sa, state, o))

    def _eapStarted(self, sa: IKESA, state: AuthState, outcome) -> None:
        if not isinstance(outcome, Continue):
            return self._eapStep(sa, state, outcome)
        answer: list = []
        if not state.secondRound:
            answer.append(self._idr)
            if not state.eapOnly:
                answer.extend(self._signedAuth(sa, state))
        answer.append(EAPPayload(outcome.message))
        self.respond(sa, ExchangeType.IKE_AUTH, answer)

    def _continueEap(self, sa: IKESA, state: AuthState, payloads) -> None:
        if state.eapDone:
            return self._finalEapAuth(sa, state, payloads)
        eap = indexed(payloads).get(EAPPayload)
        if eap is None:
            return self._authFailed(
                sa, f"{state.decision.reason}; an IKE_AUTH request without EAP payload "
                "before EAP finished"
            )
        self._whenReady(
            sa, state.session.receive(eap.message), lambda o: self._eapStep(sa, state, o)
        )

    def _eapStep(self, sa: IKESA, state: AuthState, outcome) -> None:
        if isinstance(outcome, Continue):
            return self.respond(sa, ExchangeType.IKE_AUTH, [EAPPayload(outcome.message)])
        if isinstance(outcome, Failed):
            failure = [EAPPayload(outcome.message)] if outcome.message else []
            return self._authFailed(
                sa, f"{state.decision.reason}; {self._eapName(state)}: {outcome.reason}", failure
            )
        refusal = state.entry.groupRefusal(outcome.groups) or state.entry.eapIdentityRefusal(
            outcome.identity
        )
        if refusal is not None:
            # The method succeeded but the PAD says no: the peer hears EAP-Failure, not the
            # method's Success (same identifier, RFC 3748 section 4.2).
            identifier = outcome.message[1] if len(outcome.message) > 1 else 0
            failure = [EAPPayload(bytes((_EAP_FAILURE, identifier, 0, 4)))]
            return self._authFailed(sa, f"{state.decision.reason}; {refusal}", failure)
        if state.eapOnly and not outcome.msk:
            return self._authFailed(
                sa, f"{state.entry.auth} produced no MSK, required for EAP-only authentication"
            )
        state.eapDone = True
        state.msk = outcome.msk
        state.eapIdentity = outcome.identity
        state.groups = outcome.groups
        state.address = outcome.address
        self.respond(sa, ExchangeType.IKE_AUTH, [EAPPayload(outcome.message)])

    @staticmethod
    def _eapName(state: AuthState) -> str:
        return state.entry.secondAuth if state.secondRound else state.entry.auth

    def _finalEapAuth(self, sa: IKESA, state: AuthState, payloads) -> None:
        """
        The last round: AUTH over the peer's IKE_SA_INIT and IDi, keyed with the MSK, or with
        SK_pi when the method made none (RFC 7296 section 2.16); ours likewise with SK_pr.
        """
        auth = indexed(payloads).get(AuthPayload)
        prf = sa.suite.prf
        keys = sa.keys
        peerKey = state.msk or keys.skPi
        octets = signedOctets(prf, sa.initRequest, sa.nonceR, keys.skPi, state.idiBody)
        if (
            auth is None
            or auth.method != AuthMethod.SHARED_KEY_MIC
            or not hmac.compare_digest(sessionKeyAuthData(prf, peerKey, octets), auth.data)
        ):
            return self._authFailed(
                sa, f"{state.decision.reason}; the AUTH payload after EAP did not verify"
            )
        ourKey = state.msk or keys.skPr
        ours = AuthPayload(
            AuthMethod.SHARED_KEY_MIC, sessionKeyAuthData(prf, ourKey, self._ourOctets(sa))
        )
        self._finishAuth(sa, state, [ours])

    def _peerGaveUp(self, sa: IKESA, payloads) -> None:
        """
        The peer ended the IKE SA during EAP, usually with AUTHENTICATION_FAILED after the
        method told it the password was wrong: answer, record why, keep nothing.
        """
        notified = ", ".join(
            notifyName(p.notifyType)
            for p in payloads
            if type(p) is NotifyPayload
        )
        self.respond(sa, ExchangeType.INFORMATIONAL, [])
        state = sa.authState
        self.counters.increment("authentication_failed")
        self.log.warn(
            "IKE SA with {peer} ({identity}) failed: {reason}",
            event="ike_sa_failed",
            reason=f"{state.decision.reason}; {self._eapName(state)}: the peer gave up during EAP "
            f"({notified or 'no notify'})",
            **sa.describe(),
        )
        self.removeSa(sa, "the peer gave up during EAP")

    # -- the end of IKE_AUTH --------------------------------------------------------------------

    def _notePassedOver(self, sa: IKESA, decision) -> None:
        """
        When an earlier entry whose identity pattern takes the peer was passed over (its
        remote_addrs exclude the peer's address), log which entry governs instead and why: the
        peer gets that entry's pool and selectors, which an operator should not have to guess.
        Nothing when the first entry governs, the common case, or when the PAD's decisions do
        not list the table (IPeerAuthorizationDatabase promises only entry and reason).
        """
        entries = getattr(decision, "entries", ())
        if not entries or decision.entry is entries[0]:
            return
        for entry in entries:
            if entry is decision.entry:
                return
            if entry.admitsIdentity(sa.peerIdentity):
                self.log.info(
                    "IKE SA with {peer} ({identity}): {reason}",
                    event="pad_passed_over",
                    reason=decision.reason,
                    **sa.describe(),
                )
                return

    def _finishAuth(self, sa: IKESA, state: AuthState, answer: list) -> None:
        """
        The peer is authenticated and authorized: lend its address, negotiate the first CHILD
        SA from the first request's payloads, and establish the IKE SA.
        """
        self._notePassedOver(sa, state.decision)
        entry = sa.entry = state.entry
        found = state.request
        uniqueKey = state.eapIdentity or str(sa.peerIdentity)
        others = self.byIdentity.get(uniqueKey)
        if others:
            initialContact = found.get(NotifyType.INITIAL_CONTACT, False)
            policy = entry.duplicates
            # A new IKE SA from the very address of an existing one is that device
            # reauthenticating (RFC 7296 section 2.8.3: a new IKE SA, then the old one deleted),
            # not a second device: "keep" lets it replace its own SA, as strongSwan does.
            if (
                policy == "keep"
                and not initialContact
                and not any(old.peer[0] == sa.peer[0] for old in others)
            ):
                return self._authFailed(
                    sa,
                    f"{state.decision.reason}; {uniqueKey} already has an IKE SA and the "
                    'entry\'s duplicates policy is "keep"',
                )
            if policy != "never":
                # Before the address is lent, so that a returning device gets its own back.
                for old in list(others):
                    self.replaceIkeSa(old, sa)
        addressFailed = False
        cp = found.get(CPPayload)
        if cp is not None and cp.cfgType == CfgType.CFG_REQUEST:
            reply = self._configReply(sa, entry, cp, state.address, uniqueKey)
            if reply is None:
                addressFailed = True
            elif reply.attributes:
                answer.append(reply)

        saPayload = found.get(SAPayload)
        if addressFailed:
            # RFC 7296 section 3.15.4: the IKE SA is created, the first CHILD SA is not.
            answer.append(self.notify(NotifyType.INTERNAL_ADDRESS_FAILURE))
            self._addressFailed(sa, entry, cp)
        elif saPayload is not None:
            answer.extend(
                self._createChild(sa, saPayload, found.get(TSiPayload), found.get(TSrPayload))
            )

        if found.get(NotifyType.MOBIKE_SUPPORTED) and self.settings.mobike:
            # RFC 4555 section 3.2: both sides said so in IKE_AUTH (in the message with the SA
            # payload, which is the first request, kept in state.request).
            sa.mobike = True
            answer.append(self._mobikeSupported)
            additional = found.get(ADDITIONAL_ADDRESSES)
            if additional:
                sa.peerAddresses = peerAddressList(additional)
        sa.state = IKEState.ESTABLISHED
        self.indexPeer(sa)
        sa.authState = None
        sa.uniqueKey = uniqueKey
        self.byIdentity.setdefault(uniqueKey, []).append(sa)
        self.forgetHalfOpen(sa)
        self.respond(sa, ExchangeType.IKE_AUTH, answer)
        # Only AUTH needed these; an established SA keeps nothing it will not use again.
        sa.initRequest = sa.initResponse = b""
        self.counters.increment("ike_sa_established")
        self.log.info(
            # Few substitutions: the text observer formats each one in pure Python, and this
            # line is written for every IKE SA. The event still carries every field.
            "IKE SA with {peer} ({identity}) established",
            event="ike_sa_established",
            entry=entry.name,
            auth=entry.auth,
            eap_identity=state.eapIdentity,
            vip=", ".join(str(a) for _, a in sa.virtualIps) or None,
            children=[child.inboundSpi.hex() for child in sa.children],
            **sa.describe(),
        )

    def _configReply(
        self,
        sa: IKESA,
        entry,
        cp: CPPayload,
        assigned: str | None = None,
        owner: str | None = None,
    ) -> CPPayload | None:
        """
        Answer a CFG_REQUEST (RFC 7296 section 3.15): one address per family asked for, lent
        from the entry's first pool of that family with one free, or the address the
        authenticator assigned (RADIUS Framed-IP-Address); the DNS servers of the pools that
        lent; the protected subnets (INTERNAL_IP4/IP6_SUBNET) and split-DNS domains (RFC 8598)
        when asked for.

        A family the entry has no pool for is ignored, as section 3.15.4 says; None (the caller
        answers INTERNAL_ADDRESS_FAILURE) only when addresses were asked for and none could be
        given, which leaves no lease behind. An entry without pools ignores address requests.

        @param owner: whom the leases belong to: the EAP identity where there is one, as for
            duplicates, since a device that sends its IP address as IDi (Windows) sends
            another one from every network; by default the peer's IDi.
        """
        wanted = {attr.attrType for attr in cp.attributes}
        attributes: list[ConfigAttribute] = []
        lenders: list = []
        if not wanted.isdisjoint(_ADDRESS_SET) and (entry.pools or assigned is not None):
            given = self._lendAddresses(sa, entry, wanted, assigned, lenders, owner)
            if not given:
                return None
            attributes += given
        if lenders:
            dns = self._dnsAttributes(lenders[0])
            for pool in lenders[1:]:
                dns += tuple(a for a in self._dnsAttributes(pool) if a not in dns)
            attributes += dns
            # RFC 8598 section 3.2: domains only to an initiator that asked (any value, also
            # empty), and only with the DNS servers that resolve them.
            if _DNS_DOMAIN in wanted and dns and entry.dnsDomains:
                attributes += map(domainAttribute, entry.dnsDomains)
        if not wanted.isdisjoint(_SUBNET_SET):
            for version, attrType in _SUBNET_TYPES:
                if attrType in wanted:
                    attributes += (
                        subnetAttribute(network)
                        for network in entry.localTs
                        if network.version == version
                    )
        return CPPayload(CfgType.CFG_REPLY, tuple(attributes))

    def _addressFailed(self, sa: IKESA, entry, cp: CPPayload) -> None:
        """Count and explain an INTERNAL_ADDRESS_FAILURE: which families, which pools."""
        self.counters.increment("sent_internal_address_failure")
        wanted = {attr.attrType for attr in cp.attributes}
        asked = [version for version, attrType in _ADDRESS_TYPES if attrType in wanted]
        pools = ", ".join(f"{pool.name} (IPv{pool.first.version})" for pool in entry.pools)
        self.log.warn(
            "CHILD SA with {peer} ({identity}) refused: {reason}",
            event="child_sa_failed",
            reason=f"INTERNAL_ADDRESS_FAILURE: no address for "
            f"{' or '.join(f'IPv{v}' for v in asked)} from PAD entry {entry.name!r} "
            f"(pools: {pools or 'none'}); the IKE SA stands without a CHILD SA",
            **sa.describe(),
        )

    def _lendAddresses(
        self, sa: IKESA, entry, wanted, assigned, lenders: list, owner: str | None = None
    ) -> list:
        """
        The address attributes for the families C{wanted} asks for, each address recorded in
        C{sa.virtualIps} (released with the SA) and each lending pool appended to C{lenders}.
        A family whose pools are all full is counted and logged with their names; one without
        a pool is counted.
        """
        given = []
        identity = owner or str(sa.peerIdentity)
        fixed = ipaddress.ip_address(assigned) if assigned is not None else None
        byFamily = entry.poolsByFamily
        for family, attrType in _ADDRESS_TYPES:
            if attrType not in wanted:
                continue
            candidates = byFamily.get(family, ())
            if fixed is not None and fixed.version == family:
                sa.virtualIps.append((None, fixed))
                given.append(addressAttribute(fixed))
                if candidates:
                    lenders.append(candidates[0])
                continue
            if not candidates:
                self.counters.increment("cp_family_without_pool")
                continue
            for pool in candidates:
                address = pool.acquire(identity)
                if address is not None:
                    break
            else:
                self.counters.increment("pool_exhausted")
                self.log.warn(
                    "IKE SA with {peer} ({identity}): no IPv{family} address for it, pool "
                    "{pool} is exhausted",
                    event="pool_exhausted",
                    family=family,
                    pool=", ".join(pool.name for pool in candidates),
                    entry=entry.name,
                    **sa.describe(),
                )
                continue
            sa.virtualIps.append((pool, address))
            given.append(addressAttribute(address))
            lenders.append(pool)
        return given

    def _dnsAttributes(self, pool) -> tuple[ConfigAttribute, ...]:
        """
        The pool's DNS servers as configuration attributes; the same for every lease, so built
        once per pool.
        """
        attributes = self._poolDns.get(pool)
        if attributes is None:
            attributes = self._poolDns[pool] = tuple(
                ConfigAttribute(
                    ConfigAttributeType.INTERNAL_IP4_DNS
                    if server.version == 4
                    else ConfigAttributeType.INTERNAL_IP6_DNS,
                    server.packed,
                )
                for server in pool.dns
            )
        return attributes

    def _allowedRemote(self, sa: IKESA, entry) -> list:
        """
        The address ranges the peer may use as its own side; 'dynamic' is its virtual IP, or
        its IKE address when it has none.
        """
        ranges = []
        for allowed in entry.remoteTs:
            if allowed == "dynamic":
                if sa.virtualIps:
                    ranges.extend(hostRange(address) for _, address in sa.virtualIps)
                else:
                    ranges.append(hostRange(sa.peer[0]))
            else:
                ranges.append(networkRange(allowed))
        return ranges

    def _createChild(self, sa: IKESA, saPayload, tsi, tsr) -> list:
        """
        Negotiate the first CHILD SA. A failure here costs only the CHILD SA: the IKE SA stands
        (RFC 7296 section 1.2), and the answer carries the notify instead of SA/TSi/TSr.
        """
        if tsi is None or tsr is None:
            return [self.notify(NotifyType.TS_UNACCEPTABLE)]
        # A KE transform in IKE_AUTH's SA is meaningless (the first CHILD SA's keys come from the
        # IKE SA's exchange), so it is ignored, as RFC 7296 section 1.2 and strongSwan do.
        chosen = self._espSelector.chooseChild(saPayload.proposals, ignoreKe=True)
        if chosen is None:
            self.counters.increment("child_no_proposal_chosen")
            return [self.notify(NotifyType.NO_PROPOSAL_CHOSEN)]
        offer, transforms, suite = chosen
        narrowed = self._narrowSelectors(sa, tsi, tsr)
        if narrowed is None:
            return [self.notify(NotifyType.TS_UNACCEPTABLE)]
        child = self._newChild(
            sa, offer.spi, suite, narrowed[1], narrowed[0], sa.nonceI, sa.nonceR, None,
            isInitiator=False, outbound=True,
        )
        answer = Proposal(offer.number, offer.protocolId, child.inboundSpi, transforms)
        return [SAPayload((answer,)), TSiPayload(narrowed[0]), TSrPayload(narrowed[1])]

    def _narrowSelectors(self, sa: IKESA, tsi, tsr):
        """
        The peer's TSi and TSr narrowed to what its PAD entry allows, or None (logged, counted)
        when either side ends up empty.
        """
        narrowedI = narrow(tsi.selectors, self._allowedRemote(sa, sa.entry))
        narrowedR = narrow(tsr.selectors, map(networkRange, sa.entry.localTs))
        if narrowedI and narrowedR:
            return narrowedI, narrowedR
        self.counters.increment("child_ts_unacceptable")
        entry = sa.entry
        side, asked, allowed = (
            ("its own side", tsi.selectors, entry.remoteTs)
            if not narrowedI
            else ("the hub's side", tsr.selectors, entry.localTs)
        )
        self.log.warn(
            "CHILD SA with {peer} ({identity}) refused: {reason}",
            event="child_sa_failed",
            reason=f"TS_UNACCEPTABLE: PAD entry {entry.name!r} does not allow "
            f"{', '.join(map(str, asked))} as {side} (allowed: "
            f"{', '.join(map(str, allowed))})",
            **sa.describe(),
        )
        return None

    # -- INFORMATIONAL ----------------------------------------------------

    def handle_INFORMATIONAL(self, sa: IKESA, header: IKEHeader, payloads) -> None:
        if sa.state is IKEState.HALF_OPEN:
            return self._peerGaveUp(sa, payloads)
        if any(
            type(p) is NotifyPayload and p.notifyType == NotifyType.AUTHENTICATION_FAILED
            for p in payloads
        ):
            # RFC 7296 section 2.21.2: the peer refused our AUTH (or our identity) after we
            # established; it deletes its side, and we must not keep ours.
            self.respond(sa, ExchangeType.INFORMATIONAL, [])
            self.counters.increment("refused_by_peer")
            self.log.warn(
                "IKE SA with {peer} ({identity}) failed: {reason}",
                event="ike_sa_failed",
                reason="the peer refused the hub's authentication (AUTHENTICATION_FAILED)",
                **sa.describe(),
            )
            return self.removeSa(sa, "refused by the peer")
        deletes = [p for p in payloads if type(p) is DeletePayload]
        if any(d.protocolId == ProtocolId.IKE for d in deletes):
            self.respond(sa, ExchangeType.INFORMATIONAL, [])
            self.removeSa(sa, "deleted by the peer")
            return
        try:
            mobility = parseMobility(payloads)
        except MalformedMobility as e:
            if not sa.mobike:
                # Without MOBIKE these are status notifies this SA has no use for, and those
                # are ignored, well-formed or not (RFC 7296 section 3.10.1).
                self.counters.increment("mobike_not_negotiated")
                mobility = None
            else:
                return self._malformedMobility(sa, e)
        answer: list = []
        for delete in deletes:
            if delete.protocolId != ProtocolId.ESP:
                continue
            ours = []
            for spi in delete.spis:
                child = next((c for c in sa.children if c.outboundSpi == spi), None)
                if child is not None:
                    ours.append(child.inboundSpi)
                    self.forgetChild(sa, child)
            if ours:
                answer.append(DeletePayload(ProtocolId.ESP, tuple(ours)))
        if mobility is not None:
            self.answerMobility(sa, mobility, answer)
        self.respond(sa, ExchangeType.INFORMATIONAL, answer)

    def _malformedMobility(self, sa: IKESA, error: MalformedMobility) -> None:
        """
        A MOBIKE SA's request with malformed MOBIKE notifies: authenticated, so it gets the
        RFC's answer (INVALID_SYNTAX), and no address or address list changes.
        """
        self.counters.increment("mobike_malformed")
        self.log.info(
            "IKE SA with {peer} ({identity}): malformed MOBIKE request: {reason}",
            event="mobike_malformed",
            reason=str(error),
            **sa.describe(),
        )
        self.respond(sa, ExchangeType.INFORMATIONAL, [self.notify(NotifyType.INVALID_SYNTAX)])
