"""
Our initiator with a certificate and with EAP-MSCHAPv2, against the hub in memory on a
task.Clock: certificates both ways (ECDSA P-256 and RSA, RFC 7427 signatures with the hash the
hub announced), EAP-MSCHAPv2 with the MSK keying both final AUTH payloads (and the peer's MSK
equal to the server's), and every way the responder or the password can be wrong: a wrong
password (AUTHENTICATION_FAILED from the hub), a hub certificate from a CA we do not trust, one
that does not name the hub's IDr, a signature by the wrong key, and a hub whose MSCHAPv2
authenticator response is forged. Whenever the initiator refuses the hub, the hub is told and
keeps nothing.
"""

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography import x509

from ikehub.auth.builtin import PubkeyAuthenticator
from ikehub.auth.certs import TrustStore, certReqHashes
from ikehub.auth.credentials import HubCredentials
from ikehub.auth.eap.conversation import Continue
from ikehub.auth.eap.local import LocalEAPMethod
from ikehub.auth.eap.mschapv2 import OPCODE_SUCCESS, EAPMSCHAPv2Server, serverMsk
from ikehub.auth.eap.packet import EAPPacket
from ikehub.auth.registry import AuthRegistry, HubSigner
from ikehub.auth.users import User, UserDatabase
from ikehub.ike import initiator
from ikehub.ike.initiator import IKEFailure, InitiatorSpec, mschapv2PeerMsk
from ikehub.ike.sa import IKEState
from ikehub.policy.pad import PAD, PADEntry
from ikehub.wire.constants import AuthMethod, NotifyType
from ikehub.wire.header import IKEHeader
from ikehub.wire.identity import Identity
from ikehub.wire.message import Message
from ikehub.wire.payloads import AuthPayload, NotifyPayload
from tests.ikepump import CLIENT, Pair, clientSpec, makePool
from tests.pki import NOW, dn, issue

PASSWORD = "alice-mschapv2-password"
HUB_ID = Identity.fromString("hub.example.com")


class PKI:
    """A CA, the hub's certificate (naming C{hubName}) and alice's, all with one key type."""

    def __init__(self, keyType="ecdsa", hubName="hub.example.com"):
        def newKey():
            if keyType == "rsa":
                return rsa.generate_private_key(65537, 2048)
            return ec.generate_private_key(ec.SECP256R1())

        self.caKey = newKey()
        self.ca = issue(dn("ikehub test CA"), self.caKey, dn("ikehub test CA"), self.caKey, ca=True)
        self.hubKey = newKey()
        self.hubCert = issue(
            dn(hubName), self.hubKey, self.ca.subject, self.caKey, san=[x509.DNSName(hubName)]
        )
        self.clientKey = newKey()
        self.clientCert = issue(
            dn("alice"),
            self.clientKey,
            self.ca.subject,
            self.caKey,
            san=[x509.RFC822Name("alice@example.com")],
        )
        self.trust = TrustStore([self.ca])


_PKIS: dict = {}


def pkiFor(keyType="ecdsa", hubName="hub.example.com") -> PKI:
    """Key generation (RSA above all) is slow: one PKI per kind for the whole module."""
    key = (keyType, hubName)
    if key not in _PKIS:
        _PKIS[key] = PKI(keyType, hubName)
    return _PKIS[key]


class RecordingPubkey(PubkeyAuthenticator):
    """The hub's pubkey authenticator, remembering the AUTH method of every attempt."""

    def __init__(self, trust):
        super().__init__(trust)
        self.methods = []

    def authenticate(self, attempt):
        self.methods.append(attempt.method)
        return super().authenticate(attempt)


def hubPair(auth, pki, signerKey=None, methodFactory=None, users=None, eapIdentity=False):
    """
    The hub as tests/test_ike_eap.py configures it: pubkey and eap-mschapv2 authenticators, a
    HubSigner with its certificate (signing with C{signerKey}, normally its own key), one PAD
    entry for *@example.com requiring C{auth}. The clock is at the certificates' "now".
    """
    pool = makePool()
    users = users or UserDatabase([User("alice@example.com", password=PASSWORD)])
    entry = PADEntry(
        "roadwarriors",
        Identity.fromString("*@example.com"),
        auth,
        None,
        pool,
        tuple(clientSpec().remoteTs),
        ("dynamic",),
        localAuth="pubkey",
        eapIdentity=eapIdentity,
    )
    pair = Pair(pad=PAD([entry]), pool=pool)
    pair.pubkey = RecordingPubkey(pki.trust)
    pair.hub.auth = AuthRegistry(
        {"pubkey": pair.pubkey},
        {
            "eap-mschapv2": LocalEAPMethod(
                "eap-mschapv2", methodFactory or EAPMSCHAPv2Server.factory(users)
            )
        },
        signer=HubSigner(HubCredentials([pki.hubCert], signerKey or pki.hubKey)),
        certReqData=certReqHashes(pki.trust),
    )
    pair.hub.prepareResponder()
    pair.clock.advance(NOW.timestamp())
    return pair


def certSpec(pki, trust=None, **overrides) -> InitiatorSpec:
    return clientSpec(
        psk=None,
        credentials=HubCredentials([pki.clientCert], pki.clientKey),
        trust=trust or pki.trust,
        remoteIdentity=HUB_ID,
        **overrides,
    )


def eapSpec(pki, password=PASSWORD, trust=None) -> InitiatorSpec:
    return clientSpec(psk=None, eapPassword=password, trust=trust or pki.trust)


def connect(pair, spec):
    results, failures = pair.connect(spec)
    pair.net.pump()
    return results, failures


def assertEstablished(pair, results, failures):
    assert not failures, failures[0].value.reason
    [sa] = results
    assert sa.state is IKEState.ESTABLISHED and sa.peerIdentity == HUB_ID
    assert sa.children and sa.virtualIps
    [hubSa] = pair.hub.sas.values()
    assert hubSa.state is IKEState.ESTABLISHED and len(hubSa.children) == 1
    assert hubSa.children[0].outboundSpi == sa.children[0].inboundSpi
    assert sa.children[0].outboundSpi == hubSa.children[0].inboundSpi
    assert str(hubSa.peerIdentity) == "alice@example.com"
    return sa


def assertRefusedByUs(pair, failures, reason):
    """The initiator failed with C{reason}, told the hub, and neither side kept anything."""
    [failure] = failures
    assert isinstance(failure.value, IKEFailure)
    assert reason in failure.value.reason, failure.value.reason
    assert failure.value.notifyType is None
    assert pair.client.sas == {} and len(pair.clientSad) == 0
    assert pair.hub.sas == {} and pair.hub.halfOpen == {}


def initNotifies(pair):
    """The notify types of the client's first IKE_SA_INIT request."""
    host, port, peer, datagram = next(r for r in pair.net.log if r[0] == CLIENT)
    message = Message.fromBytes(datagram, IKEHeader.fromBytes(datagram))
    return [p.notifyType for p in message.payloads if type(p) is NotifyPayload]


# -- certificates ---------------------------------------------------------------------------


@pytest.mark.parametrize("keyType", ["ecdsa", "rsa"])
def test_certificatesBothWaysEstablishWithRfc7427Signatures(keyType):
    """
    With credentials and trust, the initiator announces SIGNATURE_HASH_ALGORITHMS, signs with
    method 14 (the hub announced its hashes), and accepts the hub's chain and signature.
    """
    pki = pkiFor(keyType)
    pair = hubPair("pubkey", pki)
    sa = assertEstablished(pair, *connect(pair, certSpec(pki)))
    assert NotifyType.SIGNATURE_HASH_ALGORITHMS in initNotifies(pair)
    assert pair.pubkey.methods == [AuthMethod.DIGITAL_SIGNATURE]
    assert sa.children[0].suite is not None


def test_pskOnlySpecAnnouncesNoSignatureHashes():
    """The benchmarked PSK path sends the same IKE_SA_INIT as before: no hash notify."""
    pair = Pair()
    results, failures = connect(pair, clientSpec())
    assert results and not failures
    assert NotifyType.SIGNATURE_HASH_ALGORITHMS not in initNotifies(pair)
    assert clientSpec().pskOnly and clientSpec().hashesNotify is None


def test_untrustedHubCertificateIsRefusedByTheInitiator():
    """The hub's chain ends in a CA we do not trust: refused, and the hub deletes its SA."""
    pki = pkiFor("ecdsa")
    pair = hubPair("pubkey", pki)
    results, failures = connect(pair, certSpec(pki, trust=pkiFor("rsa").trust))
    assert not results
    assertRefusedByUs(pair, failures, "untrusted CA")


def test_hubCertificateNotNamingIdrIsRefused():
    """A trusted hub certificate for another name than the hub's IDr is not the hub's."""
    pki = pkiFor("ecdsa", hubName="other.example.com")
    pair = hubPair("pubkey", pki)
    results, failures = connect(pair, certSpec(pki))
    assertRefusedByUs(pair, failures, "identity not in certificate")


def test_hubSignatureByAnotherKeyIsRefused():
    """The hub's AUTH signed with a key that is not its certificate's: a bad signature."""
    pki = pkiFor("ecdsa")
    pair = hubPair("pubkey", pki, signerKey=ec.generate_private_key(ec.SECP256R1()))
    results, failures = connect(pair, certSpec(pki))
    assertRefusedByUs(pair, failures, "signature refused")


@pytest.mark.parametrize(
    "auth, reason",
    [("pubkey", "sent no AUTH payload"), ("eap-mschapv2", "did not authenticate")],
)
def test_hubResponseWithoutAuthIsRefused(monkeypatch, auth, reason):
    """
    A responder whose IKE_AUTH response carries no AUTH payload has not proven itself: with
    certificates, and before EAP goes any further, we refuse it and keep nothing.
    """
    pki = pkiFor("ecdsa")
    pair = hubPair(auth, pki)
    respond = pair.hub.respond

    def withoutAuth(sa, exchangeType, payloads):
        respond(sa, exchangeType, [p for p in payloads if type(p) is not AuthPayload])

    monkeypatch.setattr(pair.hub, "respond", withoutAuth)
    spec = certSpec(pki) if auth == "pubkey" else eapSpec(pki)
    results, failures = connect(pair, spec)
    assert not results
    assertRefusedByUs(pair, failures, reason)


def test_ourCertificateUntrustedByTheHubFailsWithItsNotify():
    pki = pkiFor("ecdsa")
    other = pkiFor("rsa")
    pair = hubPair("pubkey", pki)
    spec = clientSpec(
        psk=None,
        credentials=HubCredentials([other.clientCert], other.clientKey),
        trust=pki.trust,
    )
    results, failures = connect(pair, spec)
    [failure] = failures
    assert failure.value.notifyType == NotifyType.AUTHENTICATION_FAILED
    assert pair.hub.sas == {} and pair.client.sas == {}


# -- EAP-MSCHAPv2 -----------------------------------------------------------------------------


def test_peerMskHasTheServersLayout():
    """Derived on the peer side (IsServer false, keys swapped), the MSK equals serverMsk."""
    for _ in range(20):
        passwordHash, ntResponse = os.urandom(16), os.urandom(24)
        msk = mschapv2PeerMsk(passwordHash, ntResponse)
        assert len(msk) == 64 and msk[32:] == bytes(32)
        assert msk == serverMsk(passwordHash, ntResponse)


def test_eapMschapv2EstablishesWithMskKeyedAuth(monkeypatch):
    """
    The hub signs first (checked against trust), the initiator answers the Challenge, checks
    the authenticator response, and both final AUTHs are keyed with the same MSK.
    """
    peers, servers = [], []

    class RecordingPeer(initiator.MSCHAPv2Peer):
        __slots__ = ()

        def __init__(self, *args):
            super().__init__(*args)
            peers.append(self)

    def serverFactory(identity):
        servers.append(EAPMSCHAPv2Server(identity, users))
        return servers[-1]

    users = UserDatabase([User("alice@example.com", password=PASSWORD)])
    monkeypatch.setattr(initiator, "MSCHAPv2Peer", RecordingPeer)
    pki = pkiFor("ecdsa")
    pair = hubPair("eap-mschapv2", pki, methodFactory=serverFactory)
    assertEstablished(pair, *connect(pair, eapSpec(pki)))
    [peer], [server] = peers, servers
    assert peer.msk is not None and peer.msk == server._msk
    assert peer.msk == serverMsk(peer.passwordHash, peer.ntResponse)


def test_eapMschapv2AnswersAnIdentityRoundWithTheUserName():
    """An entry with eap_identity: the hub asks EAP-Identity first; the name must match."""
    pki = pkiFor("ecdsa")
    pair = hubPair("eap-mschapv2", pki, eapIdentity=True)
    assertEstablished(pair, *connect(pair, eapSpec(pki)))


def test_eapMschapv2WrongPasswordFailsWithAuthenticationFailed():
    pki = pkiFor("ecdsa")
    pair = hubPair("eap-mschapv2", pki)
    results, failures = connect(pair, eapSpec(pki, password=PASSWORD + "x"))
    [failure] = failures
    assert failure.value.notifyType == NotifyType.AUTHENTICATION_FAILED
    assert pair.hub.counters["authentication_failed"] == 1
    assert pair.hub.sas == {} and pair.client.sas == {} and len(pair.clientSad) == 0


@pytest.mark.parametrize(
    "trust, hubName, reason",
    [
        ("other", "hub.example.com", "untrusted CA"),
        (None, "other.example.com", "identity not in certificate"),
    ],
)
def test_eapRefusesAnUnprovenHubBeforeAnsweringTheChallenge(monkeypatch, trust, hubName, reason):
    """
    The hub's first IKE_AUTH response must prove who it is (trusted chain naming IDr) before
    our MSCHAPv2 Response goes out; otherwise we stop and the hub keeps nothing.
    """
    answered = []
    monkeypatch.setattr(initiator.MSCHAPv2Peer, "answer", lambda self, r: answered.append(r))
    pki = pkiFor("ecdsa", hubName)
    pair = hubPair("eap-mschapv2", pki)
    spec = eapSpec(pki, trust=pkiFor("rsa").trust if trust == "other" else None)
    results, failures = connect(pair, spec)
    assert answered == []
    assertRefusedByUs(pair, failures, reason)


class ForgingServer(EAPMSCHAPv2Server):
    """Accepts any NT-Response and sends a Success whose authenticator response is made up."""

    def _response(self, identifier, data):
        outcome = super()._response(identifier, data)
        if outcome.request.data[0] == OPCODE_SUCCESS:
            forged = b"S=" + b"0" * 40 + b" M=Welcome"
            body = outcome.request.data[:2] + (4 + len(forged)).to_bytes(2, "big") + forged
            request = outcome.request
            return Continue(EAPPacket(request.code, request.identifier, request.type, body))
        return outcome


def test_eapForgedAuthenticatorResponseIsRefused():
    """A Success whose "S=" value is wrong: the hub does not know the password; we stop."""
    pki = pkiFor("ecdsa")
    users = UserDatabase([User("alice@example.com", password=PASSWORD)])
    pair = hubPair("eap-mschapv2", pki, methodFactory=ForgingServer.factory(users))
    results, failures = connect(pair, eapSpec(pki))
    assertRefusedByUs(pair, failures, "authenticator response is wrong")
    assert pair.hub.counters["authentication_failed"] == 1  # the hub logged that we gave up


# -- the spec -------------------------------------------------------------------------------


def test_specNeedsExactlyOneWayToAuthenticate():
    pki = pkiFor("ecdsa")
    with pytest.raises(ValueError):
        clientSpec(psk=None)
    with pytest.raises(ValueError):
        clientSpec(
            credentials=HubCredentials([pki.clientCert], pki.clientKey), eapPassword=PASSWORD
        )
    assert certSpec(pki).authMode == "pubkey"
    assert eapSpec(pki).authMode == "eap-mschapv2"
    assert PASSWORD not in repr(eapSpec(pki))
