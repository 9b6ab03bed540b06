"""
The exchanges as the initiator runs them: IKE_SA_INIT (following COOKIE and INVALID_KE_PAYLOAD
answers), IKE_AUTH with a pre-shared key and the first CHILD SA.

The same endpoint that serves road warriors uses this for the in-memory tests, the handshake
benchmark and, later, site-to-site tunnels.
"""

import dataclasses
import ipaddress
import os
import struct
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.ke import newKeyExchange
from ikehub.crypto.keys import deriveChildKeys, deriveIkeKeys
from ikehub.crypto.proposals import ProposalSpec, checkChosenProposal
from ikehub.ike.child import ChildSA
from ikehub.ike.nat import natDetectionNotifies, peerIsBehindNat
from ikehub.ike.psk import pskAuthData, signedOctets, verifyPskAuth
from ikehub.ike.sa import ZERO_SPI, IKESA, IKEState
from ikehub.ike.ts import covers, selectorsFromNetworks
from ikehub.wire.constants import (
    AuthMethod,
    CfgType,
    ConfigAttributeType,
    ExchangeType,
    NotifyType,
)
from ikehub.wire.identity import Identity
from ikehub.wire.payloads import (
    AuthPayload,
    ConfigAttribute,
    CPPayload,
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
_ANY4 = ipaddress.ip_network("0.0.0.0/0")


class IKEFailure(Exception):
    """
    Setting up an IKE SA failed; C{notifyType} is the peer's error notify when it sent one.
    """

    def __init__(self, reason: str, notifyType: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notifyType = notifyType


@dataclass(frozen=True)
class InitiatorSpec:
    """
    What an initiator asks for.
    """

    identity: Identity
    psk: bytes = dataclasses.field(repr=False)
    ikeProposals: tuple[ProposalSpec, ...]
    espProposals: tuple[ProposalSpec, ...]
    remoteIdentity: Identity | None = None
    requestVirtualIp: bool = False
    localTs: tuple = (_ANY4,)
    remoteTs: tuple = (_ANY4,)
    #: The responder's NAT-T port, where we move when a NAT is detected.
    remoteNattPort: int = 4500


class _Setup:
    """
    The initiator's scratch state while an IKE SA is being set up.
    """

    __slots__ = ("spec", "deferred", "kex", "cookie", "keRetries", "tsi", "tsr", "inboundSpi", "failure")

    def __init__(self, spec: InitiatorSpec, deferred: Deferred, kex) -> None:
        self.spec = spec
        self.deferred = deferred
        self.kex = kex
        self.cookie: bytes | None = None
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
        if cookie is not None and setup.cookie is None:
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
                suite.prf, suite.encr, suite.integ, sa.nonceI, sa.nonceR, sharedSecret, sa.spiI, sa.spiR
            ),
        )
        if self.keysDerived is not None:
            self.keysDerived(sa)
        if sa.path != self.floatPath and peerIsBehindNat(notifies, sa.spiI, sa.spiR, peer):
            # RFC 7296 section 2.23: float to the NAT-T port; IKE and ESP travel in UDP there.
            self.movePeer(sa, (peer[0], setup.spec.remoteNattPort), self.floatPath)
        self._sendAuth(sa)

    def _sendAuth(self, sa: IKESA) -> None:
        setup: _Setup = sa.context
        spec = setup.spec
        idi = IDiPayload(spec.identity.idType, spec.identity.data)
        octets = signedOctets(sa.suite.prf, sa.initRequest, sa.nonceR, sa.keys.skPi, idi.bodyBytes())
        payloads: list = [idi]
        if spec.remoteIdentity is not None:
            payloads.append(IDrPayload(spec.remoteIdentity.idType, spec.remoteIdentity.data))
        payloads.append(
            AuthPayload(AuthMethod.SHARED_KEY_MIC, pskAuthData(sa.suite.prf, spec.psk, octets))
        )
        if spec.requestVirtualIp:
            payloads.append(
                CPPayload(
                    CfgType.CFG_REQUEST,
                    (
                        ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS, b""),
                        ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_DNS, b""),
                    ),
                )
            )
        inboundSpi = self.sad.allocateSpi()
        proposals = tuple(
            child.toWire(number, inboundSpi) for number, child in enumerate(spec.espProposals, 1)
        )
        payloads += [SAPayload(proposals), TSiPayload(setup.tsi), TSrPayload(setup.tsr)]
        setup.inboundSpi = inboundSpi
        sa.state = IKEState.AUTH_SENT
        self.sendRequest(sa, ExchangeType.IKE_AUTH, payloads, self._authAnswered)

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
        sa.peerIdentity = identity
        sa.state = IKEState.ESTABLISHED
        sa.initRequest = sa.initResponse = b""

        cp = next((p for p in payloads if type(p) is CPPayload), None)
        if cp is not None:
            for attribute in cp.attributes:
                if attribute.attrType == ConfigAttributeType.INTERNAL_IP4_ADDRESS and len(attribute.value) == 4:
                    sa.virtualIps.append((None, ipaddress.IPv4Address(attribute.value)))
        self._installInitiatorChild(sa, setup, payloads)
        deferred = setup.deferred
        sa.context = None
        self.counters.increment("ike_sa_initiated")
        deferred.callback(sa)

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
        child = ChildSA(
            inboundSpi=inboundSpi,
            outboundSpi=chosen.spi,
            suite=suite,
            localTs=tsi.selectors,
            remoteTs=tsr.selectors,
            peer=sa.peer,
            path=sa.path,
            ikeSpi=sa.localSpi,
            createdAt=self.clock.seconds(),
        )
        child.setKeys(
            deriveChildKeys(sa.suite.prf, sa.keys.skD, suite.encr, suite.integ, sa.nonceI, sa.nonceR),
            isInitiator=True,
        )
        self.sad.install(child)
        sa.children.append(child)
