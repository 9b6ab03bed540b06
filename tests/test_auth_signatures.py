"""
AUTH payload signatures (RFC 7296 section 2.15, RFC 4754, RFC 7427, RFC 8420).

Oracles, none of them this module's own output: NIST's published ECDSA examples for the
raw r | s of methods 9 to 11; the AlgorithmIdentifier bytes listed in RFC 7427 Appendix A,
checked again against the encodings cryptography writes into certificates; signatures made
by strongSwan's `pki` (tests/data/pki, see make-pki.sh), whose certificate signatures have
exactly the shape of RFC 7427 Authentication Data; and cryptography verifying our output
directly. Then every malformed or hostile input ends in SignatureError and nothing else.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikehub.auth.signatures import (
    SIGNATURE_HASH_ALGORITHMS,
    SignatureError,
    chooseHash,
    signAuth,
    verifyAuth,
)
from ikehub.wire.constants import AuthMethod, HashAlgorithm

PKI = Path(__file__).parent / "data" / "pki"
OCTETS = b"RealMessage1 | NonceRData | MACedIDForI, as the IKE layer would assemble them"

RSA_KEY = rsa.generate_private_key(65537, 2048)
P256_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())
P521_KEY = ec.generate_private_key(ec.SECP521R1())
ED25519_KEY = ed25519.Ed25519PrivateKey.generate()
ED448_KEY = ed448.Ed448PrivateKey.generate()

SHA256, SHA384, SHA512, IDENTITY = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)
DIGITAL = AuthMethod.DIGITAL_SIGNATURE

# RFC 7427 Appendix A, as listed there (A.1.3, A.1.4, A.1.5, A.3.1, A.3.2, A.3.3, A.4.3)
# and RFC 8420 section 2 for EdDSA.
RFC7427_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
RFC7427_SHA384_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010c0500")
RFC7427_SHA512_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010d0500")
RFC7427_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
RFC7427_ECDSA_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
RFC7427_ECDSA_SHA512 = bytes.fromhex("300a06082a8648ce3d040304")
RFC7427_PSS_SHA256 = bytes.fromhex(
    "3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201 0500"
    "a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203"
    "0201 20"
)
RFC8420_ED25519 = bytes.fromhex("300506032b6570")
RFC8420_ED448 = bytes.fromhex("300506032b6571")
RFC7427_SHA1_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
RFC7427_PSS_DEFAULT_PARAMETERS = bytes.fromhex(  # A.4.2, explicit SHA-1 defaults
    "303e06092a864886f70d01010a3031a00b300906052b0e03021a0500a118301606092a864886f70d0101"
    "08300906052b0e03021a0500a203020114a303020101"
)


def authData(identifier: bytes, signature: bytes) -> bytes:
    return bytes([len(identifier)]) + identifier + signature


def splitAuthData(data: bytes) -> tuple[bytes, bytes]:
    return data[1 : 1 + data[0]], data[1 + data[0] :]


# -- round trips ------------------------------------------------------------------------------

ROUND_TRIPS = [
    (RSA_KEY, AuthMethod.RSA_SIGNATURE, None, False),
    (P256_KEY, AuthMethod.ECDSA_SHA256_P256, None, False),
    (P384_KEY, AuthMethod.ECDSA_SHA384_P384, None, False),
    (P521_KEY, AuthMethod.ECDSA_SHA512_P521, None, False),
    *[(RSA_KEY, DIGITAL, h, pss) for h in (SHA256, SHA384, SHA512) for pss in (False, True)],
    *[
        (k, DIGITAL, h, False)
        for k in (P256_KEY, P384_KEY, P521_KEY)
        for h in (SHA256, SHA384, SHA512)
    ],
    (ED25519_KEY, DIGITAL, IDENTITY, False),
    (ED448_KEY, DIGITAL, IDENTITY, False),
]


def _label(case: tuple) -> str:
    key, method, h, pss = case
    return f"{type(key).__name__}-{int(method)}-{h}-{'pss' if pss else ''}"


@pytest.mark.parametrize("case", ROUND_TRIPS, ids=[_label(c) for c in ROUND_TRIPS])
def test_signThenVerifyRoundTripsAndAnyChangeFails(case):
    """Every method and key type verifies its own signature, and refuses it for other
    octets or with one bit of the Authentication Data flipped."""
    key, method, h, pss = case
    data = signAuth(key, method, OCTETS, h, rsaPss=pss)
    verifyAuth(key.public_key(), method, data, OCTETS)
    with pytest.raises(SignatureError):
        verifyAuth(key.public_key(), method, data, OCTETS + b"\x00")
    flipped = bytearray(data)
    flipped[-1] ^= 0x01
    with pytest.raises(SignatureError):
        verifyAuth(key.public_key(), method, bytes(flipped), OCTETS)


def test_method1IsPkcs1v15WithSha1():
    """Method 1 is a bare RSASSA-PKCS1-v1_5 signature over SHA-1, as cryptography checks it."""
    data = signAuth(RSA_KEY, AuthMethod.RSA_SIGNATURE, OCTETS, None)
    RSA_KEY.public_key().verify(data, OCTETS, padding.PKCS1v15(), hashes.SHA1())


@pytest.mark.parametrize(
    "key, method, digest, width",
    [
        (P256_KEY, AuthMethod.ECDSA_SHA256_P256, hashes.SHA256(), 32),
        (P384_KEY, AuthMethod.ECDSA_SHA384_P384, hashes.SHA384(), 48),
        (P521_KEY, AuthMethod.ECDSA_SHA512_P521, hashes.SHA512(), 66),
    ],
)
def test_rfc4754SignatureIsFixedWidthRAndS(key, method, digest, width):
    """Methods 9 to 11 write r and s, each zero-padded to the curve size (RFC 4754 section 7)."""
    for _ in range(20):  # some r or s will be short: padding must keep the width
        data = signAuth(key, method, OCTETS, None)
        assert len(data) == 2 * width
        r = int.from_bytes(data[:width], "big")
        s = int.from_bytes(data[width:], "big")
        key.public_key().verify(encode_dss_signature(r, s), OCTETS, ec.ECDSA(digest))


# NIST CSRC "ECDSA examples" (P256_SHA256.pdf, P384_SHA384.pdf, P521_SHA512.pdf): public key
# and signature (r, s) over the ASCII message; the message hash is the method's hash.
NIST_ECDSA = [
    (
        AuthMethod.ECDSA_SHA256_P256,
        ec.SECP256R1(),
        b"Example of ECDSA with P-256",
        "B7E08AFDFE94BAD3F1DC8C734798BA1C62B3A0AD1E9EA2A38201CD0889BC7A19",
        "3603F747959DBF7A4BB226E41928729063ADC7AE43529E61B563BBC606CC5E09",
        "2B42F576D07F4165FF65D1F3B1500F81E44C316F1F0B3EF57325B69ACA46104F",
        "DC42C2122D6392CD3E3A993A89502A8198C1886FE69D262C4B329BDB6B63FAF1",
    ),
    (
        AuthMethod.ECDSA_SHA384_P384,
        ec.SECP384R1(),
        b"Example of ECDSA with P-384",
        (
            "3BF701BC9E9D36B4D5F1455343F09126F2564390F2B487365071243C61E6471F"
            "B9D2AB74657B82F9086489D9EF0F5CB5"
        ),
        (
            "D1A358EAFBF952E68D533855CCBDAA6FF75B137A5101443199325583552A6295"
            "FFE5382D00CFCDA30344A9B5B68DB855"
        ),
        (
            "30EA514FC0D38D8208756F068113C7CADA9F66A3B40EA3B313D040D9B57DD41A"
            "332795D02CC7D507FCEF9FAF01A27088"
        ),
        (
            "CC808E504BE414F46C9027BCBF78ADF067A43922D6FCAA66C4476875FBB7B94E"
            "FD1F7D5DBE620BFB821C46D549683AD8"
        ),
    ),
    (
        AuthMethod.ECDSA_SHA512_P521,
        ec.SECP521R1(),
        b"Example of ECDSA with P-521",
        (
            "0098E91EEF9A68452822309C52FAB453F5F117C1DA8ED796B255E9AB8F6410CCA16E59DF403A6BD"
            "C6CA467A37056B1E54B3005D8AC030DECFEB68DF18B171885D5C4"
        ),
        (
            "0164350C321AECFC1CCA1BA4364C9B15656150B4B78D6A48D7D28E7F31985EF17BE8554376B7290"
            "0712C4B83AD668327231526E313F5F092999A4632FD50D946BC2E"
        ),
        (
            "0140C8EDCA57108CE3F7E7A240DDD3AD74D81E2DE62451FC1D558FDC79269ADACD1C2526EEEEF32"
            "F8C0432A9D56E2B4A8A732891C37C9B96641A9254CCFE5DC3E2BA"
        ),
        (
            "00D72F15229D0096376DA6651D9985BFD7C07F8D49583B545DB3EAB20E0A2C1E8615BD9E298455B"
            "DEB6B61378E77AF1C54EEE2CE37B2C61F5C9A8232951CB988B5B1"
        ),
    ),
]


def _nistKey(curve, qx, qy):
    return ec.EllipticCurvePublicNumbers(int(qx, 16), int(qy, 16), curve).public_key()


@pytest.mark.parametrize("vector", NIST_ECDSA, ids=["P-256", "P-384", "P-521"])
def test_nistEcdsaExampleVerifiesAsRfc4754AuthData(vector):
    """NIST's published ECDSA example, written as r | s, is valid Authentication Data for
    the method of its curve and hash, and not for another message."""
    method, curve, message, qx, qy, r, s = vector
    width = (curve.key_size + 7) // 8
    data = int(r, 16).to_bytes(width, "big") + int(s, 16).to_bytes(width, "big")
    key = _nistKey(curve, qx, qy)
    verifyAuth(key, method, data, message)
    with pytest.raises(SignatureError):
        verifyAuth(key, method, data, message + b".")


# -- AlgorithmIdentifiers: RFC 7427 bytes, cryptography's and strongSwan's encodings ----------


@pytest.mark.parametrize(
    "key, h, pss, expected",
    [
        (RSA_KEY, SHA256, False, RFC7427_SHA256_WITH_RSA),
        (RSA_KEY, SHA384, False, RFC7427_SHA384_WITH_RSA),
        (RSA_KEY, SHA512, False, RFC7427_SHA512_WITH_RSA),
        (RSA_KEY, SHA256, True, RFC7427_PSS_SHA256),
        (P256_KEY, SHA256, False, RFC7427_ECDSA_SHA256),
        (P256_KEY, SHA384, False, RFC7427_ECDSA_SHA384),
        (P256_KEY, SHA512, False, RFC7427_ECDSA_SHA512),
        (ED25519_KEY, IDENTITY, False, RFC8420_ED25519),
        (ED448_KEY, IDENTITY, False, RFC8420_ED448),
    ],
)
def test_method14WritesTheRfc7427AlgorithmIdentifier(key, h, pss, expected):
    """Method 14 Authentication Data is the length octet, the AlgorithmIdentifier exactly as
    RFC 7427 Appendix A / RFC 8420 list it, then the signature."""
    data = signAuth(key, DIGITAL, OCTETS, h, rsaPss=pss)
    assert data[0] == len(expected)
    assert data[1 : 1 + len(expected)] == expected


def _signatureAlgorithmField(cert: x509.Certificate) -> bytes:
    """The DER signatureAlgorithm of a certificate: the element right after the TBS."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs = cert.tbs_certificate_bytes
    at = der.index(tbs) + len(tbs)
    assert der[at] == 0x30 and der[at + 1] < 0x80
    return der[at : at + 2 + der[at + 1]]


def _selfSigned(key, digest, rsaPadding=None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alg")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if rsaPadding is not None:
        return builder.sign(key, digest, rsa_padding=rsaPadding)
    return builder.sign(key, digest)


@pytest.mark.parametrize(
    "key, digest, h, pss",
    [
        (RSA_KEY, hashes.SHA256(), SHA256, False),
        (RSA_KEY, hashes.SHA384(), SHA384, False),
        (RSA_KEY, hashes.SHA512(), SHA512, False),
        (RSA_KEY, hashes.SHA256(), SHA256, True),
        (RSA_KEY, hashes.SHA384(), SHA384, True),
        (RSA_KEY, hashes.SHA512(), SHA512, True),
        (P256_KEY, hashes.SHA256(), SHA256, False),
        (P384_KEY, hashes.SHA384(), SHA384, False),
        (P521_KEY, hashes.SHA512(), SHA512, False),
        (ED25519_KEY, None, IDENTITY, False),
        (ED448_KEY, None, IDENTITY, False),
    ],
)
def test_ourAlgorithmIdentifiersAreCryptographysAndItsSignaturesVerify(key, digest, h, pss):
    """The AlgorithmIdentifier we write is the one cryptography writes into a certificate
    signed the same way, and that certificate's own (identifier, signature, TBS) is accepted
    by verifyAuth as method 14 data."""
    rsaPadding = padding.PSS(padding.MGF1(digest), padding.PSS.DIGEST_LENGTH) if pss else None
    cert = _selfSigned(key, digest, rsaPadding)
    identifier = _signatureAlgorithmField(cert)
    ours, _ = splitAuthData(signAuth(key, DIGITAL, OCTETS, h, rsaPss=pss))
    assert ours == identifier
    verifyAuth(
        key.public_key(), DIGITAL, authData(identifier, cert.signature), cert.tbs_certificate_bytes
    )


def _pkiCert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PKI / f"{name}.pem").read_bytes())


@pytest.mark.parametrize(
    "subject, issuer, expectedFamily",
    [
        ("root", "root", RFC7427_SHA256_WITH_RSA),  # RSA PKCS#1 v1.5, SHA-256
        ("intermediate", "root", None),  # RSASSA-PSS, SHA-384 (checked below)
        ("gateway", "intermediate", RFC7427_ECDSA_SHA384),  # ECDSA, DER signature
        ("ed25519", "ed25519", RFC8420_ED25519),
    ],
)
def test_strongSwanSignaturesVerifyAsRfc7427AuthData(subject, issuer, expectedFamily):
    """Signatures made by strongSwan's pki (RSA PKCS#1, RSA-PSS, ECDSA, Ed25519), taken as
    (AlgorithmIdentifier, signature) over the TBS octets, verify as method 14 Authentication
    Data, and fail over any other octets."""
    cert, issuerCert = _pkiCert(subject), _pkiCert(issuer)
    identifier = _signatureAlgorithmField(cert)
    if expectedFamily is not None:
        assert identifier == expectedFamily
    data = authData(identifier, cert.signature)
    verifyAuth(issuerCert.public_key(), DIGITAL, data, cert.tbs_certificate_bytes)
    with pytest.raises(SignatureError):
        verifyAuth(issuerCert.public_key(), DIGITAL, data, cert.tbs_certificate_bytes[:-1])


def test_strongSwanPssIdentifierIsOursForSha384():
    """strongSwan's RSASSA-PSS/SHA-384 AlgorithmIdentifier (pki --rsa-padding pss) is
    byte for byte the one signAuth writes: MGF1 with the same hash, salt = hash length."""
    identifier = _signatureAlgorithmField(_pkiCert("intermediate"))
    ours, _ = splitAuthData(signAuth(RSA_KEY, DIGITAL, OCTETS, SHA384, rsaPss=True))
    assert identifier == ours


def test_rfc7427PssDefaultParametersMeanSha1AndAreRefused():
    """RFC 7427 A.4.2's RSASSA-PSS with (explicit) default parameters is SHA-1: refused."""
    signature = RSA_KEY.sign(OCTETS, padding.PSS(padding.MGF1(hashes.SHA1()), 20), hashes.SHA1())
    data = authData(RFC7427_PSS_DEFAULT_PARAMETERS, signature)
    with pytest.raises(SignatureError):
        verifyAuth(RSA_KEY.public_key(), DIGITAL, data, OCTETS)


# -- hash negotiation -------------------------------------------------------------------------


def test_announcedHashesAreSha2AndIdentity():
    """We announce SHA2-256, SHA2-384, SHA2-512 and Identity (RFC 7427 section 4: 2, 3, 4,
    5), never SHA-1."""
    assert list(SIGNATURE_HASH_ALGORITHMS) == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "announced, key, expected",
    [
        ([2, 3, 4], P256_KEY, SHA256),
        ([2, 3, 4], P384_KEY, SHA384),
        ([4, 3, 2], P521_KEY, SHA512),
        ([2], P384_KEY, SHA256),
        ([4, 3, 2], RSA_KEY, SHA256),
        ([4], RSA_KEY, SHA512),
        ([1, 2, 3, 4, 5], ED25519_KEY, IDENTITY),
        ([5], ED448_KEY.public_key(), IDENTITY),
        ([99, 1, 3], RSA_KEY, SHA384),
    ],
)
def test_chooseHashPrefersTheKeysOwnStrength(announced, key, expected):
    """chooseHash takes the curve's own hash for ECDSA when announced, SHA2-256 first for
    RSA, Identity for EdDSA, and ignores numbers it does not know."""
    assert chooseHash(announced, key) == expected


@pytest.mark.parametrize(
    "announced, key",
    [([], RSA_KEY), ([1], RSA_KEY), ([2, 3, 4], ED25519_KEY), ([5], P256_KEY), ([2], object())],
)
def test_chooseHashRefusesWhenNothingUsableWasAnnounced(announced, key):
    """No common hash (SHA-1 only, Identity for a non-EdDSA key, SHA-2 for EdDSA, or an
    unknown key type) is a SignatureError the caller can fall back from."""
    with pytest.raises(SignatureError):
        chooseHash(announced, key)


# -- signing misuse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, method, h",
    [
        (P256_KEY, AuthMethod.RSA_SIGNATURE, None),
        (P384_KEY, AuthMethod.ECDSA_SHA256_P256, None),
        (RSA_KEY, AuthMethod.ECDSA_SHA256_P256, None),
        (P256_KEY, AuthMethod.ECDSA_SHA256_P256, SHA384),
        (RSA_KEY, AuthMethod.RSA_SIGNATURE, SHA256),
        (RSA_KEY, DIGITAL, HashAlgorithm.SHA1),
        (RSA_KEY, DIGITAL, None),
        (RSA_KEY, DIGITAL, IDENTITY),
        (ED25519_KEY, DIGITAL, SHA256),
        (ec.generate_private_key(ec.SECP256K1()), DIGITAL, SHA256),
        (RSA_KEY, AuthMethod.SHARED_KEY_MIC, None),
        (object(), DIGITAL, SHA256),
    ],
)
def test_signAuthRefusesKeysAndHashesTheMethodCannotUse(key, method, h):
    """A key that does not fit the method (or curve), a hash the method fixes otherwise,
    SHA-1 in method 14, or a non-signature method is a SignatureError, not a bad payload."""
    with pytest.raises(SignatureError):
        signAuth(key, method, OCTETS, h)


# -- adversarial: RSA PKCS#1 v1.5 -------------------------------------------------------------

# DigestInfo prefixes, RFC 8017 section 9.2 note 1.
DIGESTINFO_SHA1 = bytes.fromhex("3021300906052b0e03021a05000414")
DIGESTINFO_SHA1_NO_NULL = bytes.fromhex("301f300706052b0e03021a0414")
DIGESTINFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")

E3_KEY = rsa.generate_private_key(3, 3072)


def _rawRsaSignature(key: rsa.RSAPrivateKey, encoded: bytes) -> bytes:
    """m^d mod n for a hand-built encoded message: the only way to get a signature over a
    malformed PKCS#1 block, since cryptography (rightly) will not produce one."""
    numbers = key.private_numbers()
    size = (key.key_size + 7) // 8
    value = pow(int.from_bytes(encoded, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(size, "big")


def _emsa(key, body: bytes, paddingLength: int | None = None, tail: bytes = b"") -> bytes:
    size = (key.key_size + 7) // 8
    if paddingLength is None:
        paddingLength = size - 3 - len(body) - len(tail)
    encoded = b"\x00\x01" + b"\xff" * paddingLength + b"\x00" + body + tail
    return encoded.ljust(size, b"\x00")


def test_handBuiltPkcs1BlockIsAcceptedWhenWellFormed():
    """Control for the tests below: a correctly hand-built EMSA-PKCS1-v1_5 block signed with
    the raw private operation verifies, so their failures come from the defect alone."""
    digest = hashlib.sha1(OCTETS).digest()
    signature = _rawRsaSignature(RSA_KEY, _emsa(RSA_KEY, DIGESTINFO_SHA1 + digest))
    verifyAuth(RSA_KEY.public_key(), AuthMethod.RSA_SIGNATURE, signature, OCTETS)


@pytest.mark.parametrize(
    "build",
    [
        # garbage after the hash, padding shortened to make room (Bleichenbacher 2006)
        lambda d: _emsa(RSA_KEY, DIGESTINFO_SHA1 + d, tail=b"\x00garbage\xff" * 4),
        # DigestInfo naming SHA-256 around a SHA-256 hash, verified as method 1 (SHA-1)
        lambda d: _emsa(RSA_KEY, DIGESTINFO_SHA256 + hashlib.sha256(OCTETS).digest()),
        # DigestInfo without the NULL parameters
        lambda d: _emsa(RSA_KEY, DIGESTINFO_SHA1_NO_NULL + d),
        # bare hash, no DigestInfo at all
        lambda d: _emsa(RSA_KEY, d),
        # padding string shorter than 8 octets, zeros after the block
        lambda d: _emsa(RSA_KEY, DIGESTINFO_SHA1 + d, paddingLength=4),
        # block type 2 (encryption padding) instead of 1
        lambda d: b"\x00\x02" + _emsa(RSA_KEY, DIGESTINFO_SHA1 + d)[2:],
    ],
    ids=[
        "trailing-garbage",
        "wrong-digestinfo",
        "digestinfo-no-null",
        "no-digestinfo",
        "short-padding",
        "block-type-2",
    ],
)
def test_malformedPkcs1BlocksAreRefused(build):
    """cryptography (OpenSSL) compares the whole encoded block, so every PKCS#1 v1.5 defect
    a lax parser has been fooled by is a SignatureError."""
    signature = _rawRsaSignature(RSA_KEY, build(hashlib.sha1(OCTETS).digest()))
    with pytest.raises(SignatureError):
        verifyAuth(RSA_KEY.public_key(), AuthMethod.RSA_SIGNATURE, signature, OCTETS)


def _integerCubeRoot(value: int) -> int:
    root = 1 << ((value.bit_length() + 2) // 3)
    while True:
        better = (2 * root + value // (root * root)) // 3
        if better >= root:
            return root
        root = better


@pytest.mark.parametrize(
    "method, prefix",
    [
        (AuthMethod.RSA_SIGNATURE, DIGESTINFO_SHA1 + hashlib.sha1(OCTETS).digest()),
        (DIGITAL, DIGESTINFO_SHA256 + hashlib.sha256(OCTETS).digest()),
    ],
)
def test_bleichenbacherE3ForgeryIsRefused(method, prefix):
    """Without the private key, a cube root gives an e=3 'signature' whose block starts
    00 01 FF.. 00 DigestInfo hash and ends in garbage; it must not verify."""
    size = E3_KEY.key_size // 8
    head = b"\x00\x01" + b"\xff" * 8 + b"\x00" + prefix
    target = int.from_bytes(head + b"\xff" * (size - len(head)), "big")
    forged = _integerCubeRoot(target)
    block = pow(forged, 3, E3_KEY.public_key().public_numbers().n).to_bytes(size, "big")
    assert block.startswith(head)  # the forgery does fool a prefix-only check
    signature = forged.to_bytes(size, "big")
    if method == DIGITAL:
        signature = authData(RFC7427_SHA256_WITH_RSA, signature)
    with pytest.raises(SignatureError):
        verifyAuth(E3_KEY.public_key(), method, signature, OCTETS)


@pytest.mark.parametrize("change", [lambda s: s + b"\x00", lambda s: s[:-1], lambda s: b"\x00" + s])
def test_rsaSignatureOfTheWrongLengthIsRefused(change):
    """A valid RSA signature with an octet added or removed is refused (no leniency about
    leading zeros or trailing data)."""
    signature = signAuth(RSA_KEY, AuthMethod.RSA_SIGNATURE, OCTETS, None)
    with pytest.raises(SignatureError):
        verifyAuth(RSA_KEY.public_key(), AuthMethod.RSA_SIGNATURE, change(signature), OCTETS)


def test_pkcs1SignatureWithAnotherHashThanDeclaredIsRefused():
    """A PKCS#1 signature over SHA-512 presented as sha256WithRSAEncryption does not verify."""
    signature = RSA_KEY.sign(OCTETS, padding.PKCS1v15(), hashes.SHA512())
    with pytest.raises(SignatureError):
        verifyAuth(
            RSA_KEY.public_key(), DIGITAL, authData(RFC7427_SHA256_WITH_RSA, signature), OCTETS
        )


def test_shortRsaKeyIsRefused():
    """An RSA key under 2048 bits does not authenticate, even with a correct signature."""
    weak = rsa.generate_private_key(65537, 1024)
    signature = weak.sign(OCTETS, padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(SignatureError):
        verifyAuth(weak.public_key(), AuthMethod.RSA_SIGNATURE, signature, OCTETS)


# -- adversarial: ECDSA -----------------------------------------------------------------------

# Group orders, SEC 2 / FIPS 186-4 D.1.2.
ORDERS = {
    AuthMethod.ECDSA_SHA256_P256: int(
        "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16
    ),
    AuthMethod.ECDSA_SHA384_P384: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    AuthMethod.ECDSA_SHA512_P521: int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D0"
        "3BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


@pytest.mark.parametrize("vector", NIST_ECDSA, ids=["P-256", "P-384", "P-521"])
def test_groupOrdersAreRightSinceNegatedSIsAlsoValid(vector):
    """(r, n - s) is the other valid signature of the NIST example, which pins the group
    orders the out-of-range tests below depend on."""
    method, curve, message, qx, qy, r, s = vector
    width = (curve.key_size + 7) // 8
    negated = ORDERS[method] - int(s, 16)
    data = int(r, 16).to_bytes(width, "big") + negated.to_bytes(width, "big")
    verifyAuth(_nistKey(curve, qx, qy), method, data, message)


@pytest.mark.parametrize("vector", NIST_ECDSA, ids=["P-256", "P-384", "P-521"])
@pytest.mark.parametrize("which", ["r=0", "s=0", "r=n", "s=n", "r=max", "r+n-der", "s+n-der"])
def test_ecdsaValuesOutOfRangeAreRefused(vector, which):
    """r or s of zero, equal to the group order n, or above it are refused, in raw r | s
    (methods 9 to 11) and, for r + n and s + n, which only DER can carry, in method 14."""
    method, curve, message, qx, qy, r, s = vector
    key = _nistKey(curve, qx, qy)
    width = (curve.key_size + 7) // 8
    n = ORDERS[method]
    r, s = int(r, 16), int(s, 16)
    if which.endswith("-der"):
        if which.startswith("r"):
            r += n
        else:
            s += n
        digest = {32: SHA256, 48: SHA384, 66: SHA512}[width]
        identifier = {
            SHA256: RFC7427_ECDSA_SHA256,
            SHA384: RFC7427_ECDSA_SHA384,
            SHA512: RFC7427_ECDSA_SHA512,
        }[digest]
        with pytest.raises(SignatureError):
            verifyAuth(key, DIGITAL, authData(identifier, encode_dss_signature(r, s)), message)
        return
    r, s = {
        "r=0": (0, s),
        "s=0": (r, 0),
        "r=n": (n, s),
        "s=n": (r, n),
        "r=max": ((1 << (8 * width)) - 1, s),
    }[which]
    data = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    with pytest.raises(SignatureError):
        verifyAuth(key, method, data, message)


@pytest.mark.parametrize("length", [0, 1, 63, 65, 96, 128])
def test_rawEcdsaOfTheWrongLengthIsRefused(length):
    """Method 9 takes exactly 64 octets; a truncated, padded or other-curve-sized r | s is
    refused before any arithmetic."""
    data = signAuth(P256_KEY, AuthMethod.ECDSA_SHA256_P256, OCTETS, None)
    wrong = (data * 3)[:length]
    with pytest.raises(SignatureError, match="must be 64 octets"):
        verifyAuth(P256_KEY.public_key(), AuthMethod.ECDSA_SHA256_P256, wrong, OCTETS)


def test_keyOnAnotherCurveOfTheSameSizeIsRefused():
    """Method 9 means P-256: a secp256k1 key's perfectly valid SHA-256 signature, which has
    the same 32-octet r and s, is still refused."""
    k1 = ec.generate_private_key(ec.SECP256K1())
    r, s = decode_dss_signature(k1.sign(OCTETS, ec.ECDSA(hashes.SHA256())))
    data = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    with pytest.raises(SignatureError, match="SECP256R1|secp256r1"):
        verifyAuth(k1.public_key(), AuthMethod.ECDSA_SHA256_P256, data, OCTETS)
    with pytest.raises(SignatureError):
        verifyAuth(
            k1.public_key(),
            DIGITAL,
            authData(RFC7427_ECDSA_SHA256, encode_dss_signature(r, s)),
            OCTETS,
        )


def test_derSignatureWhereRawIsExpectedIsRefused():
    """A DER-encoded ECDSA signature (the method 14 form) is not method 9 data."""
    der = P256_KEY.sign(OCTETS, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(SignatureError):
        verifyAuth(P256_KEY.public_key(), AuthMethod.ECDSA_SHA256_P256, der, OCTETS)


def test_rawSignatureWhereDerIsExpectedIsRefused():
    """A raw r | s (the method 9 form) after an ecdsa-with-SHA256 identifier is refused."""
    raw = signAuth(P256_KEY, AuthMethod.ECDSA_SHA256_P256, OCTETS, None)
    with pytest.raises(SignatureError):
        verifyAuth(P256_KEY.public_key(), DIGITAL, authData(RFC7427_ECDSA_SHA256, raw), OCTETS)


def test_derWithTrailingDataIsRefused():
    """A valid DER ECDSA signature followed by one more octet is refused."""
    data = signAuth(P256_KEY, DIGITAL, OCTETS, SHA256) + b"\x00"
    with pytest.raises(SignatureError):
        verifyAuth(P256_KEY.public_key(), DIGITAL, data, OCTETS)


@pytest.mark.parametrize(
    "key, method",
    [
        (P384_KEY, AuthMethod.ECDSA_SHA256_P256),
        (P256_KEY, AuthMethod.ECDSA_SHA384_P384),
        (P256_KEY, AuthMethod.ECDSA_SHA512_P521),
        (RSA_KEY, AuthMethod.ECDSA_SHA256_P256),
    ],
)
def test_rfc4754KeyMustBeOnTheMethodsCurve(key, method):
    """Methods 9 to 11 fix the curve: a signature made with a key on another curve (or an
    RSA key) is refused whatever the data."""
    width = {9: 32, 10: 48, 11: 66}[int(method)]
    r, s = decode_dss_signature(P256_KEY.sign(OCTETS, ec.ECDSA(hashes.SHA256())))
    data = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    with pytest.raises(SignatureError):
        verifyAuth(key.public_key(), method, data, OCTETS)


# -- adversarial: method 14 framing -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00" + b"\x30" * 20,
        bytes([len(RFC7427_ECDSA_SHA256) + 1]) + RFC7427_ECDSA_SHA256,
        bytes([255]) + RFC7427_ECDSA_SHA256 + b"\x01" * 30,
        bytes([len(RFC7427_ECDSA_SHA256)]) + RFC7427_ECDSA_SHA256,
    ],
    ids=[
        "empty",
        "zero-length",
        "zero-length-then-data",
        "one-beyond",
        "far-beyond",
        "no-signature",
    ],
)
def test_malformedDigitalSignatureFramingIsRefused(data):
    """An empty payload, a zero or overlong AlgorithmIdentifier length, or no signature
    after the identifier is a SignatureError."""
    with pytest.raises(SignatureError):
        verifyAuth(P256_KEY.public_key(), DIGITAL, data, OCTETS)


@pytest.mark.parametrize(
    "identifier",
    [
        bytes.fromhex("300d06092a864886f70d0101040500"),  # md5WithRSAEncryption
        bytes.fromhex("300d06092a864886f70d01010e0500"),  # sha224WithRSAEncryption
        bytes.fromhex("300a06082a8648ce3d040301"),  # ecdsa-with-SHA224
        bytes.fromhex("300b0609608648016503040310"),  # id-ml-dsa-... (not supported)
        bytes.fromhex("300d06092a864886f70d01010b0501"),  # NULL with a content octet
        RFC7427_SHA256_WITH_RSA + b"\x00",  # trailing octet inside the identifier
    ],
)
def test_unknownAlgorithmIdentifierIsRefused(identifier):
    """Anything but the listed identifiers (an unknown or unsupported OID, odd parameters,
    an extra octet) is refused before the key is touched."""
    signature = RSA_KEY.sign(OCTETS, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(SignatureError, match="AlgorithmIdentifier"):
        verifyAuth(RSA_KEY.public_key(), DIGITAL, authData(identifier, signature), OCTETS)


@pytest.mark.parametrize(
    "signer, identifier, verifierKey",
    [
        (P256_KEY, RFC7427_ECDSA_SHA256, RSA_KEY),  # RSA key + ECDSA identifier
        (RSA_KEY, RFC7427_SHA256_WITH_RSA, P256_KEY),  # ECDSA key + RSA identifier
        (RSA_KEY, RFC7427_PSS_SHA256, ED25519_KEY),
        (ED25519_KEY, RFC8420_ED25519, P256_KEY),
        (ED25519_KEY, RFC8420_ED448, ED25519_KEY),
        (ED448_KEY, RFC8420_ED25519, ED448_KEY),
    ],
)
def test_keyTypeMustMatchTheAlgorithmIdentifier(signer, identifier, verifierKey):
    """The identifier's family must be the key's: an ECDSA identifier with an RSA key (and
    every other mismatch) is refused."""
    _, signature = splitAuthData(signAuth(signer, DIGITAL, OCTETS, chooseHash([2, 5], signer)))
    with pytest.raises(SignatureError):
        verifyAuth(verifierKey.public_key(), DIGITAL, authData(identifier, signature), OCTETS)


def _pssIdentifier(hashOid: str, mgfHashOid: str, salt: int) -> bytes:
    def tlv(tag, body):
        return bytes([tag, len(body)]) + body

    oid = {"256": "608648016503040201", "384": "608648016503040202"}
    hashId = tlv(0x30, tlv(0x06, bytes.fromhex(oid[hashOid])) + b"\x05\x00")
    mgfHashId = tlv(0x30, tlv(0x06, bytes.fromhex(oid[mgfHashOid])) + b"\x05\x00")
    mgf = tlv(0x30, tlv(0x06, bytes.fromhex("2a864886f70d010108")) + mgfHashId)
    params = tlv(0x30, tlv(0xA0, hashId) + tlv(0xA1, mgf) + tlv(0xA2, tlv(0x02, bytes([salt]))))
    return tlv(0x30, tlv(0x06, bytes.fromhex("2a864886f70d01010a")) + params)


def test_pssIdentifierBuilderMatchesRfc7427():
    """Control: the test's PSS builder gives RFC 7427 A.4.3 for SHA-256/MGF1-SHA-256/32."""
    assert _pssIdentifier("256", "256", 32) == RFC7427_PSS_SHA256


@pytest.mark.parametrize(
    "hashName, mgfName, salt",
    [("256", "384", 32), ("384", "256", 48), ("256", "256", 20), ("256", "256", 64)],
)
def test_pssWithParametersOtherThanDeclaredIsRefused(hashName, mgfName, salt):
    """RSASSA-PSS whose MGF1 hash differs from the message hash, or whose salt is not the
    hash length, is refused even when the signature is valid for exactly those parameters."""
    digests = {"256": hashes.SHA256(), "384": hashes.SHA384()}
    signature = RSA_KEY.sign(
        OCTETS, padding.PSS(padding.MGF1(digests[mgfName]), salt), digests[hashName]
    )
    RSA_KEY.public_key().verify(  # the signature itself is sound
        signature, OCTETS, padding.PSS(padding.MGF1(digests[mgfName]), salt), digests[hashName]
    )
    data = authData(_pssIdentifier(hashName, mgfName, salt), signature)
    with pytest.raises(SignatureError):
        verifyAuth(RSA_KEY.public_key(), DIGITAL, data, OCTETS)


@pytest.mark.parametrize(
    "identifier, sign",
    [
        (RFC7427_SHA1_WITH_RSA, lambda: RSA_KEY.sign(OCTETS, padding.PKCS1v15(), hashes.SHA1())),
        (
            bytes.fromhex("300906072a8648ce3d0401"),  # ecdsa-with-SHA1
            lambda: P256_KEY.sign(OCTETS, ec.ECDSA(hashes.SHA1())),
        ),
    ],
)
def test_sha1IsRefusedInMethod14(identifier, sign):
    """A valid SHA-1 signature in method 14 is refused by name (RFC 8247), even if the
    caller's allowedHashes carelessly includes SHA-1."""
    key = RSA_KEY if identifier == RFC7427_SHA1_WITH_RSA else P256_KEY
    with pytest.raises(SignatureError, match="SHA-1"):
        verifyAuth(key.public_key(), DIGITAL, authData(identifier, sign()), OCTETS, [1, 2, 3, 4])


def test_hashNotAnnouncedIsRefused():
    """A method 14 hash outside allowedHashes (what we announced) is refused."""
    data = signAuth(P256_KEY, DIGITAL, OCTETS, SHA512)
    verifyAuth(P256_KEY.public_key(), DIGITAL, data, OCTETS, [SHA512])
    with pytest.raises(SignatureError, match="announced"):
        verifyAuth(P256_KEY.public_key(), DIGITAL, data, OCTETS, [SHA256, SHA384, IDENTITY])
    ed = signAuth(ED25519_KEY, DIGITAL, OCTETS, IDENTITY)
    with pytest.raises(SignatureError, match="announced"):
        verifyAuth(ED25519_KEY.public_key(), DIGITAL, ed, OCTETS, [SHA256])


@pytest.mark.parametrize(
    "key, length", [(ED25519_KEY, 63), (ED25519_KEY, 65), (ED448_KEY, 113), (ED448_KEY, 64)]
)
def test_eddsaSignatureOfTheWrongLengthIsRefused(key, length):
    """An Ed25519 signature of 63 octets (or an Ed448 one not of 114) is refused."""
    identifier, signature = splitAuthData(signAuth(key, DIGITAL, OCTETS, IDENTITY))
    wrong = (signature * 2)[:length]
    with pytest.raises(SignatureError, match="signature must be"):
        verifyAuth(key.public_key(), DIGITAL, authData(identifier, wrong), OCTETS)


def test_nonSignatureMethodIsRefused():
    """Shared Key MIC (2) and unknown methods are not verified here."""
    for method in (AuthMethod.SHARED_KEY_MIC, AuthMethod.NULL_AUTH, 200):
        with pytest.raises(SignatureError):
            verifyAuth(RSA_KEY.public_key(), method, b"\x00" * 256, OCTETS)


# -- properties -------------------------------------------------------------------------------

KEYS = [RSA_KEY, P256_KEY, P384_KEY, P521_KEY, ED25519_KEY, ED448_KEY]
METHODS = [1, 9, 10, 11, 14]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(KEYS),
    method=st.sampled_from(METHODS),
    data=st.binary(max_size=600),
)
def test_randomAuthDataOnlyEverRaisesSignatureError(key, method, data):
    """For any key and signature method, random Authentication Data is refused with a
    SignatureError and never another exception."""
    with pytest.raises(SignatureError):
        verifyAuth(key.public_key(), method, data, OCTETS)


IDENTIFIERS = [
    RFC7427_SHA256_WITH_RSA,
    RFC7427_PSS_SHA256,
    RFC7427_ECDSA_SHA256,
    RFC7427_ECDSA_SHA512,
    RFC8420_ED25519,
    RFC8420_ED448,
    RFC7427_SHA1_WITH_RSA,
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(KEYS),
    identifier=st.sampled_from(IDENTIFIERS),
    signature=st.binary(max_size=600),
    lengthDelta=st.integers(-3, 3),
)
def test_wellFramedRandomSignaturesOnlyEverRaiseSignatureError(
    key, identifier, signature, lengthDelta
):
    """Method 14 data with a real identifier (its length octet sometimes off by a few)
    and a random signature, against every key type, only ever raises SignatureError."""
    length = max(0, min(255, len(identifier) + lengthDelta))
    data = bytes([length]) + identifier + signature
    with pytest.raises(SignatureError):
        verifyAuth(key.public_key(), DIGITAL, data, OCTETS)


@settings(max_examples=60, deadline=None)
@given(octets=st.binary(max_size=300), flip=st.integers(0, 10_000))
def test_anySingleBitFlipInEcdsaAuthDataIsRefused(octets, flip):
    """A valid method 14 ECDSA AUTH with any one bit flipped (identifier or signature) is
    refused with a SignatureError."""
    data = bytearray(signAuth(P256_KEY, DIGITAL, octets, SHA256))
    data[flip % len(data)] ^= 1 << (flip % 8)
    with pytest.raises(SignatureError):
        verifyAuth(P256_KEY.public_key(), DIGITAL, bytes(data), octets)


def test_cryptographyRejectsWhatWeRejectToo():
    """Sanity for the oracle: cryptography itself refuses a DER signature carrying r + n."""
    method, curve, message, qx, qy, r, s = NIST_ECDSA[0]
    key = _nistKey(curve, qx, qy)
    forged = encode_dss_signature(int(r, 16) + ORDERS[method], int(s, 16))
    with pytest.raises(InvalidSignature):
        key.verify(forged, message, ec.ECDSA(hashes.SHA256()))
