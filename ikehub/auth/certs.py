"""
Peer certificates: is the chain trusted, is it revoked, and does it name the IKE identity.

Path building and validation are C{cryptography.x509.verification}'s, with a client-style
verifier because an IKE peer is not a TLS server: there is no host name to check while
building the path, the identity binding is L{identityMatches}' job afterwards. The
library's web-PKI extension policy is kept except where IKE practice differs:

  - extendedKeyUsage may be absent, or must contain id-kp-ipsecIKE, serverAuth,
    clientAuth or anyExtendedKeyUsage (strongSwan and Windows issue gateway certificates
    with serverAuth and ipsecIKE; RFC 4945 section 5.1.3.12 also accepts anyEKU);
  - keyUsage, when present on the end entity, must include digitalSignature;
  - the end entity needs neither a subjectAltName (a DN identity is enough) nor an
    authorityKeyIdentifier.

Signature algorithms, key sizes of CAs (RSA at least 2048 bits), basicConstraints, path
length constraints and validity periods are enforced by the library as it does for the
web PKI; that also means a CA must sign with RSA or ECDSA (P-256/384/521), not EdDSA.

The library does not check revocation, so CRLs from the trust store are checked here, by
hand, after the path is built. Nothing is ever fetched from the network.

Every refusal is a L{CertificateError} whose C{reason} is one of the C{REASON_*} strings,
short enough for the PAD's decision record.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import service_identity
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from service_identity.cryptography import verify_certificate_ip_address

from ikehub.wire.constants import IDType
from ikehub.wire.identity import Identity

__all__ = [
    "ALLOWED_EXTENDED_KEY_USAGES",
    "MAX_CERTIFICATE_SIZE",
    "MAX_INTERMEDIATES",
    "REASON_EXPIRED",
    "REASON_IDENTITY",
    "REASON_MALFORMED",
    "REASON_NOT_YET_VALID",
    "REASON_PATH_LENGTH",
    "REASON_REVOKED",
    "REASON_TOO_LARGE",
    "REASON_UNSUPPORTED_KEY",
    "REASON_UNTRUSTED",
    "REASON_WRONG_KEY_USAGE",
    "CertificateError",
    "TrustStore",
    "ValidatedPeer",
    "caForCertReq",
    "certReqHashes",
    "identityMatches",
    "requireIdentity",
    "validatePeerCertificate",
]

REASON_UNTRUSTED = "untrusted CA"
REASON_EXPIRED = "expired"
REASON_NOT_YET_VALID = "not yet valid"
REASON_REVOKED = "revoked"
REASON_WRONG_KEY_USAGE = "wrong key usage"
REASON_IDENTITY = "identity not in certificate"
REASON_PATH_LENGTH = "path length constraint violated"
REASON_TOO_LARGE = "certificate chain too large"
REASON_MALFORMED = "malformed certificate"
REASON_UNSUPPORTED_KEY = "unsupported or weak key"

#: How many intermediate certificates a peer may send; more is refused before any work.
MAX_INTERMEDIATES = 4
#: The largest certificate (DER octets) a peer may send.
MAX_CERTIFICATE_SIZE = 16 * 1024

ID_KP_IPSEC_IKE = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.17")
#: An extendedKeyUsage extension, when present, must name one of these.
ALLOWED_EXTENDED_KEY_USAGES = frozenset(
    {
        ID_KP_IPSEC_IKE,
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    }
)

_SHA1_LENGTH = 20
_MIN_RSA_BITS = 2048
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class CertificateError(Exception):
    """
    A certificate or chain that must not authenticate a peer.

    @ivar reason: one of the C{REASON_*} strings, for the PAD's decision record.
    @ivar detail: what exactly went wrong, for the log; may name library internals.
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TrustStore:
    """
    The CAs the hub trusts for peer certificates and the CRLs it holds for them.

    Immutable once built: the C{cryptography} store, the CERTREQ hashes and the CRLs by
    issuer are computed here once, not per handshake. The only thing that changes later is
    a memo of CRL signature checks, so each CRL is verified once per issuer.
    """

    __slots__ = ("_byKeyHash", "_crlVerdicts", "_crlsByIssuer", "_store", "cas", "crls")

    def __init__(
        self,
        cas: Iterable[x509.Certificate],
        crls: Iterable[x509.CertificateRevocationList] = (),
    ) -> None:
        self.cas: tuple[x509.Certificate, ...] = tuple(cas)
        self.crls: tuple[x509.CertificateRevocationList, ...] = tuple(crls)
        if not self.cas:
            raise CertificateError(REASON_UNTRUSTED, "the trust store has no CA certificates")
        for ca in self.cas:
            if not isinstance(ca, x509.Certificate):
                raise TypeError(f"a trusted CA must be an x509.Certificate, not {ca!r}")
        for crl in self.crls:
            if not isinstance(crl, x509.CertificateRevocationList):
                raise TypeError(f"a CRL must be an x509.CertificateRevocationList, not {crl!r}")
        self._store = Store(list(self.cas))
        self._byKeyHash: dict[bytes, x509.Certificate] = {}
        for ca in self.cas:
            self._byKeyHash.setdefault(_spkiSha1(ca), ca)
        self._crlsByIssuer: dict[bytes, list[tuple[int, x509.CertificateRevocationList]]] = {}
        for index, crl in enumerate(self.crls):
            self._crlsByIssuer.setdefault(crl.issuer.public_bytes(), []).append((index, crl))
        # (CRL index, issuer certificate) -> signature and issuer usage check result.
        self._crlVerdicts: dict[tuple[int, x509.Certificate], bool] = {}

    def __repr__(self) -> str:
        return f"<TrustStore {len(self.cas)} CA(s), {len(self.crls)} CRL(s)>"


@dataclass(frozen=True, slots=True)
class ValidatedPeer:
    """
    A peer certificate that chains to a trusted CA and is not revoked.

    @ivar endEntity: the peer's certificate; its key verifies the AUTH payload.
    @ivar chain: the validated path, end entity first, trust anchor last.
    """

    endEntity: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def publicKey(self) -> object:
        """The key to check the peer's AUTH payload with."""
        return self.endEntity.public_key()

    @property
    def trustAnchor(self) -> x509.Certificate:
        """The trusted CA the chain ends in."""
        return self.chain[-1]


# -- CERTREQ ----------------------------------------------------------------------------------


def _spkiSha1(cert: x509.Certificate) -> bytes:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA1())
    digest.update(spki)
    return digest.finalize()


def certReqHashes(store: TrustStore) -> bytes:
    """
    The Certification Authority data of a CERTREQ payload (encoding 4, X.509 Certificate -
    Signature): the SHA-1 hash of each trusted CA's SubjectPublicKeyInfo, concatenated
    (RFC 7296 section 3.7), each key once.
    """
    return b"".join(store._byKeyHash)


def caForCertReq(store: TrustStore, data: bytes) -> list[x509.Certificate]:
    """
    The CAs of C{store} that a peer's CERTREQ names, in the peer's order: what a chain we
    send should end in. Hashes of CAs we do not hold are skipped (RFC 7296 section 3.7
    lets a peer list CAs we never heard of).

    @raise CertificateError: if C{data} is not a whole number of SHA-1 hashes.
    """
    data = bytes(data)
    if len(data) % _SHA1_LENGTH:
        raise CertificateError(
            REASON_MALFORMED,
            f"CERTREQ data of {len(data)} octets is not a whole number of SHA-1 hashes",
        )
    found: list[x509.Certificate] = []
    for offset in range(0, len(data), _SHA1_LENGTH):
        ca = store._byKeyHash.get(data[offset : offset + _SHA1_LENGTH])
        if ca is not None and ca not in found:
            found.append(ca)
    return found


# -- path validation --------------------------------------------------------------------------


def validatePeerCertificate(
    store: TrustStore,
    endEntity: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    now: datetime.datetime,
) -> ValidatedPeer:
    """
    Build and check the path from a peer's certificate to a CA of C{store} at time C{now},
    then check every certificate on it against the store's CRLs.

    @param intermediates: the other certificates the peer sent, in any order; at most
        L{MAX_INTERMEDIATES}, each at most L{MAX_CERTIFICATE_SIZE} octets of DER.
    @param now: the validation time; a naive datetime is taken as UTC.

    @raise CertificateError: with the reason the PAD records.
    """
    intermediates = list(intermediates)
    if len(intermediates) > MAX_INTERMEDIATES:
        raise CertificateError(
            REASON_TOO_LARGE,
            f"{len(intermediates)} intermediate certificates, at most {MAX_INTERMEDIATES}",
        )
    for cert in [endEntity, *intermediates]:
        if not isinstance(cert, x509.Certificate):
            raise CertificateError(REASON_MALFORMED, f"not a certificate: {type(cert).__name__}")
        size = len(cert.public_bytes(serialization.Encoding.DER))
        if size > MAX_CERTIFICATE_SIZE:
            raise CertificateError(
                REASON_TOO_LARGE, f"a certificate of {size} octets, at most {MAX_CERTIFICATE_SIZE}"
            )
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    try:
        chain = _buildPath(store, endEntity, intermediates, now)
        _checkEndEntityKey(chain[0])
        _checkRevocation(store, chain, now)
    except (ValueError, x509.UnsupportedGeneralNameType) as e:
        raise CertificateError(REASON_MALFORMED, str(e)) from None
    return ValidatedPeer(endEntity=chain[0], chain=chain)


def _buildPath(
    store: TrustStore,
    endEntity: x509.Certificate,
    intermediates: list[x509.Certificate],
    now: datetime.datetime,
) -> tuple[x509.Certificate, ...]:
    failures: list[str] = []
    verifier = (
        PolicyBuilder()
        .store(store._store)
        .time(now)
        .max_chain_depth(MAX_INTERMEDIATES)
        .extension_policies(ca_policy=_caPolicy(failures), ee_policy=_endEntityPolicy(failures))
        .build_client_verifier()
    )
    try:
        return tuple(verifier.verify(endEntity, intermediates).chain)
    except VerificationError as e:
        reason = _diagnose(str(e), failures, endEntity, intermediates, store, now)
        raise CertificateError(reason, str(e)) from None


def _checkEndEntityKey(cert: x509.Certificate) -> None:
    """
    The key the AUTH payload will be verified with: the library holds CA keys to the
    web-PKI sizes but not the end entity's, so the same floor is applied here.
    """
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise CertificateError(REASON_UNSUPPORTED_KEY, f"RSA key of {key.key_size} bits")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _EC_CURVES):
            raise CertificateError(REASON_UNSUPPORTED_KEY, f"ECDSA on {key.curve.name}")
    elif not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        raise CertificateError(REASON_UNSUPPORTED_KEY, f"{type(key).__name__} cannot sign AUTH")


def _extension(cert: x509.Certificate, kind: type) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _extendedKeyUsageProblem(usages: object | None) -> str | None:
    if usages is None:
        return None
    if ALLOWED_EXTENDED_KEY_USAGES.isdisjoint(usages):  # type: ignore[arg-type]
        return "extendedKeyUsage has none of ipsecIKE, serverAuth, clientAuth, anyEKU"
    return None


def _endEntityPolicy(failures: list[str]) -> ExtensionPolicy:
    def checkExtendedKeyUsage(policy, cert, usages):  # type: ignore[no-untyped-def]
        problem = _extendedKeyUsageProblem(usages)
        if problem:
            failures.append(REASON_WRONG_KEY_USAGE)
            raise ValueError(problem)

    def checkKeyUsage(policy, cert, usage):  # type: ignore[no-untyped-def]
        if usage is not None and not usage.digital_signature:
            failures.append(REASON_WRONG_KEY_USAGE)
            raise ValueError("keyUsage lacks digitalSignature")
        if usage is not None and usage.key_cert_sign:
            failures.append(REASON_WRONG_KEY_USAGE)
            raise ValueError("an end entity's keyUsage asserts keyCertSign")

    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, checkExtendedKeyUsage)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, checkKeyUsage)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)
    )


def _caPolicy(failures: list[str]) -> ExtensionPolicy:
    def checkExtendedKeyUsage(policy, cert, usages):  # type: ignore[no-untyped-def]
        problem = _extendedKeyUsageProblem(usages)
        if problem:
            failures.append(REASON_WRONG_KEY_USAGE)
            raise ValueError(problem)

    return ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, checkExtendedKeyUsage
    )


def _diagnose(
    message: str,
    failures: list[str],
    endEntity: x509.Certificate,
    intermediates: list[x509.Certificate],
    store: TrustStore,
    now: datetime.datetime,
) -> str:
    """
    The reason for a failed path, from what our policy callbacks recorded and the library's
    message; when nothing more precise is known, the chain did not reach a trusted CA.
    """
    if "not valid at validation time" in message:
        for cert in [endEntity, *_namedIssuers(endEntity, intermediates + list(store.cas))]:
            if now < cert.not_valid_before_utc:
                return REASON_NOT_YET_VALID
            if now > cert.not_valid_after_utc:
                return REASON_EXPIRED
    if failures:
        return failures[-1]
    if "path length" in message:
        return REASON_PATH_LENGTH
    return REASON_UNTRUSTED


def _namedIssuers(cert: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """The certificates of C{pool} reachable from C{cert} by issuer name, nearest first."""
    found: list[x509.Certificate] = []
    names = [cert.issuer]
    for _ in range(MAX_INTERMEDIATES + 1):
        step = [c for c in pool if c.subject in names and c not in found]
        if not step:
            break
        found.extend(step)
        names = [c.issuer for c in step]
    return found


# -- revocation -------------------------------------------------------------------------------


def _checkRevocation(
    store: TrustStore, chain: tuple[x509.Certificate, ...], now: datetime.datetime
) -> None:
    """
    Each certificate but the trust anchor against every usable CRL of its issuer: one that
    names the issuer, is signed by the issuer's key, comes from an issuer allowed to sign
    CRLs, and is current at C{now}. A certificate no usable CRL covers is accepted.
    """
    for cert, issuer in itertools.pairwise(chain):
        for index, crl in store._crlsByIssuer.get(cert.issuer.public_bytes(), ()):
            if not _crlUsable(store, index, crl, issuer, now):
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise CertificateError(
                    REASON_REVOKED, f"{_describe(cert)} is listed in a CRL of its issuer"
                )


def _crlUsable(
    store: TrustStore,
    index: int,
    crl: x509.CertificateRevocationList,
    issuer: x509.Certificate,
    now: datetime.datetime,
) -> bool:
    if now < crl.last_update_utc:
        return False
    nextUpdate = crl.next_update_utc
    if nextUpdate is not None and now > nextUpdate:
        return False
    key = (index, issuer)
    verdict = store._crlVerdicts.get(key)
    if verdict is None:
        verdict = _crlSignedBy(crl, issuer)
        store._crlVerdicts[key] = verdict
    return verdict


def _crlSignedBy(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        usage = _extension(issuer, x509.KeyUsage)
        if usage is not None and not usage.crl_sign:  # type: ignore[attr-defined]
            return False
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


def _describe(cert: x509.Certificate) -> str:
    try:
        subject = cert.subject.rfc4514_string()
    except ValueError:
        subject = "?"
    return f"certificate {subject!r} (serial {cert.serial_number:x})"


# -- identities -------------------------------------------------------------------------------


def identityMatches(cert: x509.Certificate, idType: int, data: bytes) -> bool:
    """
    Whether the IKE identity (ID payload type and data) is bound to C{cert}.

      - ID_DER_ASN1_DN: the subject, or a directoryName in subjectAltName, is the same DN:
        identical DER, or the same attributes in the same order with equal values whatever
        their ASN.1 string types (L{ikehub.wire.identity.Identity.matches}, whose C{*}
        wildcards are not honoured here: both sides are concrete names).
      - ID_FQDN: a dNSName in subjectAltName, compared case-insensitively, exactly: a
        wildcard dNSName does not stand for the names under it, as in strongSwan.
      - ID_RFC822_ADDR: an rfc822Name, local part exact, domain case-insensitive.
      - ID_IPV4_ADDR / ID_IPV6_ADDR: an iPAddress in subjectAltName, checked with
        C{service_identity.cryptography.verify_certificate_ip_address}.

    Any other type, malformed data, or a certificate whose extensions do not parse: False.
    """
    try:
        data = bytes(data)
        if not data:
            return False
        if idType == IDType.ID_DER_ASN1_DN:
            return _dnMatches(cert, data)
        if idType == IDType.ID_FQDN:
            return _fqdnMatches(cert, data)
        if idType == IDType.ID_RFC822_ADDR:
            return _emailMatches(cert, data)
        if idType in (IDType.ID_IPV4_ADDR, IDType.ID_IPV6_ADDR):
            return _addressMatches(cert, idType, data)
    except (ValueError, TypeError, UnicodeError):
        return False
    return False


def requireIdentity(cert: x509.Certificate, idType: int, data: bytes) -> None:
    """
    L{identityMatches}, for callers that record refusals.

    @raise CertificateError: with L{REASON_IDENTITY} when the identity is not bound.
    """
    if not identityMatches(cert, idType, data):
        raise CertificateError(REASON_IDENTITY, f"ID type {idType} not in {_describe(cert)}")


def _subjectAltNames(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    return _extension(cert, x509.SubjectAlternativeName)  # type: ignore[return-value]


def _dnMatches(cert: x509.Certificate, data: bytes) -> bool:
    candidates = [cert.subject]
    names = _subjectAltNames(cert)
    if names is not None:
        candidates.extend(names.get_values_for_type(x509.DirectoryName))
    received = Identity(IDType.ID_DER_ASN1_DN, data)
    for name in candidates:
        if len(name) == 0:
            continue
        der = name.public_bytes()
        if der == data:
            return True
        held = Identity(IDType.ID_DER_ASN1_DN, der)
        if not held.hasWildcards and not received.hasWildcards and received.matches(held):
            return True
    return False


def _fqdnMatches(cert: x509.Certificate, data: bytes) -> bool:
    names = _subjectAltNames(cert)
    if names is None:
        return False
    wanted = data.decode("ascii").lower()
    return any(name.lower() == wanted for name in names.get_values_for_type(x509.DNSName))


def _emailMatches(cert: x509.Certificate, data: bytes) -> bool:
    names = _subjectAltNames(cert)
    if names is None:
        return False
    local, at, domain = data.decode("ascii").rpartition("@")
    if not at or not local or not domain:
        return False
    for address in names.get_values_for_type(x509.RFC822Name):
        heldLocal, heldAt, heldDomain = address.rpartition("@")
        if heldAt and heldLocal == local and heldDomain.lower() == domain.lower():
            return True
    return False


def _addressMatches(cert: x509.Certificate, idType: int, data: bytes) -> bool:
    if idType == IDType.ID_IPV4_ADDR:
        if len(data) != 4:
            return False
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(data)
    else:
        if len(data) != 16:
            return False
        address = ipaddress.IPv6Address(data)
    try:
        verify_certificate_ip_address(cert, str(address))
    except (service_identity.VerificationError, service_identity.CertificateError):
        return False
    return True
