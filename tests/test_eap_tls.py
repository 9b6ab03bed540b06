"""
EAP-TLS server (RFC 5216, TLS 1.3 per RFC 9190): full conversations against a small
EAP-TLS peer written here on pyOpenSSL's client side, the MSK compared with what the peer
exports, certificate policy (untrusted CA, expired, wrong identity, none at all), the
fragmentation rules both ways, malformed input, and the plugin.

The PKI is made here with cryptography; certificate validation runs at a fixed time
(a task.Clock), so "expired" does not depend on the day the tests run.
"""

from __future__ import annotations

import datetime
import ipaddress
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

import ikehub.plugins
from ikehub.auth.certs import TrustStore
from ikehub.auth.credentials import HubCredentials
from ikehub.auth.eap.conversation import Continue, EAPConversation, Failed, Succeeded
from ikehub.auth.eap.local import LocalEAPMethod
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.eap.tls import (
    FLAG_LENGTH,
    FLAG_MORE,
    FLAG_START,
    EAPTLSServer,
    eapIdentityAsIkeId,
)
from ikehub.auth.plugin import PluginConfigError, PluginContext
from ikehub.interfaces import IEAPMethod, IEAPMethodPlugin
from ikehub.wire.constants import IDType

UTC = datetime.UTC
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


# -- a test PKI -------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ikehub test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _issue(
    subject,
    key,
    issuerName,
    issuerKey,
    *,
    ca=False,
    san=(),
    eku=None,
    notBefore=NOW - 30 * DAY,
    notAfter=NOW + 365 * DAY,
    padding=0,
):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuerName)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuerKey.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if padding:
        # A long certificate policy text makes a certificate as large as a test needs.
        policy = x509.PolicyInformation(
            x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"),
            [x509.UserNotice(None, "p" * 200) for _ in range(padding)],
        )
        builder = builder.add_extension(x509.CertificatePolicies([policy]), critical=False)
    return builder.sign(issuerKey, hashes.SHA256())


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT_NAME = _name("EAP-TLS Test Root")
ROOT = _issue(ROOT_NAME, ROOT_KEY, ROOT_NAME, ROOT_KEY, ca=True)

INTER_KEY = ec.generate_private_key(ec.SECP256R1())
INTER_NAME = _name("EAP-TLS Test Intermediate")
INTER = _issue(INTER_NAME, INTER_KEY, ROOT_NAME, ROOT_KEY, ca=True)

SERVER_KEY = ec.generate_private_key(ec.SECP256R1())
SERVER = _issue(
    _name("hub.example.org"),
    SERVER_KEY,
    INTER_NAME,
    INTER_KEY,
    san=[x509.DNSName("hub.example.org")],
    eku=[ExtendedKeyUsageOID.SERVER_AUTH],
)
#: The same server key in a certificate padded to several kilobytes, for fragmentation.
BIG_SERVER = _issue(
    _name("hub.example.org"),
    SERVER_KEY,
    INTER_NAME,
    INTER_KEY,
    san=[x509.DNSName("hub.example.org")],
    padding=12,
)

ALICE_KEY = ec.generate_private_key(ec.SECP256R1())
ALICE = _issue(
    _name("alice"),
    ALICE_KEY,
    INTER_NAME,
    INTER_KEY,
    san=[x509.RFC822Name("alice@example.com")],
    eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
)
ALICE_EXPIRED = _issue(
    _name("alice"),
    ALICE_KEY,
    INTER_NAME,
    INTER_KEY,
    san=[x509.RFC822Name("alice@example.com")],
    notBefore=NOW - 400 * DAY,
    notAfter=NOW - DAY,
)
BOB_KEY = ec.generate_private_key(ec.SECP256R1())
BOB = _issue(_name("bob"), BOB_KEY, INTER_NAME, INTER_KEY, san=[x509.RFC822Name("bob@example.com")])
#: A client certificate padded to several kilobytes, so the peer's flight fragments.
ALICE_BIG = _issue(
    _name("alice"),
    ALICE_KEY,
    INTER_NAME,
    INTER_KEY,
    san=[x509.RFC822Name("alice@example.com")],
    padding=10,
)
HOST_KEY = rsa.generate_private_key(65537, 2048)
HOST = _issue(
    _name("gw2.example.net"),
    HOST_KEY,
    INTER_NAME,
    INTER_KEY,
    san=[x509.DNSName("gw2.example.net"), x509.IPAddress(ipaddress.ip_address("192.0.2.9"))],
)

ROGUE_KEY = ec.generate_private_key(ec.SECP256R1())
ROGUE_NAME = _name("Rogue Root")
ROGUE = _issue(ROGUE_NAME, ROGUE_KEY, ROGUE_NAME, ROGUE_KEY, ca=True)
ALICE_ROGUE = _issue(
    _name("alice"),
    ALICE_KEY,
    ROGUE_NAME,
    ROGUE_KEY,
    san=[x509.RFC822Name("alice@example.com")],
)

TRUST = TrustStore([ROOT])
CREDENTIALS = HubCredentials([SERVER, INTER], SERVER_KEY)
BIG_CREDENTIALS = HubCredentials([BIG_SERVER, INTER], SERVER_KEY)


def clock() -> Clock:
    c = Clock()
    c.advance(NOW.timestamp())
    return c


# -- an EAP-TLS peer --------------------------------------------------------------------------


class Peer:
    """
    The peer side of EAP-TLS on pyOpenSSL's client: answers each EAP-TLS Request with a
    Response, fragmenting its own TLS data at C{fragmentSize} and acknowledging the
    server's fragments with empty Responses, as strongSwan's charon does.
    """

    def __init__(
        self,
        chain=(ALICE, INTER),
        key=ALICE_KEY,
        maxVersion=SSL.TLS1_3_VERSION,
        trusted=(ROOT,),
        fragmentSize=1024,
    ):
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_max_proto_version(maxVersion)
        if chain:
            context.use_certificate(chain[0])
            for cert in chain[1:]:
                context.add_extra_chain_cert(cert)
            context.use_privatekey(key)
        store = context.get_cert_store()
        for ca in trusted:
            store.add_cert(crypto.X509.from_cryptography(ca))
        context.set_verify(SSL.VERIFY_PEER)
        self.connection = SSL.Connection(context, None)
        self.connection.set_connect_state()
        self.fragmentSize = fragmentSize
        self.incoming: list[bytes] = []
        self.outgoing = b""
        self.sentFlags: list[int] = []
        self.receivedFlags: list[int] = []
        self.commitment = None
        self.failed = None

    def _drain(self):
        chunks = []
        while True:
            try:
                chunks.append(self.connection.bio_read(65536))
            except SSL.WantReadError:
                break
        return b"".join(chunks)

    def respond(self, request: EAPPacket) -> EAPPacket:
        assert request.code == EAPCode.REQUEST and request.type == EAPType.TLS
        flags = request.data[0]
        self.receivedFlags.append(flags)
        body = request.data[1:]
        if flags & FLAG_LENGTH:
            body = body[4:]
        if self.outgoing:
            assert not body, "the server sent data instead of acknowledging"
            return self._nextFragment(request.identifier)
        if flags & FLAG_START:
            self._step()
        else:
            self.incoming.append(body)
            if flags & FLAG_MORE:
                return self._response(request.identifier, b"\x00")
            message = b"".join(self.incoming)
            self.incoming = []
            if message:
                self.connection.bio_write(message)
                self._step()
        out = self._drain()
        if not out:
            return self._response(request.identifier, b"\x00")
        self.outgoing = out
        self.offset = 0
        return self._nextFragment(request.identifier)

    def _step(self):
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as e:
            self.failed = e
            return
        if self.connection.get_protocol_version_name() == "TLSv1.3":
            try:
                self.commitment = self.connection.recv(16)
            except SSL.WantReadError:
                pass
            except SSL.Error as e:
                self.failed = e

    def _nextFragment(self, identifier):
        data = self.outgoing
        first = self.offset == 0
        chunk = data[self.offset : self.offset + self.fragmentSize]
        self.offset += len(chunk)
        more = self.offset < len(data)
        flags = (FLAG_LENGTH if first else 0) | (FLAG_MORE if more else 0)
        if not more:
            self.outgoing = b""
        header = struct.pack("!I", len(data)) if first else b""
        return self._response(identifier, bytes([flags]) + header + chunk)

    def _response(self, identifier, typeData):
        self.sentFlags.append(typeData[0])
        return EAPPacket(EAPCode.RESPONSE, identifier, EAPType.TLS, typeData)

    def keyMaterial(self):
        if self.connection.get_protocol_version_name() == "TLSv1.3":
            return self.connection.export_keying_material(
                b"EXPORTER_EAP_TLS_Key_Material", 128, b"\x0d"
            )
        return self.connection.export_keying_material(b"client EAP encryption", 128)


def converse(peer, identity="alice@example.com", credentials=CREDENTIALS, **options):
    """
    Run a whole conversation with an identity round; return the final outcome, the
    method, and how many Requests were sent.
    """
    options.setdefault("clock", clock())
    methods = []

    def factory(name):
        method = EAPTLSServer.factory(TRUST, credentials, **options)(name)
        methods.append(method)
        return method

    conversation = EAPConversation(factory, identityRound=True, peerIdentity=None)
    request = EAPPacket.fromBytes(conversation.start())
    outcome = conversation.receive(
        EAPPacket(
            EAPCode.RESPONSE, request.identifier, EAPType.IDENTITY, identity.encode()
        ).toBytes()
    )
    requests = 1
    while isinstance(outcome, Continue):
        requests += 1
        outcome = conversation.receive(peer.respond(outcome.request).toBytes())
    return outcome, methods[0], requests


def tlsPrf(secret, label, seed, length, hashAlgorithm):
    """
    The TLS 1.2 PRF (RFC 5246 section 5), P_hash over the stdlib's HMAC: an independent
    check that the server's Key_Material is RFC 5216's, not just the same exporter call.
    """
    import hmac

    seed = label + seed
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, hashAlgorithm).digest()
        out += hmac.new(secret, a + seed, hashAlgorithm).digest()
    return out[:length]


def tlsData(request):
    """The TLS data of an EAP-TLS packet, without the Flags octet and any TLS Message Length."""
    flags = request.data[0]
    return request.data[5:] if flags & FLAG_LENGTH else request.data[1:]


def response(typeData, identifier=0):
    return EAPPacket(EAPCode.RESPONSE, identifier, EAPType.TLS, typeData)


ACK = response(b"\x00")


class SuccessTests(SynchronousTestCase):
    def test_tls12(self):
        """
        A TLS 1.2 conversation succeeds; the MSK is 64 octets and equals the first half of
        what the peer exports with RFC 5216's label, the EMSK the second half.
        """
        peer = Peer(maxVersion=SSL.TLS1_2_VERSION)
        outcome, method, _ = converse(peer)
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(method.tlsVersion, "TLSv1.2")
        material = peer.connection.export_keying_material(b"client EAP encryption", 128)
        self.assertEqual(len(outcome.msk), 64)
        self.assertEqual(outcome.msk, material[:64])
        self.assertEqual(method.emsk, material[64:])
        self.assertEqual(outcome.identity, "alice@example.com")
        self.assertIsNone(peer.commitment, "no commitment message in TLS 1.2")

    def test_tls12KeyMaterialIsThePrfOverTheMasterSecret(self):
        """
        RFC 5216 section 2.3: Key_Material = TLS-PRF-128(master_secret, "client EAP
        encryption", client.random || server.random), computed here from the peer's
        master secret with a PRF written out in the test.
        """
        peer = Peer(maxVersion=SSL.TLS1_2_VERSION)
        outcome, method, _ = converse(peer)
        connection = peer.connection
        hashName = "sha384" if connection.get_cipher_name().endswith("SHA384") else "sha256"
        expected = tlsPrf(
            connection.master_key(),
            b"client EAP encryption",
            connection.client_random() + connection.server_random(),
            128,
            hashName,
        )
        self.assertEqual(outcome.msk + method.emsk, expected)
        self.assertEqual(
            method.sessionId,
            b"\x0d" + connection.client_random() + connection.server_random(),
        )

    def test_tls13(self):
        """
        A TLS 1.3 conversation succeeds; the peer received the commitment message 0x00
        after the handshake, and the MSK is TLS-Exporter("EXPORTER_EAP_TLS_Key_Material",
        0x0D, 128)[0:64] as the peer computes it (RFC 9190 section 2.3), not the TLS 1.2
        label's.
        """
        peer = Peer(maxVersion=SSL.TLS1_3_VERSION)
        outcome, method, _ = converse(peer)
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(method.tlsVersion, "TLSv1.3")
        self.assertEqual(peer.commitment, b"\x00")
        material = peer.connection.export_keying_material(
            b"EXPORTER_EAP_TLS_Key_Material", 128, b"\x0d"
        )
        self.assertEqual(outcome.msk, material[:64])
        self.assertEqual(method.emsk, material[64:])
        self.assertNotEqual(
            outcome.msk, peer.connection.export_keying_material(b"client EAP encryption", 128)[:64]
        )
        methodId = peer.connection.export_keying_material(
            b"EXPORTER_EAP_TLS_Method-Id", 64, b"\x0d"
        )
        self.assertEqual(method.sessionId, b"\x0d" + methodId)

    def test_tls13StrongSwanProfile(self):
        """
        tls13_profile "strongswan" (strongSwan 5.9's draft-era EAP-TLS 1.3): no commitment
        message, and the MSK is the exporter with the TLS 1.2 label and no context.
        """
        peer = Peer(maxVersion=SSL.TLS1_3_VERSION)
        outcome, method, _ = converse(peer, tls13Profile="strongswan")
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(method.tlsVersion, "TLSv1.3")
        self.assertIsNone(peer.commitment)
        material = peer.connection.export_keying_material(b"client EAP encryption", 128)
        self.assertEqual(outcome.msk, material[:64])

    def test_tls12IsTheSameUnderBothProfiles(self):
        """The profile only concerns TLS 1.3: a TLS 1.2 handshake keys the same way."""
        peer = Peer(maxVersion=SSL.TLS1_2_VERSION)
        outcome, _, _ = converse(peer, tls13Profile="strongswan")
        self.assertEqual(outcome.msk, peer.keyMaterial()[:64])

    def test_maxVersionPinsTls12(self):
        """With max_version 1.2 a TLS 1.3-capable peer negotiates TLS 1.2."""
        peer = Peer(maxVersion=SSL.TLS1_3_VERSION)
        outcome, method, _ = converse(peer, maxVersion="1.2")
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(peer.connection.get_protocol_version_name(), "TLSv1.2")

    def test_startRequest(self):
        """The first Request is an EAP-TLS Start: Type 13, Flags S only, no data."""
        method = EAPTLSServer("alice@example.com", TRUST, CREDENTIALS)
        request = method.start(7)
        self.assertEqual((request.code, request.identifier, request.type), (1, 7, 13))
        self.assertEqual(request.data, bytes([FLAG_START]))

    def test_distinguishedNameIdentity(self):
        """An EAP identity written as a DN must be the certificate's subject."""
        outcome, _, _ = converse(Peer(), identity="C=CH, O=ikehub test, CN=alice")
        self.assertIsInstance(outcome, Succeeded)
        outcome, _, _ = converse(Peer(), identity="C=CH, O=ikehub test, CN=bob")
        self.assertIsInstance(outcome, Failed)

    def test_hostIdentities(self):
        """An FQDN identity matches a dNSName, an IP address identity an iPAddress."""
        for identity in ("gw2.example.net", "192.0.2.9"):
            outcome, _, _ = converse(Peer(chain=(HOST, INTER), key=HOST_KEY), identity=identity)
            self.assertIsInstance(outcome, Succeeded, identity)
        outcome, _, _ = converse(Peer(chain=(HOST, INTER), key=HOST_KEY), identity="192.0.2.10")
        self.assertIsInstance(outcome, Failed)

    def test_identityTypes(self):
        """How an EAP identity maps to the IKE ID type looked for in the certificate."""
        self.assertEqual(
            eapIdentityAsIkeId("alice@example.com"),
            (IDType.ID_RFC822_ADDR, b"alice@example.com"),
        )
        self.assertEqual(
            eapIdentityAsIkeId("vpn.example.org"), (IDType.ID_FQDN, b"vpn.example.org")
        )
        self.assertEqual(
            eapIdentityAsIkeId("192.0.2.1"), (IDType.ID_IPV4_ADDR, bytes([192, 0, 2, 1]))
        )
        self.assertEqual(eapIdentityAsIkeId("2001:db8::1")[0], IDType.ID_IPV6_ADDR)
        self.assertEqual(eapIdentityAsIkeId("CN=alice, O=x")[0], IDType.ID_DER_ASN1_DN)
        self.assertEqual(eapIdentityAsIkeId("CN=alice@example.com")[0], IDType.ID_DER_ASN1_DN)
        self.assertIsNone(eapIdentityAsIkeId("NOTANATTRIBUTE=1"))


class FragmentationTests(SynchronousTestCase):
    def assertFragmentedRightly(self, requests, fragmentSize):
        """
        The Requests carrying one message: L and the total on the first, M on all but
        the last, at most fragmentSize octets of TLS data each, adding up to the total.
        """
        self.assertGreater(len(requests), 1)
        total = struct.unpack("!I", requests[0].data[1:5])[0]
        self.assertEqual(requests[0].data[0], FLAG_LENGTH | FLAG_MORE)
        for middle in requests[1:-1]:
            self.assertEqual(middle.data[0], FLAG_MORE)
        self.assertEqual(requests[-1].data[0], 0)
        sizes = [len(tlsData(r)) for r in requests]
        self.assertTrue(all(size <= fragmentSize for size in sizes), sizes)
        self.assertTrue(all(size == fragmentSize for size in sizes[:-1]), sizes)
        self.assertEqual(sum(sizes), total)

    def test_serverFragmentsItsFlight(self):
        """
        With fragment size 200 and a server chain of several kilobytes, the server's
        flight goes out in many fragments, each acknowledged by the peer's empty Response,
        and the conversation still succeeds with the right MSK (both TLS versions).
        """
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            method = EAPTLSServer(
                "alice@example.com", TRUST, BIG_CREDENTIALS, fragmentSize=200, clock=clock()
            )
            peer = Peer(maxVersion=version, fragmentSize=4096)
            request = method.start(1)
            flights = [[]]
            while True:
                answer = peer.respond(request)
                outcome = method.handle(answer)
                if not isinstance(outcome, Continue):
                    break
                request = outcome.request
                flights[-1].append(request)
                if not request.data[0] & FLAG_MORE:
                    flights.append([])
            self.assertIsInstance(outcome, Succeeded)
            self.assertEqual(outcome.msk, peer.keyMaterial()[:64])
            biggest = max(flights, key=len)
            self.assertGreaterEqual(len(biggest), 10)
            self.assertFragmentedRightly(biggest, 200)
            acks = [flags for flags in peer.sentFlags if flags == 0]
            self.assertGreaterEqual(len(acks), 9)

    def test_serverAcknowledgesPeerFragments(self):
        """
        A peer that fragments its own flight at 200 octets (a padded client certificate)
        gets an empty EAP-TLS Request (Flags 0, no data) for each fragment but the last,
        and the reassembled flight completes the handshake.
        """
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            method = EAPTLSServer("alice@example.com", TRUST, CREDENTIALS, clock=clock())
            peer = Peer(chain=(ALICE_BIG, INTER), maxVersion=version, fragmentSize=200)
            request = method.start(1)
            acks = 0
            while True:
                answer = peer.respond(request)
                outcome = method.handle(answer)
                if not isinstance(outcome, Continue):
                    break
                request = outcome.request
                if answer.data[0] & FLAG_MORE:
                    self.assertEqual(request.data, b"\x00")
                    acks += 1
            self.assertIsInstance(outcome, Succeeded)
            self.assertEqual(outcome.msk, peer.keyMaterial()[:64])
            self.assertGreaterEqual(acks, 10)

    def test_defaultFragmentSize(self):
        """By default a Request carries at most 1024 octets of TLS data."""
        method = EAPTLSServer("alice@example.com", TRUST, BIG_CREDENTIALS, clock=clock())
        peer = Peer()
        first = method.handle(peer.respond(method.start(1)))
        while not tlsData(first.request) or len(tlsData(first.request)) < 1024:
            first = method.handle(peer.respond(first.request))
        self.assertEqual(len(tlsData(first.request)), 1024)
        self.assertEqual(first.request.data[0], FLAG_LENGTH | FLAG_MORE)

    def test_wholeConversationFragmentedBothWays(self):
        """
        Through an EAPConversation, a big server chain at 200 octets per fragment and a
        big client flight at 1024 finish within the conversation's 50 rounds. (At 200
        octets both ways these chains would need more than 50: the round limit, not this
        method, bounds how small fragments may be for a given chain size.)
        """
        peer = Peer(chain=(ALICE_BIG, INTER), fragmentSize=1024)
        outcome, _, requests = converse(peer, credentials=BIG_CREDENTIALS, fragmentSize=200)
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(outcome.msk, peer.keyMaterial()[:64])
        self.assertLessEqual(requests, 50)


class CertificatePolicyTests(SynchronousTestCase):
    def assertRefused(self, peer, words, identity="alice@example.com"):
        outcome, method, _ = converse(peer, identity=identity)
        self.assertIsInstance(outcome, Failed)
        self.assertIn(words, outcome.reason)
        self.assertIsNone(method.msk)
        self.assertEqual(outcome.message[0], EAPCode.FAILURE)
        return outcome, method

    def test_untrustedCA(self):
        """A client certificate from a CA outside the trust store fails, saying so."""
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            self.assertRefused(Peer(chain=(ALICE_ROGUE,), maxVersion=version), "untrusted CA")

    def test_expired(self):
        """An expired client certificate fails (validated at the injected clock's time)."""
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            self.assertRefused(Peer(chain=(ALICE_EXPIRED, INTER), maxVersion=version), "expired")

    def test_identityMismatch(self):
        """Bob's valid certificate does not authenticate the EAP identity alice."""
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            self.assertRefused(
                Peer(chain=(BOB, INTER), key=BOB_KEY, maxVersion=version),
                "does not name the EAP identity",
            )

    def test_refusedBeforeTheServerFinishes(self):
        """
        A refused TLS 1.2 peer never receives the server's Finished: the method fails at
        once instead of sending its last flight.
        """
        peer = Peer(chain=(ALICE_ROGUE,), maxVersion=SSL.TLS1_2_VERSION)
        self.assertRefused(peer, "untrusted CA")
        self.assertNotEqual(
            peer.connection.get_state_string(), b"SSL negotiation finished successfully"
        )

    def test_noClientCertificate(self):
        """
        A peer without a certificate fails the handshake; the server's TLS alert is sent
        in one more Request (RFC 5216 section 2.1.3) and the peer's answer ends it.
        """
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            peer = Peer(chain=(), maxVersion=version)
            self.assertRefused(peer, "no client certificate")
            self.assertIsNotNone(peer.failed, "the peer saw the server's alert")

    def test_peerRefusesServer(self):
        """A peer that does not trust the hub's CA sends an alert; the method names it."""
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            self.assertRefused(Peer(trusted=(ROGUE,), maxVersion=version), "TLS alert")

    def test_certificateRequestNamesTrustedCAs(self):
        """The CertificateRequest lists the trust store's CAs, for the client to choose by."""
        peer = Peer()
        converse(peer)
        names = [name.CN for name in peer.connection.get_client_ca_list()]
        self.assertEqual(names, ["EAP-TLS Test Root"])


class MalformedInputTests(SynchronousTestCase):
    """Whatever a peer sends, the method answers Continue or Failed and never raises."""

    def method(self, **options):
        method = EAPTLSServer("alice@example.com", TRUST, CREDENTIALS, clock=clock(), **options)
        method.start(1)
        return method

    def assertFails(self, outcome, words):
        self.assertIsInstance(outcome, Failed)
        self.assertIn(words, outcome.reason)

    def clientHello(self):
        peer = Peer(fragmentSize=16384)
        hello = tlsData(peer.respond(EAPPacket(EAPCode.REQUEST, 1, EAPType.TLS, b"\x20")))
        self.assertEqual(hello[0], 0x16, "a whole ClientHello record")
        return hello, peer

    def test_truncatedFlags(self):
        """A Response with no Flags octet, or L without four length octets, fails."""
        self.assertFails(self.method().handle(response(b"")), "without a Flags octet")
        self.assertFails(
            self.method().handle(response(bytes([FLAG_LENGTH, 0, 0]))), "TLS Message Length"
        )

    def test_lengthDisagreesWithData(self):
        """An unfragmented message whose L is not its size fails."""
        hello, _ = self.clientHello()
        for wrong in (len(hello) + 5, len(hello) - 1):
            data = bytes([FLAG_LENGTH]) + struct.pack("!I", wrong) + hello
            self.assertFails(self.method().handle(response(data)), "TLS Message Length")

    def test_fragmentsOverrunTheAnnouncedLength(self):
        """Fragments that add up to more, or fewer, octets than the first one announced fail."""
        hello, _ = self.clientHello()
        method = self.method()
        first = bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 150) + hello[:100]
        self.assertEqual(method.handle(response(first)), Continue(EAPPacket(1, 0, 13, b"\x00")))
        self.assertFails(method.handle(response(b"\x00" + hello[100:200])), "more than")

        method = self.method()
        method.handle(response(first))
        self.assertFails(method.handle(response(b"\x00" + hello[100:120])), "says 150")

    def test_lengthChangesBetweenFragments(self):
        """A later fragment's L must repeat the first one's."""
        hello, _ = self.clientHello()
        method = self.method()
        method.handle(
            response(bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 300) + hello[:100])
        )
        second = bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 301) + hello[100:200]
        self.assertFails(method.handle(response(second)), "changed")

    def test_firstFragmentWithoutLength(self):
        """RFC 5216: the first fragment of a fragmented message must carry L."""
        hello, _ = self.clientHello()
        self.assertFails(
            self.method().handle(response(bytes([FLAG_MORE]) + hello[:100])), "lacks the L flag"
        )

    def test_oversizedTotal(self):
        """A peer announcing more than 64 KiB fails before anything is buffered."""
        data = bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 64 * 1024 + 1) + b"x" * 100
        self.assertFails(self.method().handle(response(data)), "at most 65536")
        data = bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 0xFFFFFFFF) + b"x"
        self.assertFails(self.method().handle(response(data)), "at most")

    def test_tooManyFragments(self):
        """More than 32 fragments for one message fail, however small they are."""
        method = self.method()
        outcome = method.handle(
            response(bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 1000) + b"\x16")
        )
        for _ in range(32):
            self.assertIsInstance(outcome, Continue)
            outcome = method.handle(response(bytes([FLAG_MORE]) + b"\x16"))
        self.assertFails(outcome, "more than 32 fragments")

    def test_emptyFragment(self):
        """A fragment with M but no data fails (it could only stall the conversation)."""
        data = bytes([FLAG_LENGTH | FLAG_MORE]) + struct.pack("!I", 10)
        self.assertFails(self.method().handle(response(data)), "empty EAP-TLS fragment")

    def test_garbageTls(self):
        """
        Bytes that are not TLS fail: at once when OpenSSL has nothing to say, or after
        the TLS alert it sends, at the peer's next Response.
        """
        self.assertFails(
            self.method().handle(response(b"\x00" + b"not tls at all, really")),
            "TLS handshake failed",
        )
        method = self.method()
        outcome = method.handle(response(b"\x00" + b"\x16\x03\x01\x00\x05hello"))
        self.assertIsInstance(outcome, Continue)
        alert = tlsData(outcome.request)
        self.assertEqual(alert[0], 0x15, "a TLS alert record")
        self.assertFails(method.handle(ACK), "TLS handshake failed")

    def test_peerAlert(self):
        """A fatal alert from the peer instead of a ClientHello fails, naming the alert."""
        method = self.method()
        outcome = method.handle(response(b"\x00" + bytes.fromhex("15030300020228")))
        while isinstance(outcome, Continue):
            outcome = method.handle(ACK)
        self.assertIsInstance(outcome, Failed)

    def test_incompleteTlsIsBounded(self):
        """
        A message that completes no TLS record is answered with an empty Request (the
        peer may send the rest), but not more than 32 times.
        """
        method = self.method()
        outcome = method.handle(response(b"\x00\x16\x03\x01"))
        self.assertEqual(outcome.request.data, b"\x00")
        for _ in range(40):
            if not isinstance(outcome, Continue):
                break
            outcome = method.handle(response(b"\x00\x00"))
        self.assertIsInstance(outcome, Failed)

    def test_startFromPeer(self):
        """Only the server starts: an S flag from the peer fails."""
        self.assertFails(self.method().handle(response(bytes([FLAG_START]))), "Start")
        hello, _ = self.clientHello()
        self.assertFails(self.method().handle(response(bytes([FLAG_START]) + hello)), "Start")

    def test_emptyResponseInsteadOfClientHello(self):
        """An acknowledgement where the ClientHello is due fails."""
        self.assertFails(self.method().handle(ACK), "where TLS data was due")

    def test_dataInsteadOfAcknowledgement(self):
        """
        While the server is sending its fragments, the peer must only acknowledge:
        TLS data then fails.
        """
        method = self.method(fragmentSize=200)
        hello, _ = self.clientHello()
        outcome = method.handle(
            response(bytes([FLAG_LENGTH]) + struct.pack("!I", len(hello)) + hello)
        )
        self.assertTrue(outcome.request.data[0] & FLAG_MORE)
        self.assertFails(method.handle(response(b"\x00" + hello)), "acknowledge each fragment")

    def test_fragmentAfterCompletion(self):
        """
        After the handshake is done (the server sent its last flight and waits for the
        empty Response), more TLS data or a fragment from the peer fails; so does
        anything after the method finished.
        """
        for version in (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION):
            for late in (b"\x00\x17\x03\x03\x00\x01\x00", bytes([FLAG_MORE]) + b"\x16"):
                method = self.method()
                peer = Peer(maxVersion=version)
                request = method.start(1)
                while method.state != "await-final-ack":
                    request = method.handle(peer.respond(request)).request
                self.assertFails(method.handle(response(late)), "after the handshake finished")
                self.assertFails(method.handle(ACK), "after the method finished")

    def test_randomInputNeverRaises(self):
        """Any Type-Data at any point of the handshake gives an outcome, not an exception."""
        import random

        rng = random.Random(5216)
        for _ in range(200):
            method = self.method(fragmentSize=rng.choice([64, 200, 1024]))
            peer = Peer(maxVersion=rng.choice([SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION]))
            request = EAPPacket(EAPCode.REQUEST, 1, EAPType.TLS, b"\x20")
            for _ in range(rng.randrange(0, 6)):
                outcome = method.handle(peer.respond(request))
                if not isinstance(outcome, Continue):
                    break
                request = outcome.request
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            if rng.random() < 0.5 and junk:
                junk = bytes([junk[0] & 0xC0]) + junk[1:]
            outcome = method.handle(response(junk))
            self.assertIsInstance(outcome, (Continue, Failed))
            if isinstance(outcome, Continue):
                self.assertIsInstance(method.handle(response(junk)), (Continue, Failed))

    def test_conversationTurnsNothingIntoAnException(self):
        """Through EAPConversation too, a malformed EAP-TLS Response is an EAP-Failure."""
        conversation = EAPConversation(
            EAPTLSServer.factory(TRUST, CREDENTIALS, clock=clock()),
            identityRound=False,
            peerIdentity="alice@example.com",
        )
        start = EAPPacket.fromBytes(conversation.start())
        self.assertEqual(start.data, bytes([FLAG_START]))
        outcome = conversation.receive(
            EAPPacket(EAPCode.RESPONSE, start.identifier, EAPType.TLS, b"").toBytes()
        )
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(outcome.message[0], EAPCode.FAILURE)


# -- the plugin -------------------------------------------------------------------------------


def pluginContext(**changes):
    values = {
        "name": "eap-tls",
        "trust": TRUST,
        "credentials": CREDENTIALS,
        "clock": clock(),
    }
    values.update(changes)
    return PluginContext(**values)


class PluginTests(SynchronousTestCase):
    def plugin(self):
        found = [p for p in getPlugins(IEAPMethodPlugin, ikehub.plugins) if p.name == "eap-tls"]
        self.assertEqual(len(found), 1)
        return found[0]

    def test_discoveredAndProvidesTheInterface(self):
        """getPlugins finds exactly one eap-tls plugin; it is mutual and verifies."""
        plugin = self.plugin()
        self.assertTrue(verifyObject(IEAPMethodPlugin, plugin))
        self.assertIs(plugin.mutual, True)

    def test_buildsALocalMethodThatRunsAConversation(self):
        """build() gives an IEAPMethod whose sessions run EAP-TLS to an MSK."""
        method = self.plugin().build(pluginContext())
        self.assertIsInstance(method, LocalEAPMethod)
        self.assertTrue(verifyObject(IEAPMethod, method))
        self.assertEqual(method.name, "eap-tls")
        session = method.newSession("alice@example.com", identityRound=False)
        peer = Peer()
        outcome = session.start()
        while isinstance(outcome, Continue):
            outcome = session.receive(peer.respond(outcome.request).toBytes())
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(outcome.msk, peer.keyMaterial()[:64])

    def test_optionsApply(self):
        """fragment_size and max_version reach the method."""
        method = self.plugin().build(
            pluginContext(
                options={"fragment_size": 256, "max_version": "1.2"},
                credentials=BIG_CREDENTIALS,
            )
        )
        session = method.newSession("alice@example.com", identityRound=False)
        peer = Peer()
        outcome = session.start()
        sizes = []
        while isinstance(outcome, Continue):
            sizes.append(len(tlsData(outcome.request)))
            outcome = session.receive(peer.respond(outcome.request).toBytes())
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(max(sizes), 256)
        self.assertEqual(peer.connection.get_protocol_version_name(), "TLSv1.2")

    def test_missingCredentials(self):
        """Without the hub's certificate and key, or without CAs, build() says what to set."""
        with self.assertRaises(PluginConfigError) as caught:
            self.plugin().build(pluginContext(credentials=None))
        self.assertIn("certificate", caught.exception.problem)
        self.assertIn("key", caught.exception.problem)
        with self.assertRaises(PluginConfigError) as caught:
            self.plugin().build(pluginContext(trust=None))
        self.assertIn("CA directory", caught.exception.problem)

    def test_badOptions(self):
        """Unknown keys and out-of-range or mistyped values name the key."""
        cases = [
            ({"fragmentsize": 512}, "fragmentsize"),
            ({"fragment_size": 100}, "fragment_size"),
            ({"fragment_size": 20000}, "fragment_size"),
            ({"fragment_size": "1024"}, "fragment_size"),
            ({"fragment_size": True}, "fragment_size"),
            ({"max_version": "1.1"}, "max_version"),
            ({"max_version": 1.3}, "max_version"),
        ]
        for options, key in cases:
            with self.assertRaises(PluginConfigError, msg=repr(options)) as caught:
                self.plugin().build(pluginContext(options=options))
            self.assertEqual(caught.exception.key, key)

    def test_keyNotMatchingCertificate(self):
        """A private key that is not the certificate's is a configuration error at build()."""
        with self.assertRaises(PluginConfigError) as caught:
            self.plugin().build(
                pluginContext(credentials=HubCredentials([SERVER, INTER], ALICE_KEY))
            )
        self.assertIn("key belongs to the certificate", caught.exception.problem)

    def test_cheapImport(self):
        """Importing the plugin module loads neither OpenSSL nor the EAP-TLS code."""
        import subprocess
        import sys

        code = (
            "import sys, ikehub.plugins.eap_tls; "
            "print('OpenSSL' in sys.modules, 'ikehub.auth.eap.tls' in sys.modules)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        self.assertEqual(result.stdout.split(), ["False", "False"])
