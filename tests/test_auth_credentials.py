"""
Loading the hub's certificate chain, private key, CAs and CRLs from files.

Files are written into a temporary directory with cryptography's serializers in every
format an operator may have (PEM/DER, PKCS#8/PKCS#1/SEC1, encrypted or not); keys made by
strongSwan's `pki --gen` are read too when the tool is installed. Every failure must name
the file and say what is wrong.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
    x25519,
)
from cryptography.x509.oid import NameOID

from ikehub.auth.credentials import (
    CredentialError,
    loadCAs,
    loadCertificateChain,
    loadCRLs,
    loadPrivateKey,
)

PKI = Path(__file__).parent / "data" / "pki"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuerKey, ca: bool) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuerKey, hashes.SHA256())
    )


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = _cert("root", ROOT_KEY, "root", ROOT_KEY, ca=True)
INTER_KEY = ec.generate_private_key(ec.SECP256R1())
INTER = _cert("intermediate", INTER_KEY, "root", ROOT_KEY, ca=True)
LEAF_KEY = ec.generate_private_key(ec.SECP256R1())
LEAF = _cert("hub.example.org", LEAF_KEY, "intermediate", INTER_KEY, ca=False)
RSA_KEY = rsa.generate_private_key(65537, 2048)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(PEM) for c in certs)


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def _crl(issuerKey, issuer: str, serials: list[int]) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(issuer))
        .last_update(NOW)
        .next_update(NOW + datetime.timedelta(days=7))
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW).build()
        )
    return builder.sign(issuerKey, hashes.SHA256())


def _fails(call, path, *fragments: str) -> CredentialError:
    """The call raises CredentialError naming C{path} and containing each fragment."""
    with pytest.raises(CredentialError) as caught:
        call()
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


# -- certificate chain ------------------------------------------------------------------------


def test_chainIsReadEndEntityFirst(tmp_path):
    """A PEM file with the end entity then its issuers gives them in that order."""
    path = _write(tmp_path / "hub.pem", _pem(LEAF, INTER, ROOT))
    assert loadCertificateChain(path) == [LEAF, INTER, ROOT]
    assert loadCertificateChain(str(path)) == [LEAF, INTER, ROOT]


def test_singleDerCertificateIsAChain(tmp_path):
    """One DER certificate is a chain of one."""
    path = _write(tmp_path / "hub.der", LEAF.public_bytes(DER))
    assert loadCertificateChain(path) == [LEAF]


def test_chainOutOfOrderIsRefused(tmp_path):
    """Issuer before subject (or a foreign certificate in the middle) names the culprits
    and says how to order the file."""
    path = _write(tmp_path / "hub.pem", _pem(INTER, LEAF))
    _fails(lambda: loadCertificateChain(path), path, "end entity first", "intermediate")
    path = _write(tmp_path / "mixed.pem", _pem(LEAF, ROOT))
    _fails(lambda: loadCertificateChain(path), path, "not issued by certificate 2")


def test_chainWithForgedIssuerSignatureIsRefused(tmp_path):
    """Names alone are not enough: the issuer's key must have signed the certificate."""
    impostor = _cert("intermediate", LEAF_KEY, "root", ROOT_KEY, ca=True)
    path = _write(tmp_path / "hub.pem", _pem(LEAF, impostor))
    _fails(lambda: loadCertificateChain(path), path, "not issued by")


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "not a valid X.509 certificate"),
        (b"hello", "not a valid X.509 certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no CERTIFICATE"),
    ],
)
def test_unreadableChainNamesTheProblem(tmp_path, content, fragment):
    """An empty, garbage, corrupt or wrong-kind PEM file is a CredentialError saying so."""
    path = _write(tmp_path / "hub.pem", content)
    _fails(lambda: loadCertificateChain(path), path, fragment)


def test_missingOrDirectoryChainFile(tmp_path):
    """A path that does not exist, or is a directory, is reported as such."""
    _fails(lambda: loadCertificateChain(tmp_path / "nope.pem"), tmp_path / "nope.pem", "no such")
    _fails(lambda: loadCertificateChain(tmp_path), tmp_path, "directory")


# -- private keys -----------------------------------------------------------------------------

PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
NO_ENCRYPTION = serialization.NoEncryption()

KEY_FILES = [
    ("rsa-pkcs8.pem", RSA_KEY, PEM, PKCS8),
    ("rsa-pkcs1.pem", RSA_KEY, PEM, TRADITIONAL),
    ("rsa-pkcs8.der", RSA_KEY, DER, PKCS8),
    ("rsa-pkcs1.der", RSA_KEY, DER, TRADITIONAL),
    ("ec-pkcs8.pem", LEAF_KEY, PEM, PKCS8),
    ("ec-sec1.pem", LEAF_KEY, PEM, TRADITIONAL),
    ("ec-pkcs8.der", LEAF_KEY, DER, PKCS8),
    ("ec-sec1.der", LEAF_KEY, DER, TRADITIONAL),
    ("ed25519.pem", ed25519.Ed25519PrivateKey.generate(), PEM, PKCS8),
    ("ed448.der", ed448.Ed448PrivateKey.generate(), DER, PKCS8),
]


def _sameKey(a, b) -> bool:
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_key().public_bytes(DER, raw) == b.public_key().public_bytes(DER, raw)


@pytest.mark.parametrize("name, key, encoding, form", KEY_FILES, ids=[k[0] for k in KEY_FILES])
def test_privateKeyInEveryFormatLoads(tmp_path, name, key, encoding, form):
    """PEM and DER, PKCS#8, PKCS#1 (RSA) and SEC1 (EC), RSA/ECDSA/Ed25519/Ed448 all load."""
    path = _write(tmp_path / name, key.private_bytes(encoding, form, NO_ENCRYPTION))
    assert _sameKey(loadPrivateKey(path), key)


@pytest.mark.parametrize("form", [PKCS8, TRADITIONAL])
@pytest.mark.parametrize("password", ["s3cret", b"s3cret"])
def test_encryptedPrivateKeyLoadsWithItsPassword(tmp_path, form, password):
    """An encrypted PKCS#8 or traditional PEM key loads given the password (str or bytes)."""
    data = RSA_KEY.private_bytes(PEM, form, serialization.BestAvailableEncryption(b"s3cret"))
    path = _write(tmp_path / "key.pem", data)
    assert _sameKey(loadPrivateKey(path, password), RSA_KEY)


def test_encryptedPrivateKeyWithoutOrWithWrongPassword(tmp_path):
    """No password says one is needed; a wrong one says so; neither leaks key material."""
    data = LEAF_KEY.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"right"))
    path = _write(tmp_path / "key.pem", data)
    _fails(lambda: loadPrivateKey(path), path, "password is needed")
    _fails(lambda: loadPrivateKey(path, "wrong"), path, "wrong password")


def test_passwordForUnencryptedKeyIsReported(tmp_path):
    """A password given for a key that is not encrypted is a configuration mistake."""
    path = _write(tmp_path / "key.pem", LEAF_KEY.private_bytes(PEM, PKCS8, NO_ENCRYPTION))
    _fails(lambda: loadPrivateKey(path, "pw"), path, "not encrypted")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o610])
def test_privateKeyReadableByOthersIsRefused(tmp_path, mode):
    """A key file with any group or other permission bit is refused, with the mode and the
    chmod that fixes it, before the key is even parsed."""
    path = _write(tmp_path / "key.pem", b"not even a key", mode)
    _fails(lambda: loadPrivateKey(path), path, f"{mode:04o}", "chmod 600")


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_privateKeyOwnerOnlyIsAccepted(tmp_path, mode):
    """Owner-only modes are fine."""
    path = _write(tmp_path / "key.pem", LEAF_KEY.private_bytes(PEM, PKCS8, NO_ENCRYPTION), mode)
    assert _sameKey(loadPrivateKey(path), LEAF_KEY)


@pytest.mark.parametrize(
    "key",
    [x25519.X25519PrivateKey.generate(), dsa.generate_private_key(2048)],
    ids=["x25519", "dsa"],
)
def test_keyThatCannotSignAuthIsRefused(tmp_path, key):
    """A key type that cannot make an IKE AUTH signature is refused by name."""
    path = _write(tmp_path / "key.pem", key.private_bytes(PEM, PKCS8, NO_ENCRYPTION))
    _fails(lambda: loadPrivateKey(path), path, "cannot sign IKE AUTH")


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_unparsablePrivateKeyIsReported(tmp_path, content):
    """Garbage, an empty file or a corrupt PEM block is a CredentialError naming the file."""
    path = _write(tmp_path / "key.pem", content)
    _fails(lambda: loadPrivateKey(path), path, "not a valid private key")


def test_missingPrivateKey(tmp_path):
    """A missing key file says so."""
    _fails(lambda: loadPrivateKey(tmp_path / "nope.key"), tmp_path / "nope.key", "no such file")


@pytest.mark.skipif(shutil.which("pki") is None, reason="strongSwan's pki is not installed")
@pytest.mark.parametrize(
    "keyType, size, outform",
    [
        ("rsa", "2048", "pem"),
        ("rsa", "2048", "der"),
        ("ecdsa", "256", "pem"),
        ("ecdsa", "384", "der"),
        ("ed25519", None, "pem"),
        ("ed448", None, "der"),
    ],
)
def test_keysMadeByStrongSwanPkiLoad(tmp_path, keyType, size, outform):
    """Whatever `pki --gen` writes (PKCS#1 RSA, SEC1 EC, PKCS#8 EdDSA; PEM or DER) loads,
    and is the key `pki --pub` derives the same public key from."""
    command = ["pki", "--gen", "--type", keyType, "--outform", outform]
    if size:
        command += ["--size", size]
    path = _write(
        tmp_path / f"key.{outform}", subprocess.run(command, check=True, capture_output=True).stdout
    )
    key = loadPrivateKey(path)
    pub = subprocess.run(
        ["pki", "--pub", "--in", str(path), "--type", "priv", "--outform", "der"],
        check=True,
        capture_output=True,
    ).stdout
    assert (
        key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pub
    )


# -- CAs --------------------------------------------------------------------------------------


def test_casFromADirectoryInNameOrder(tmp_path):
    """A directory's .pem/.crt/.cer/.der files are read in name order, other files skipped,
    and a CA present twice is listed once."""
    otherKey = ec.generate_private_key(ec.SECP256R1())
    other = _cert("other root", otherKey, "other root", otherKey, ca=True)
    _write(tmp_path / "b.crt", _pem(INTER, ROOT), 0o644)
    _write(tmp_path / "a.der", other.public_bytes(DER), 0o644)
    _write(tmp_path / "c.pem", _pem(ROOT), 0o644)
    _write(tmp_path / "README.txt", b"not a certificate", 0o644)
    _write(tmp_path / "revoked.crl", _crl(ROOT_KEY, "root", [1]).public_bytes(PEM), 0o644)
    assert loadCAs(tmp_path) == [other, INTER, ROOT]
    assert loadCAs(str(tmp_path)) == [other, INTER, ROOT]


def test_casFromAListOfFiles(tmp_path):
    """A list of files (or a single file) is read in the order given."""
    a = _write(tmp_path / "a.pem", _pem(ROOT), 0o644)
    b = _write(tmp_path / "b.pem", _pem(INTER), 0o644)
    assert loadCAs([b, a]) == [INTER, ROOT]
    assert loadCAs(a) == [ROOT]
    assert loadCAs(PKI / "root.pem")[0].subject.rfc4514_string().endswith("C=CH")


def test_endEntityAmongCAsIsRefused(tmp_path):
    """An end-entity certificate in the CA set names the file and the certificate."""
    path = _write(tmp_path / "cas.pem", _pem(ROOT, LEAF), 0o644)
    _fails(lambda: loadCAs(path), path, "hub.example.org", "not a CA certificate")


def test_noCAsIsAnError(tmp_path):
    """An empty directory, or an empty list, gives no trust at all: refused."""
    _fails(lambda: loadCAs(tmp_path), tmp_path, "no CA certificates")
    with pytest.raises(CredentialError) as caught:
        loadCAs([])
    assert str(caught.value) == "no CA certificates were given"
    assert caught.value.path is None


def test_corruptCaFileIsNamed(tmp_path):
    """A corrupt file in a CA directory names that file."""
    path = _write(
        tmp_path / "bad.pem", b"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----"
    )
    _fails(lambda: loadCAs(tmp_path), path, "not a valid X.509 certificate")


# -- CRLs -------------------------------------------------------------------------------------


def test_crlsFromPemDerAndDirectories(tmp_path):
    """A PEM file with two CRLs, a DER CRL and a directory of them all load; strongSwan's
    `pki --signcrl` output loads with its revoked serial."""
    first, second = _crl(ROOT_KEY, "root", [1, 2]), _crl(INTER_KEY, "intermediate", [3])
    both = _write(tmp_path / "both.pem", first.public_bytes(PEM) + second.public_bytes(PEM), 0o644)
    der = _write(tmp_path / "one.crl", first.public_bytes(DER), 0o644)
    _write(tmp_path / "notes.txt", b"ignored", 0o644)
    assert loadCRLs([both]) == [first, second]
    assert loadCRLs(der) == [first]
    assert loadCRLs(tmp_path) == [first, second, first]
    (strongSwan,) = loadCRLs(PKI / "intermediate.crl")
    assert strongSwan.get_revoked_certificate_by_serial_number(0x11) is not None


def test_noCrlsIsFine():
    """CRLs are optional: an empty list loads as none."""
    assert loadCRLs([]) == []


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"junk", "not a valid CRL"),
        (b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "not a valid CRL"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no X509 CRL"),
    ],
)
def test_badCrlFileIsNamed(tmp_path, content, fragment):
    """Garbage, a corrupt CRL or a certificate where a CRL belongs names the file."""
    path = _write(tmp_path / "bad.crl", content, 0o644)
    _fails(lambda: loadCRLs([path]), path, fragment)
