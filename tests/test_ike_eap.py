"""
EAP inside IKE_AUTH (RFC 7296 section 2.16) on a task.Clock, against a client that follows a
script: a complete EAP-MD5 login keyed with SK_p, and every way a peer can get it wrong (the
final AUTH before EAP has succeeded, an EAP packet of the wrong Code, a wrong AUTH after EAP,
a forged hub signature check), each refused with AUTHENTICATION_FAILED and no state left.
Also an authenticator that answers through a Deferred: the SA is busy until the verdict.
"""

import ipaddress

from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.defer import Deferred

from ikehub.auth.builtin import PSKAuthenticator
from ikehub.auth.credentials import HubCredentials
from ikehub.auth.eap.local import LocalEAPMethod
from ikehub.auth.eap.md5 import EAPMD5Server, chapResponse
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.registry import AuthRegistry, HubSigner
from ikehub.auth.signatures import verifyAuth
from ikehub.auth.users import User, UserDatabase
from ikehub.ike.psk import pskAuthData, signedOctets
from ikehub.ike.sa import IKEState
from ikehub.policy.identities import parseIdentityPattern
from ikehub.policy.pad import PAD, PADEntry
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
    CertPayload,
    ConfigAttribute,
    CPPayload,
    EAPPayload,
    IDiPayload,
    NotifyPayload,
    SAPayload,
    TSiPayload,
    TSrPayload,
)
from tests.ikepump import PSK, Pair, clientSpec, makePool
from tests.pki import dn, issue

PASSWORD = "alice-md5-password"
HUB_KEY = ec.generate_private_key(ec.SECP256R1())
HUB_CERT = issue(dn("hub.example.com"), HUB_KEY, dn("hub.example.com"), HUB_KEY, ca=True)


def eapPair(authenticators=None, auth="eap-md5", localAuth="pubkey"):
    pool = makePool()
    users = UserDatabase([User("alice@example.com", password=PASSWORD)])
    entry = PADEntry(
        "eap",
        Identity.fromString("*@example.com"),
        auth,
        PSK if auth == "psk" else None,
        pool,
        tuple(clientSpec().remoteTs),
        ("dynamic",),
        localAuth=localAuth,
    )
    pair = Pair(pad=PAD([entry]), pool=pool)
    pair.hub.auth = AuthRegistry(
        authenticators or {},
        {"eap-md5": LocalEAPMethod("eap-md5", EAPMD5Server.factory(users))},
        signer=HubSigner(HubCredentials([HUB_CERT], HUB_KEY)),
    )
    return pair


class Script:
    """
    Replaces the client's IKE_AUTH: the first request carries no AUTH (so the hub starts EAP);
    each response goes to C{answer(sa, payloads)}, which returns the next request's payloads
    (or None to stop).
    """

    #: Whether the first request asks for a virtual IPv4 address (CP CFG_REQUEST).
    configRequest = False

    def __init__(self, pair, answer):
        self.pair = pair
        self.answer = answer
        self.responses = []
        client = pair.client
        client._sendAuth = self.sendFirst

    def sendFirst(self, sa):
        spec = sa.context.spec
        idi = IDiPayload(spec.identity.idType, spec.identity.data)
        self.idiBody = idi.bodyBytes()
        spi = self.pair.clientSad.allocateSpi()
        proposals = tuple(c.toWire(n, spi) for n, c in enumerate(spec.espProposals, 1))
        sa.state = IKEState.AUTH_SENT
        payloads = [
            idi,
            SAPayload(proposals),
            TSiPayload(sa.context.tsi),
            TSrPayload(sa.context.tsr),
        ]
        if self.configRequest:
            address = ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS, b"")
            payloads.append(CPPayload(CfgType.CFG_REQUEST, (address,)))
        self.pair.client.sendRequest(sa, ExchangeType.IKE_AUTH, payloads, self.answered)

    def answered(self, sa, header, payloads, data, peer, path):
        self.responses.append(payloads)
        following = self.answer(sa, payloads)
        if following is not None:
            self.pair.client.sendRequest(sa, ExchangeType.IKE_AUTH, following, self.answered)


def eapOf(payloads) -> EAPPacket:
    [eap] = [p for p in payloads if type(p) is EAPPayload]
    return EAPPacket.fromBytes(eap.message)


def md5Response(request: EAPPacket, password=PASSWORD) -> EAPPayload:
    challenge = request.data[1 : 1 + request.data[0]]
    value = chapResponse(request.identifier, password.encode(), challenge)
    answer = EAPPacket(
        EAPCode.RESPONSE, request.identifier, EAPType.MD5_CHALLENGE, bytes([16]) + value
    )
    return EAPPayload(answer.toBytes())


def finalAuth(sa, idiBody, key=None) -> AuthPayload:
    prf = sa.suite.prf
    octets = signedOctets(prf, sa.initRequest, sa.nonceR, sa.keys.skPi, idiBody)
    return AuthPayload(AuthMethod.SHARED_KEY_MIC, pskAuthData(prf, key or sa.keys.skPi, octets))


def notifies(payloads):
    return [p.notifyType for p in payloads if type(p) is NotifyPayload]


def assertNothingLeft(pair):
    assert pair.hub.sas == {} and pair.hub.halfOpen == {}
    assert pair.pool.acquire("probe") == pair.pool.first  # no lease was kept


def test_eapMd5LoginEstablishesWithSkPKeyedAuth():
    pair = eapPair()
    steps = []

    def answer(sa, payloads):
        steps.append(payloads)
        if len(steps) == 1:
            # The hub's certificate and its signature over its IKE_SA_INIT come first.
            [cert] = [p for p in payloads if type(p) is CertPayload]
            [auth] = [p for p in payloads if type(p) is AuthPayload]
            octets = signedOctets(
                sa.suite.prf, sa.initResponse, sa.nonceI, sa.keys.skPr, pair.hub._idrBody
            )
            verifyAuth(HUB_CERT.public_key(), auth.method, auth.data, octets)
            return [md5Response(eapOf(payloads))]
        if len(steps) == 2:
            assert eapOf(payloads).code == EAPCode.SUCCESS
            return [finalAuth(sa, script.idiBody)]
        clientSa.append(sa)
        return None

    clientSa = []

    script = Script(pair, answer)
    pair.connect()
    final = script.responses[-1]
    [auth] = [p for p in final if type(p) is AuthPayload]
    [hubSa] = pair.hub.sas.values()
    assert hubSa.state is IKEState.ESTABLISHED and hubSa.children
    [sa] = clientSa  # the client's copy still holds the IKE_SA_INIT response the AUTH covers
    prf = sa.suite.prf
    ours = signedOctets(prf, sa.initResponse, sa.nonceI, sa.keys.skPr, pair.hub._idrBody)
    assert auth.data == pskAuthData(prf, sa.keys.skPr, ours)


def test_finalAuthBeforeEapSucceededIsRefused():
    pair = eapPair()

    def answer(sa, payloads):
        if len(script.responses) == 1:
            return [finalAuth(sa, script.idiBody)]  # skip the EAP method entirely
        return None

    script = Script(pair, answer)
    pair.connect()
    assert NotifyType.AUTHENTICATION_FAILED in notifies(script.responses[-1])
    assertNothingLeft(pair)


def test_eapPacketOfTheWrongCodeFails():
    """A peer that sends an EAP Success of its own gets EAP-Failure and AUTHENTICATION_FAILED."""
    pair = eapPair()

    def answer(sa, payloads):
        if len(script.responses) == 1:
            request = eapOf(payloads)
            return [EAPPayload(EAPPacket(EAPCode.SUCCESS, request.identifier, None).toBytes())]
        return None

    script = Script(pair, answer)
    pair.connect()
    last = script.responses[-1]
    assert eapOf(last).code == EAPCode.FAILURE
    assert NotifyType.AUTHENTICATION_FAILED in notifies(last)
    assertNothingLeft(pair)


def test_wrongPasswordAndWrongFinalAuthAreRefused():
    for password, key in ((PASSWORD + "x", None), (PASSWORD, b"not SK_pi" * 4)):
        pair = eapPair()

        def answer(sa, payloads, password=password, key=key):
            if len(script.responses) == 1:
                return [md5Response(eapOf(payloads), password)]
            if len(script.responses) == 2 and eapOf(payloads).code == EAPCode.SUCCESS:
                return [finalAuth(sa, script.idiBody, key)]
            return None

        script = Script(pair, answer)
        pair.connect()
        assert NotifyType.AUTHENTICATION_FAILED in notifies(script.responses[-1])
        assertNothingLeft(pair)


def test_peerThatSendsAuthToAnEapEntryIsRefused():
    """An AUTH payload (PSK) for an entry that requires EAP: refused, with the reason."""
    pair = eapPair()
    results, failures = pair.connect()
    assert failures and failures[0].value.notifyType == NotifyType.AUTHENTICATION_FAILED
    assertNothingLeft(pair)


class LaterAuthenticator(PSKAuthenticator):
    """The PSK authenticator, answering only when the test says so."""

    def __init__(self):
        self.waiting = []

    def authenticate(self, attempt):
        d = Deferred()
        self.waiting.append((d, attempt))
        return d


def test_deferredVerdictKeepsTheSaBusyThenAnswers():
    later = LaterAuthenticator()
    pair = eapPair({"psk": later}, auth="psk", localAuth="psk")
    results, failures = [], []
    pair.client.initiate(clientSpec(), ("192.0.2.1", 500), 500).addCallbacks(
        results.append, failures.append
    )
    pair.net.pump()
    assert len(later.waiting) == 1 and not results
    # The client retransmits; the hub has no answer yet to resend, so it drops the copy.
    pair.clock.advance(2.0)
    pair.net.pump()
    assert pair.hub.counters["drop_message_id_outside_window"] >= 1
    # A request with the next message ID would not be processed meanwhile either.
    [hubSa] = pair.hub.sas.values()
    assert hubSa.authState.busy
    d, attempt = later.waiting[0]
    d.callback(PSKAuthenticator.authenticate(later, attempt))
    pair.net.pump()
    assert results and results[0].state is IKEState.ESTABLISHED


def test_deferredVerdictForARemovedSaIsIgnored():
    later = LaterAuthenticator()
    pair = eapPair({"psk": later}, auth="psk", localAuth="psk")
    pair.client.initiate(clientSpec(), ("192.0.2.1", 500), 500).addErrback(lambda f: None)
    pair.net.pump()
    [sa] = pair.hub.sas.values()
    pair.hub.removeSa(sa, "test")
    d, attempt = later.waiting[0]
    d.callback(PSKAuthenticator.authenticate(later, attempt))
    assert pair.hub.sas == {}
    assert pair.hub.counters["ike_sa_established"] == 0


def test_leaseFollowsTheEapIdentityNotTheAddressInIdi():
    """
    A device that sends its IP address as IDi (Windows) sends another one from every network;
    with an EAP identity round, the user's pool lease belongs to the EAP identity, so the
    user gets the same virtual IP back from a new address, and another user does not.
    """
    pool = makePool()
    users = UserDatabase(
        [User("alice@example.com", password=PASSWORD), User("bob@example.com", password=PASSWORD)]
    )
    entry = PADEntry(
        "windows",
        parseIdentityPattern("0.0.0.0/0"),
        "eap-md5",
        None,
        pool,
        tuple(clientSpec().remoteTs),
        ("dynamic",),
        localAuth="pubkey",
        eapIdentity=True,
    )
    pair = Pair(pad=PAD([entry]), pool=pool)
    pair.hub.auth = AuthRegistry(
        {},
        {"eap-md5": LocalEAPMethod("eap-md5", EAPMD5Server.factory(users))},
        signer=HubSigner(HubCredentials([HUB_CERT], HUB_KEY)),
    )

    def login(idi: str, user: str):
        steps = []

        def answer(sa, payloads):
            steps.append(payloads)
            request = eapOf(payloads) if len(steps) < 3 else None
            if len(steps) == 1:
                assert request.type == EAPType.IDENTITY
                reply = EAPPacket(
                    EAPCode.RESPONSE, request.identifier, EAPType.IDENTITY, user.encode()
                )
                return [EAPPayload(reply.toBytes())]
            if len(steps) == 2:
                return [md5Response(request)]
            if len(steps) == 3:
                assert eapOf(payloads).code == EAPCode.SUCCESS
                return [finalAuth(sa, script.idiBody)]
            return None

        script = Script(pair, answer)
        script.configRequest = True
        pair.connect(clientSpec(identity=Identity.fromString(idi)))
        [cp] = [p for p in script.responses[-1] if type(p) is CPPayload]
        [address] = [
            a.value for a in cp.attributes if a.attrType == ConfigAttributeType.INTERNAL_IP4_ADDRESS
        ]
        [hubSa] = [sa for sa in pair.hub.sas.values() if sa.state is IKEState.ESTABLISHED]
        pair.hub.removeSa(hubSa, "the device went away")
        return ipaddress.ip_address(address)

    first = login("192.0.2.11", "alice@example.com")
    again = login("198.51.100.77", "alice@example.com")
    other = login("192.0.2.11", "bob@example.com")
    assert again == first
    assert other != first
