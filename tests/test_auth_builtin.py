"""
The built-in authenticators: PSK, and pubkey with its cache of validated chains (a chain is
validated once per process while its certificates are valid; the AUTH signature never is
cached).
"""


from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography import x509

from ikehub.auth import builtin
from ikehub.auth.builtin import PSKAuthenticator, PubkeyAuthenticator
from ikehub.auth.certs import TrustStore
from ikehub.auth.plugin import AuthAttempt
from ikehub.auth.signatures import signAuth
from ikehub.wire.constants import AuthMethod, HashAlgorithm
from ikehub.wire.identity import Identity
from tests.pki import DAY, NOW, dn, issue

CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA = issue(dn("Test CA"), CA_KEY, dn("Test CA"), CA_KEY, ca=True)
ALICE_KEY = ec.generate_private_key(ec.SECP256R1())
ALICE = issue(
    dn("alice"), ALICE_KEY, dn("Test CA"), CA_KEY, san=[x509.RFC822Name("alice@example.com")]
)
DER = ALICE.public_bytes(serialization.Encoding.DER)
OCTETS = b"signed octets of this IKE SA"


def attempt(identity="alice@example.com", key=ALICE_KEY, now=NOW, octets=OCTETS):
    data = signAuth(key, AuthMethod.DIGITAL_SIGNATURE, octets, HashAlgorithm.SHA2_256)
    return AuthAttempt(
        Identity.fromString(identity),
        "192.0.2.11",
        None,
        AuthMethod.DIGITAL_SIGNATURE,
        data,
        OCTETS,
        (DER,),
        now.timestamp(),
    )


def counting(monkeypatch):
    calls = []
    real = builtin.validatePeerCertificate

    def validate(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(builtin, "validatePeerCertificate", validate)
    return calls


def test_chainValidatedOnceThenSignatureStillChecked(monkeypatch):
    calls = counting(monkeypatch)
    authenticator = PubkeyAuthenticator(TrustStore([CA]))
    assert authenticator.authenticate(attempt()).accepted
    assert authenticator.authenticate(attempt()).accepted
    assert len(calls) == 1
    forged = authenticator.authenticate(attempt(key=ec.generate_private_key(ec.SECP256R1())))
    assert not forged.accepted and "signature refused" in forged.reason
    other = authenticator.authenticate(attempt(octets=b"another exchange"))
    assert not other.accepted


def test_cacheIsPerIdentity(monkeypatch):
    authenticator = PubkeyAuthenticator(TrustStore([CA]))
    assert authenticator.authenticate(attempt()).accepted
    refused = authenticator.authenticate(attempt(identity="bob@example.com"))
    assert not refused.accepted and "identity not in certificate" in refused.reason


def test_cachedChainIsRevalidatedOutsideItsValidity(monkeypatch):
    calls = counting(monkeypatch)
    authenticator = PubkeyAuthenticator(TrustStore([CA]))
    assert authenticator.authenticate(attempt()).accepted
    later = NOW + 400 * DAY  # past the certificate's notAfter
    expired = authenticator.authenticate(attempt(now=later))
    assert not expired.accepted and "expired" in expired.reason
    assert len(calls) == 2


def test_untrustedChainIsNeverCached(monkeypatch):
    calls = counting(monkeypatch)
    authenticator = PubkeyAuthenticator(
        TrustStore([issue(dn("Other"), CA_KEY, dn("Other"), CA_KEY, ca=True, serial=7)])
    )
    for _ in range(2):
        refused = authenticator.authenticate(attempt())
        assert not refused.accepted
    assert len(calls) == 2


def test_pskRefusesWrongMethodAndKey():
    psk = b"k" * 20

    class Entry:
        pass

    entry = Entry()
    entry.psk = psk
    mac = lambda key: b"mac" + key  # noqa: E731
    good = AuthAttempt(
        Identity.fromString("a@example.com"), "", entry, 2, mac(psk), b"", (), 0.0, mac
    )
    assert PSKAuthenticator().authenticate(good).accepted
    wrong = AuthAttempt(
        Identity.fromString("a@example.com"), "", entry, 2, mac(b"x" * 20), b"", (), 0.0, mac
    )
    assert not PSKAuthenticator().authenticate(wrong).accepted
    method = AuthAttempt(
        Identity.fromString("a@example.com"), "", entry, 14, mac(psk), b"", (), 0.0, mac
    )
    assert not PSKAuthenticator().authenticate(method).accepted
