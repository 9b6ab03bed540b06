"""
Peer certificate validation, CRLs, CERTREQ hashes and identity binding.

Test PKIs are built here with cryptography (an RSA-3072 and an ECDSA P-256 root, an ECDSA
P-384 intermediate, end entities with SANs) at a fixed validation time, so each failure
differs from a passing case by one property. A chain, a CRL and key identifiers made by
strongSwan's `pki` (tests/data/pki, see make-pki.sh) are the independent oracle.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ikehub.auth.certs import (
    MAX_INTERMEDIATES,
    REASON_EXPIRED,
    REASON_IDENTITY,
    REASON_MALFORMED,
    REASON_NOT_YET_VALID,
    REASON_PATH_LENGTH,
    REASON_REVOKED,
    REASON_TOO_LARGE,
    REASON_UNSUPPORTED_KEY,
    REASON_UNTRUSTED,
    REASON_WRONG_KEY_USAGE,
    CertificateError,
    TrustStore,
    ValidatedPeer,
    caForCertReq,
    certReqHashes,
    identityMatches,
    requireIdentity,
    validatePeerCertificate,
)
from ikehub.wire.constants import IDType
from ikehub.wire.identity import Identity

from tests.pki import DAY, IPSEC_IKE, NOW, UTC, crlOf, dn, issue

PKI = Path(__file__).parent / "data" / "pki"


# The shared test PKI: RSA root -> ECDSA P-384 intermediate -> ECDSA P-256 gateway;
# ECDSA P-256 root -> RSA-3072 client directly.
RSA_ROOT_KEY = rsa.generate_private_key(65537, 3072)
RSA_ROOT_NAME = dn("Test RSA Root CA")
RSA_ROOT = issue(RSA_ROOT_NAME, RSA_ROOT_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True)
EC_ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
EC_ROOT_NAME = dn("Test ECDSA Root CA")
EC_ROOT = issue(EC_ROOT_NAME, EC_ROOT_KEY, EC_ROOT_NAME, EC_ROOT_KEY, ca=True)
INTER_KEY = ec.generate_private_key(ec.SECP384R1())
INTER_NAME = dn("Test Intermediate CA")
INTER = issue(INTER_NAME, INTER_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True, pathLength=0)

GATEWAY_KEY = ec.generate_private_key(ec.SECP256R1())
GATEWAY_NAME = dn("gw.example.org")
GATEWAY_SANS = [
    x509.DNSName("gw.example.org"),
    x509.DNSName("vpn.Example.ORG"),
    x509.IPAddress(ipaddress.ip_address("198.51.100.7")),
    x509.IPAddress(ipaddress.ip_address("2001:db8::7")),
    x509.RFC822Name("Ops@example.org"),
]
GATEWAY = issue(
    GATEWAY_NAME,
    GATEWAY_KEY,
    INTER_NAME,
    INTER_KEY,
    san=GATEWAY_SANS,
    eku=[ExtendedKeyUsageOID.SERVER_AUTH, IPSEC_IKE],
)
CLIENT_KEY = rsa.generate_private_key(65537, 3072)
CLIENT = issue(
    dn("alice"), CLIENT_KEY, EC_ROOT_NAME, EC_ROOT_KEY, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]
)

STORE = TrustStore([RSA_ROOT, EC_ROOT])


def gateway(**changes) -> x509.Certificate:
    """The gateway certificate with some issuing parameters changed."""
    arguments = {"san": GATEWAY_SANS, "eku": [ExtendedKeyUsageOID.SERVER_AUTH, IPSEC_IKE]}
    arguments.update(changes)
    return issue(GATEWAY_NAME, GATEWAY_KEY, INTER_NAME, INTER_KEY, **arguments)


def refused(store, endEntity, intermediates, now=NOW) -> CertificateError:
    with pytest.raises(CertificateError) as caught:
        validatePeerCertificate(store, endEntity, intermediates, now)
    return caught.value


# -- TrustStore and CERTREQ -------------------------------------------------------------------


def test_trustStoreNeedsAtLeastOneCA():
    """An empty trust store is refused when built, not at the first handshake."""
    with pytest.raises(CertificateError):
        TrustStore([])


def test_trustStoreRefusesWhatIsNotACertificateOrCrl():
    """Only x509 objects go into a trust store (a PEM string is a programming error)."""
    with pytest.raises(TypeError):
        TrustStore([b"-----BEGIN CERTIFICATE-----"])
    with pytest.raises(TypeError):
        TrustStore([RSA_ROOT], [RSA_ROOT])


def _spkiSha1(cert: x509.Certificate) -> bytes:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(spki).digest()


def test_certReqHashesAreSha1OfEachSubjectPublicKeyInfoInOrder():
    """CERTREQ data is the SHA-1 of each CA's whole SubjectPublicKeyInfo, concatenated in
    store order (RFC 7296 section 3.7), 20 octets per CA."""
    data = certReqHashes(STORE)
    assert data == _spkiSha1(RSA_ROOT) + _spkiSha1(EC_ROOT)


def test_certReqHashesMatchStrongSwansKeyIds():
    """The hashes equal strongSwan's own "keyid (SHA-1 of subjectPublicKeyInfo)", which is
    what charon puts in and looks up from CERTREQ payloads."""
    keyids = dict(line.split() for line in (PKI / "keyids.txt").read_text().splitlines())
    root, intermediate = _pkiCert("root"), _pkiCert("intermediate")
    data = certReqHashes(TrustStore([root, intermediate]))
    assert data.hex() == keyids["root"] + keyids["intermediate"]


def test_certReqHashesListEachKeyOnce():
    """The same CA (or a re-issued CA with the same key) is announced once."""
    reissued = issue(RSA_ROOT_NAME, RSA_ROOT_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True)
    assert certReqHashes(TrustStore([RSA_ROOT, reissued, RSA_ROOT])) == _spkiSha1(RSA_ROOT)


def test_caForCertReqFindsOurCAsInThePeersOrder():
    """The CAs a CERTREQ names come back in the peer's order; hashes of CAs we do not hold
    and repeats are skipped."""
    unknown = b"\x42" * 20
    data = unknown + _spkiSha1(EC_ROOT) + _spkiSha1(RSA_ROOT) + _spkiSha1(EC_ROOT)
    assert caForCertReq(STORE, data) == [EC_ROOT, RSA_ROOT]
    assert caForCertReq(STORE, certReqHashes(STORE)) == [RSA_ROOT, EC_ROOT]
    assert caForCertReq(STORE, b"") == []
    assert caForCertReq(STORE, unknown) == []


@pytest.mark.parametrize("length", [1, 19, 21, 39])
def test_caForCertReqRefusesDataThatIsNotWholeHashes(length):
    """CERTREQ data whose length is not a multiple of 20 is malformed."""
    with pytest.raises(CertificateError) as caught:
        caForCertReq(STORE, b"\x00" * length)
    assert caught.value.reason == REASON_MALFORMED


# -- path validation: accepted ----------------------------------------------------------------


def test_chainThroughIntermediateValidates():
    """RSA-3072 root -> ECDSA P-384 intermediate -> ECDSA P-256 gateway validates, and the
    result carries the chain end entity first, trust anchor last, and the key to verify
    AUTH with."""
    peer = validatePeerCertificate(STORE, GATEWAY, [INTER], NOW)
    assert isinstance(peer, ValidatedPeer)
    assert peer.chain == (GATEWAY, INTER, RSA_ROOT)
    assert peer.endEntity == GATEWAY
    assert peer.trustAnchor == RSA_ROOT
    assert peer.publicKey == GATEWAY_KEY.public_key()


def test_directlyIssuedCertificateValidates():
    """An RSA-3072 client issued directly by the ECDSA root validates with no intermediates."""
    assert validatePeerCertificate(STORE, CLIENT, [], NOW).chain == (CLIENT, EC_ROOT)


def test_intermediatesMayComeInAnyOrderWithExtras():
    """Peers send CERT payloads in any order and sometimes extra ones; path building copes."""
    other = issue(dn("Unrelated CA"), INTER_KEY, EC_ROOT_NAME, EC_ROOT_KEY, ca=True)
    peer = validatePeerCertificate(STORE, GATEWAY, [other, RSA_ROOT, INTER], NOW)
    assert peer.chain == (GATEWAY, INTER, RSA_ROOT)


def test_naiveValidationTimeIsUtc():
    """A naive datetime is taken as UTC: one second past notAfter in UTC is expired."""
    cert = gateway(notAfter=datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    validatePeerCertificate(STORE, cert, [INTER], datetime.datetime(2026, 6, 1, 12, 0))
    error = refused(STORE, cert, [INTER], datetime.datetime(2026, 6, 1, 12, 0, 1))
    assert error.reason == REASON_EXPIRED


@pytest.mark.parametrize(
    "eku",
    [
        None,
        [IPSEC_IKE],
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        [ExtendedKeyUsageOID.SERVER_AUTH, IPSEC_IKE],
        [ExtendedKeyUsageOID.CODE_SIGNING, IPSEC_IKE],
        [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
    ],
    ids=["absent", "ipsecIKE", "serverAuth", "clientAuth", "strongSwan", "mixed", "anyEKU"],
)
def test_extendedKeyUsagesIkePeersCarryAreAccepted(eku):
    """No EKU, or one naming ipsecIKE, serverAuth, clientAuth (or anyEKU) is accepted."""
    validatePeerCertificate(STORE, gateway(eku=eku), [INTER], NOW)


def test_endEntityWithoutSubjectAltNameValidates():
    """A DN-only end entity (no subjectAltName) is fine: IKE may identify it by DN."""
    validatePeerCertificate(STORE, gateway(san=None), [INTER], NOW)


def test_endEntityWithoutKeyUsageValidates():
    """keyUsage is optional; only when present must it allow digitalSignature."""
    validatePeerCertificate(STORE, gateway(keyUsage=None), [INTER], NOW)


def test_ed25519EndEntityValidates():
    """An Ed25519 peer key under an ECDSA CA is accepted (RFC 8420 AUTH can use it)."""
    key = ed25519.Ed25519PrivateKey.generate()
    cert = issue(dn("ed"), key, INTER_NAME, INTER_KEY)
    validatePeerCertificate(STORE, cert, [INTER], NOW)


def test_intermediateWithIpsecIkeEkuValidates():
    """An intermediate restricted by EKU to ipsecIKE still issues IKE certificates."""
    inter = issue(INTER_NAME, INTER_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True, eku=[IPSEC_IKE])
    validatePeerCertificate(STORE, GATEWAY, [inter], NOW)


# -- path validation: refused -----------------------------------------------------------------


def test_unknownIssuerIsAnUntrustedCA():
    """A certificate from a CA we do not trust, even one with a trusted CA's name, or with
    its intermediate missing, is refused as untrusted."""
    impostorKey = ec.generate_private_key(ec.SECP256R1())
    impostor = issue(GATEWAY_NAME, GATEWAY_KEY, EC_ROOT_NAME, impostorKey)
    assert refused(STORE, impostor, []).reason == REASON_UNTRUSTED
    assert refused(STORE, GATEWAY, []).reason == REASON_UNTRUSTED
    assert refused(TrustStore([EC_ROOT]), GATEWAY, [INTER]).reason == REASON_UNTRUSTED


def test_selfSignedPeerIsAnUntrustedCA():
    """A peer presenting a self-signed CA certificate of its own is not trusted."""
    key = ec.generate_private_key(ec.SECP256R1())
    own = issue(dn("self"), key, dn("self"), key, ca=True)
    assert refused(STORE, GATEWAY, [own]).reason == REASON_UNTRUSTED


def test_expiredEndEntity():
    """One second after notAfter the end entity is refused as expired."""
    cert = gateway(notAfter=NOW - datetime.timedelta(seconds=1))
    assert refused(STORE, cert, [INTER]).reason == REASON_EXPIRED


def test_notYetValidEndEntity():
    """Before notBefore the end entity is refused as not yet valid."""
    cert = gateway(notBefore=NOW + datetime.timedelta(seconds=1))
    assert refused(STORE, cert, [INTER]).reason == REASON_NOT_YET_VALID


def test_expiredIntermediate():
    """An expired intermediate makes the chain expired."""
    inter = issue(INTER_NAME, INTER_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True, notAfter=NOW - DAY)
    assert refused(STORE, GATEWAY, [inter]).reason == REASON_EXPIRED


def test_notYetValidIntermediate():
    """An intermediate valid only from tomorrow makes the chain not yet valid."""
    inter = issue(INTER_NAME, INTER_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True, notBefore=NOW + DAY)
    assert refused(STORE, GATEWAY, [inter]).reason == REASON_NOT_YET_VALID


def test_expiredTrustAnchor():
    """A trusted root past its notAfter no longer validates anything."""
    root = issue(
        EC_ROOT_NAME,
        EC_ROOT_KEY,
        EC_ROOT_NAME,
        EC_ROOT_KEY,
        ca=True,
        notBefore=NOW - 400 * DAY,
        notAfter=NOW - DAY,
    )
    assert refused(TrustStore([root]), CLIENT, []).reason == REASON_EXPIRED


@pytest.mark.parametrize(
    "eku",
    [
        [ExtendedKeyUsageOID.CODE_SIGNING],
        [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.TIME_STAMPING],
    ],
)
def test_wrongExtendedKeyUsage(eku):
    """An EKU without ipsecIKE, serverAuth, clientAuth or anyEKU is wrong key usage."""
    assert refused(STORE, gateway(eku=eku), [INTER]).reason == REASON_WRONG_KEY_USAGE


def test_keyUsageWithoutDigitalSignature():
    """keyUsage present without digitalSignature (here keyEncipherment only) is refused."""
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    assert refused(STORE, gateway(keyUsage=usage), [INTER]).reason == REASON_WRONG_KEY_USAGE


def test_intermediateWithForeignEkuIsWrongKeyUsage():
    """An intermediate whose EKU allows only e-mail protection cannot vouch for IKE."""
    inter = issue(
        INTER_NAME,
        INTER_KEY,
        RSA_ROOT_NAME,
        RSA_ROOT_KEY,
        ca=True,
        eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION],
    )
    assert refused(STORE, GATEWAY, [inter]).reason == REASON_WRONG_KEY_USAGE


def test_pathLengthConstraintIsEnforced():
    """The intermediate's pathLen 0 forbids a further CA below it."""
    subKey = ec.generate_private_key(ec.SECP256R1())
    sub = issue(dn("Sub CA"), subKey, INTER_NAME, INTER_KEY, ca=True)
    leaf = issue(dn("leaf"), GATEWAY_KEY, dn("Sub CA"), subKey)
    assert refused(STORE, leaf, [INTER, sub]).reason == REASON_PATH_LENGTH


def test_endEntityThatIsACaIsRefused():
    """A CA certificate presented as the peer's own is refused."""
    refused(STORE, INTER, [])


def test_issuerThatIsNotACaIsRefused():
    """A certificate signed by an end entity (cA not set) does not chain."""
    leaf = issue(dn("leaf"), ec.generate_private_key(ec.SECP256R1()), dn("alice"), CLIENT_KEY)
    assert refused(STORE, leaf, [CLIENT]).reason == REASON_UNTRUSTED


def test_unknownCriticalExtensionIsRefused():
    """An end entity with a critical extension nobody understands is refused."""
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    refused(STORE, gateway(extra=[(odd, True)]), [INTER])


def test_shortRsaEndEntityKeyIsRefused():
    """An RSA end-entity key under 2048 bits cannot authenticate."""
    weak = rsa.generate_private_key(65537, 1024)
    cert = issue(dn("weak"), weak, EC_ROOT_NAME, EC_ROOT_KEY)
    assert refused(STORE, cert, []).reason == REASON_UNSUPPORTED_KEY


def test_fourDistinctIntermediatesInAnyOrderBuildThePath():
    """
    A client with a long chain (root, four intermediate CAs, its own certificate) sends every
    intermediate in CERT payloads, nearest first as strongSwan does, or in any other order:
    the path is built through all four to the one root the store trusts. Without them, or
    with one missing, it does not reach the root.
    """
    rootKey = ec.generate_private_key(ec.SECP256R1())
    root = issue(dn("Long Root"), rootKey, dn("Long Root"), rootKey, ca=True)
    store = TrustStore([root])
    chain, issuerName, issuerKey = [], root.subject, rootKey
    for i in range(1, 5):
        key = ec.generate_private_key(ec.SECP256R1())
        chain.append(issue(dn(f"Long Intermediate {i}"), key, issuerName, issuerKey, ca=True))
        issuerName, issuerKey = chain[-1].subject, key
    leaf = issue(dn("alice"), CLIENT_KEY, issuerName, issuerKey)
    for order in (chain[::-1], chain, [chain[2], chain[0], chain[3], chain[1]]):
        validated = validatePeerCertificate(store, leaf, order, NOW)
        assert validated.chain == (leaf, *chain[::-1], root)
    assert refused(store, leaf, []).reason == REASON_UNTRUSTED
    assert refused(store, leaf, chain[1:]).reason == REASON_UNTRUSTED


def test_moreThanFourIntermediatesIsRefusedUpFront():
    """Five intermediates are refused before any path building (bounded work)."""
    assert MAX_INTERMEDIATES == 4
    error = refused(STORE, GATEWAY, [INTER] * 5)
    assert error.reason == REASON_TOO_LARGE
    validatePeerCertificate(STORE, GATEWAY, [INTER] * 4, NOW)


def test_oversizedCertificateIsRefusedUpFront():
    """A certificate over 16 KiB of DER is refused before any path building."""
    padding = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"), b"\x04\x82\x40\x00" + b"\x00" * 0x4000
    )
    big = gateway(extra=[(padding, False)])
    assert len(big.public_bytes(serialization.Encoding.DER)) > 16 * 1024
    assert refused(STORE, big, [INTER]).reason == REASON_TOO_LARGE
    assert refused(STORE, GATEWAY, [big]).reason == REASON_TOO_LARGE


def test_somethingThatIsNotACertificateIsMalformed():
    """Bytes where a certificate belongs are a CertificateError, not a crash."""
    assert refused(STORE, GATEWAY, [b"\x30\x00"]).reason == REASON_MALFORMED


# -- revocation -------------------------------------------------------------------------------


def test_revokedEndEntity():
    """An end entity listed in its issuer's current, correctly signed CRL is revoked."""
    cert = gateway(serial=4242)
    store = TrustStore([RSA_ROOT], [crlOf(INTER_NAME, INTER_KEY, [4241, 4242])])
    assert refused(store, cert, [INTER]).reason == REASON_REVOKED
    validatePeerCertificate(store, GATEWAY, [INTER], NOW)  # others are unaffected


def test_revokedIntermediate():
    """An intermediate listed in the root's CRL revokes everything below it."""
    store = TrustStore([RSA_ROOT], [crlOf(RSA_ROOT_NAME, RSA_ROOT_KEY, [INTER.serial_number])])
    assert refused(store, GATEWAY, [INTER]).reason == REASON_REVOKED


def test_crlSignedByAnotherKeyIsIgnored():
    """A CRL with the issuer's name but signed by someone else's key revokes nothing."""
    forger = ec.generate_private_key(ec.SECP384R1())
    cert = gateway(serial=5151)
    store = TrustStore([RSA_ROOT], [crlOf(INTER_NAME, forger, [5151])])
    validatePeerCertificate(store, cert, [INTER], NOW)


@pytest.mark.parametrize(
    "lastUpdate, nextUpdate",
    [(NOW - 30 * DAY, NOW - DAY), (NOW + DAY, NOW + 30 * DAY)],
    ids=["stale", "future"],
)
def test_crlOutsideItsValidityIsIgnored(lastUpdate, nextUpdate):
    """A CRL past its nextUpdate, or issued after the validation time, is not used."""
    cert = gateway(serial=6161)
    crl = crlOf(INTER_NAME, INTER_KEY, [6161], lastUpdate=lastUpdate, nextUpdate=nextUpdate)
    validatePeerCertificate(TrustStore([RSA_ROOT], [crl]), cert, [INTER], NOW)


def test_crlFromIssuerWithoutCrlSignIsIgnored():
    """A CRL is only believed from an issuer whose keyUsage allows cRLSign."""
    noCrlSign = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
    inter = issue(INTER_NAME, INTER_KEY, RSA_ROOT_NAME, RSA_ROOT_KEY, ca=True, keyUsage=noCrlSign)
    cert = gateway(serial=7171)
    store = TrustStore([RSA_ROOT], [crlOf(INTER_NAME, INTER_KEY, [7171])])
    validatePeerCertificate(store, cert, [inter], NOW)
    assert refused(store, cert, [INTER]).reason == REASON_REVOKED


def test_revocationVerdictIsStableAcrossCalls():
    """The memoised CRL signature check gives the same answer the second time."""
    cert = gateway(serial=8181)
    store = TrustStore([RSA_ROOT], [crlOf(INTER_NAME, INTER_KEY, [8181])])
    for _ in range(2):
        assert refused(store, cert, [INTER]).reason == REASON_REVOKED


# -- strongSwan's PKI -------------------------------------------------------------------------


def _pkiCert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PKI / f"{name}.pem").read_bytes())


PKI_NOW = datetime.datetime(2030, 1, 1, tzinfo=UTC)


def test_strongSwanChainValidates():
    """strongSwan's RSA-3072 root -> (RSA-PSS signed) ECDSA P-384 intermediate -> ECDSA
    P-256 gateway with serverAuth + ikeIntermediate validates, CRL in the store."""
    crl = x509.load_pem_x509_crl((PKI / "intermediate.crl").read_bytes())
    store = TrustStore([_pkiCert("root")], [crl])
    peer = validatePeerCertificate(store, _pkiCert("gateway"), [_pkiCert("intermediate")], PKI_NOW)
    assert [c.subject.rfc4514_string() for c in peer.chain] == [
        "CN=vpn.example.org,O=ikehub test,C=CH",
        "CN=ikehub Test Intermediate CA,O=ikehub test,C=CH",
        "CN=ikehub Test Root CA,O=ikehub test,C=CH",
    ]


def test_strongSwanCrlRevokes():
    """The certificate strongSwan's `pki --signcrl` revoked is refused as revoked, and
    accepted when that CRL is not in the store."""
    crl = x509.load_pem_x509_crl((PKI / "intermediate.crl").read_bytes())
    revoked, inter = _pkiCert("revoked"), _pkiCert("intermediate")
    error = refused(TrustStore([_pkiCert("root")], [crl]), revoked, [inter], PKI_NOW)
    assert error.reason == REASON_REVOKED
    validatePeerCertificate(TrustStore([_pkiCert("root")]), revoked, [inter], PKI_NOW)


def test_strongSwanChainExpiresWhenItSays():
    """After 2045-01-01, strongSwan's chain is expired."""
    error = refused(
        TrustStore([_pkiCert("root")]),
        _pkiCert("gateway"),
        [_pkiCert("intermediate")],
        datetime.datetime(2045, 1, 2, tzinfo=UTC),
    )
    assert error.reason == REASON_EXPIRED


def test_strongSwanGatewayIdentities():
    """Each subjectAltName `pki --san` wrote, and its DN as strongSwan writes it, is bound
    to the gateway certificate; a neighbouring name is not."""
    cert = _pkiCert("gateway")
    for text in [
        "vpn.example.org",
        "192.0.2.1",
        "2001:db8::1",
        "admin@example.org",
        "C=CH, O=ikehub test, CN=vpn.example.org",
    ]:
        identity = Identity.fromString(text)
        assert identityMatches(cert, identity.idType, identity.data), text
    other = Identity.fromString("vpn2.example.org")
    assert not identityMatches(cert, other.idType, other.data)


# -- identities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "idType, data",
    [
        (IDType.ID_FQDN, b"gw.example.org"),
        (IDType.ID_FQDN, b"GW.EXAMPLE.ORG"),
        (IDType.ID_FQDN, b"vpn.example.org"),
        (IDType.ID_IPV4_ADDR, ipaddress.ip_address("198.51.100.7").packed),
        (IDType.ID_IPV6_ADDR, ipaddress.ip_address("2001:db8::7").packed),
        (IDType.ID_RFC822_ADDR, b"Ops@example.org"),
        (IDType.ID_RFC822_ADDR, b"Ops@EXAMPLE.org"),
        (IDType.ID_DER_ASN1_DN, GATEWAY_NAME.public_bytes()),
    ],
)
def test_identityInCertificateMatches(idType, data):
    """FQDNs (any case), addresses, e-mail (domain in any case) and the subject DN that the
    certificate carries match."""
    assert identityMatches(GATEWAY, idType, data)
    requireIdentity(GATEWAY, idType, data)


@pytest.mark.parametrize(
    "idType, data",
    [
        (IDType.ID_FQDN, b"other.example.org"),
        (IDType.ID_FQDN, b"gw.example.org."),
        (IDType.ID_FQDN, b"example.org"),
        (IDType.ID_FQDN, "gw.exämple.org".encode()),
        (IDType.ID_FQDN, b""),
        (IDType.ID_IPV4_ADDR, ipaddress.ip_address("198.51.100.8").packed),
        (IDType.ID_IPV4_ADDR, b"\xc6\x33\x64"),
        (IDType.ID_IPV6_ADDR, ipaddress.ip_address("2001:db8::8").packed),
        (IDType.ID_IPV6_ADDR, ipaddress.ip_address("198.51.100.7").packed),
        (IDType.ID_IPV4_ADDR, ipaddress.ip_address("2001:db8::7").packed),
        (IDType.ID_RFC822_ADDR, b"ops@example.org"),
        (IDType.ID_RFC822_ADDR, b"Ops@example.net"),
        (IDType.ID_RFC822_ADDR, b"example.org"),
        (IDType.ID_DER_ASN1_DN, dn("gw.example.org", o="someone else").public_bytes()),
        (IDType.ID_DER_ASN1_DN, b"\x30\x03\x31\x01"),
        (IDType.ID_DER_ASN1_DN, b"\x30\x00"),
        (IDType.ID_KEY_ID, b"gw.example.org"),
        (99, b"gw.example.org"),
    ],
)
def test_identityNotInCertificateDoesNotMatch(idType, data):
    """Other names, a trailing dot, other addresses (or the right address as the wrong
    type), another e-mail local part case, another DN, malformed data, key IDs and unknown
    types do not match; requireIdentity says "identity not in certificate"."""
    assert not identityMatches(GATEWAY, idType, data)
    with pytest.raises(CertificateError) as caught:
        requireIdentity(GATEWAY, idType, data)
    assert caught.value.reason == REASON_IDENTITY


def test_wildcardDnsNameDoesNotStandForNamesUnderIt():
    """A *.example.org dNSName does not bind host.example.org (nor the literal '*')."""
    cert = gateway(san=[x509.DNSName("*.example.org")])
    assert not identityMatches(cert, IDType.ID_FQDN, b"host.example.org")
    assert identityMatches(cert, IDType.ID_FQDN, b"*.example.org")


def test_fqdnInCommonNameOnlyDoesNotMatch():
    """The subject's CN is not a subjectAltName: an FQDN only there is not bound."""
    cert = gateway(san=None)
    assert not identityMatches(cert, IDType.ID_FQDN, b"gw.example.org")
    assert not identityMatches(cert, IDType.ID_IPV4_ADDR, b"\xc6\x33\x64\x07")


def test_addressOnlyAsDnsNameDoesNotMatchAnAddressIdentity():
    """'198.51.100.7' written as a dNSName does not bind the ID_IPV4_ADDR."""
    cert = gateway(san=[x509.DNSName("198.51.100.7")])
    assert not identityMatches(cert, IDType.ID_IPV4_ADDR, b"\xc6\x33\x64\x07")


def test_dnMatchesAcrossStringTypes():
    """The subject DN matches an ID whose values are the same text in another ASN.1 string
    type (strongSwan writes PrintableString, our subject is UTF8String)."""
    printable = Identity.fromString("C=CH, O=ikehub test, CN=gw.example.org")
    assert printable.data != GATEWAY_NAME.public_bytes()
    assert identityMatches(GATEWAY, IDType.ID_DER_ASN1_DN, printable.data)


def test_dnWithAttributesInAnotherOrderDoesNotMatch():
    """The same attributes in another order are another DN."""
    reordered = x509.Name(list(reversed(list(GATEWAY_NAME)))).public_bytes()
    assert not identityMatches(GATEWAY, IDType.ID_DER_ASN1_DN, reordered)


def test_dnWildcardIsNotHonoured():
    """A peer ID of CN=* is not a pattern that matches any certificate."""
    star = Identity.fromString("C=CH, O=ikehub test, CN=*")
    assert not identityMatches(GATEWAY, IDType.ID_DER_ASN1_DN, star.data)
    cert = issue(dn("*"), GATEWAY_KEY, INTER_NAME, INTER_KEY)
    assert not identityMatches(cert, IDType.ID_DER_ASN1_DN, GATEWAY_NAME.public_bytes())


def test_dnInSubjectAltNameDirectoryNameMatches():
    """A directoryName in subjectAltName binds that DN too."""
    other = dn("alternate")
    cert = gateway(san=[x509.DirectoryName(other)])
    assert identityMatches(cert, IDType.ID_DER_ASN1_DN, other.public_bytes())


def test_emptySubjectMatchesNoDn():
    """A certificate with an empty subject does not bind the empty DN."""
    cert = issue(
        x509.Name([]), GATEWAY_KEY, INTER_NAME, INTER_KEY, san=[x509.DNSName("x.example.org")]
    )
    assert not identityMatches(cert, IDType.ID_DER_ASN1_DN, x509.Name([]).public_bytes())
