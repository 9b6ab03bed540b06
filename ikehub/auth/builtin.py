"""
The built-in authenticators behind L{ikehub.interfaces.IAuthenticator}: pre-shared keys and
public-key signatures with certificates (RFC 7296 section 2.15, RFC 7427, RFC 4754).

Their plugin objects are in C{ikehub/plugins/builtin.py}; this module holds the work, so the
plugin module stays cheap to import.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from zope.interface import implementer

from ikehub.auth.certs import (
    MAX_CERTIFICATE_SIZE,
    MAX_INTERMEDIATES,
    REASON_MALFORMED,
    REASON_TOO_LARGE,
    CertificateError,
    requireIdentity,
    validatePeerCertificate,
)
from ikehub.auth.plugin import AuthAttempt, AuthResult
from ikehub.auth.signatures import SIGNATURE_METHODS, SignatureError, verifyAuth
from ikehub.ike.psk import DECOY_PSK
from ikehub.interfaces import IAuthenticator
from ikehub.wire.constants import AuthMethod

__all__ = ["PSKAuthenticator", "PubkeyAuthenticator", "parsePeerCertificates"]


@implementer(IAuthenticator)
class PSKAuthenticator:
    """
    The PAD entry's pre-shared key (RFC 7296 section 2.15, AUTH method 2). The same key makes
    the hub's own AUTH.

    A peer without a key to check against is verified against a decoy key all the same, so
    that every refusal costs the same work.
    """

    name = "psk"

    def authenticate(self, attempt: AuthAttempt) -> AuthResult:
        psk = getattr(attempt.entry, "psk", None)
        usable = psk is not None and attempt.method == AuthMethod.SHARED_KEY_MIC
        verified = attempt.verifyPsk(psk if usable else DECOY_PSK)
        if not usable:
            if psk is None:
                return AuthResult.refuse("the PAD entry has no pre-shared key")
            return AuthResult.refuse(
                f"the peer used AUTH method {attempt.method}, not a shared key MIC (2)"
            )
        if not verified:
            return AuthResult.refuse("AUTH payload did not verify (wrong pre-shared key?)")
        return AuthResult.accept("pre-shared key verified", sharedKey=psk)


def parsePeerCertificates(blobs) -> list[x509.Certificate]:
    """
    The DER certificates of a peer's CERT payloads, bounded before any parsing: at most the
    end entity and L{MAX_INTERMEDIATES}, each at most L{MAX_CERTIFICATE_SIZE} octets.

    @raise CertificateError: too many, too large or unparsable.
    """
    if len(blobs) > MAX_INTERMEDIATES + 1:
        raise CertificateError(REASON_TOO_LARGE, f"{len(blobs)} CERT payloads")
    certificates = []
    for blob in blobs:
        if len(blob) > MAX_CERTIFICATE_SIZE:
            raise CertificateError(REASON_TOO_LARGE, f"a CERT payload of {len(blob)} octets")
        try:
            certificates.append(x509.load_der_x509_certificate(blob))
        except ValueError as e:
            raise CertificateError(REASON_MALFORMED, str(e)) from None
    return certificates


@implementer(IAuthenticator)
class PubkeyAuthenticator:
    """
    A signature by the key of a certificate that chains to one of the hub's CAs, is not
    revoked, and names the identity the peer claims (RFC 4945 section 3.1).

    @param trust: the L{ikehub.auth.certs.TrustStore}.
    """

    name = "pubkey"

    #: Validated chains remembered, at most; a full cache is emptied, not scanned.
    CACHE_LIMIT = 8192

    def __init__(self, trust) -> None:
        self.trust = trust
        #: (CERT payload bytes, ID type, ID data) -> (ValidatedPeer, not before, not after,
        #: anchor name): a device reconnecting with the same chain skips path building,
        #: revocation and name checks, which cost more than the handshake's own crypto. The
        #: trust store and its CRLs are fixed for the process, so a chain valid once stays
        #: valid within the window of its certificates. The AUTH signature is always checked.
        self._validated: dict[tuple, tuple] = {}

    def authenticate(self, attempt: AuthAttempt) -> AuthResult:
        if attempt.method not in SIGNATURE_METHODS:
            return AuthResult.refuse(f"the peer used AUTH method {attempt.method}, not a signature")
        if not attempt.certificates:
            return AuthResult.refuse("the peer sent no certificate (CERT payload)")
        identity = attempt.identity
        key = (tuple(attempt.certificates), identity.idType, identity.data)
        cached = self._validated.get(key)
        if cached is not None and cached[1] <= attempt.now <= cached[2]:
            validated, anchor = cached[0], cached[3]
        else:
            try:
                validated = self._validate(attempt)
            except CertificateError as e:
                return AuthResult.refuse(f"certificate refused: {e.reason}")
            anchor = validated.chain[-1].subject.rfc4514_string()
            notBefore = max(c.not_valid_before_utc for c in validated.chain).timestamp()
            notAfter = min(c.not_valid_after_utc for c in validated.chain).timestamp()
            if len(self._validated) >= self.CACHE_LIMIT:
                self._validated.clear()
            self._validated[key] = (validated, notBefore, notAfter, anchor)
        try:
            verifyAuth(validated.publicKey, attempt.method, attempt.authData, attempt.octets)
        except SignatureError as e:
            return AuthResult.refuse(f"signature refused: {e.reason}")
        return AuthResult.accept(f"certificate chain to {anchor!r} and signature verified")

    def _validate(self, attempt: AuthAttempt):
        endEntity, *intermediates = parsePeerCertificates(attempt.certificates)
        when = datetime.datetime.fromtimestamp(attempt.now, datetime.UTC)
        validated = validatePeerCertificate(self.trust, endEntity, intermediates, when)
        identity = attempt.identity
        requireIdentity(validated.endEntity, identity.idType, identity.data)
        return validated
