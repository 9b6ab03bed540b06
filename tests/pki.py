"""
Test certificates made with cryptography: names, issuing with the extensions a CA sets by
role, CRLs, and PEM files for configurations. Shared by the certificate, authenticator and
real-client tests.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

UTC = datetime.UTC
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
IPSEC_IKE = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.17")


def dn(cn: str, o: str = "ikehub test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
SIGNING_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
_serial = iter(range(100, 10_000))


def issue(
    subject: x509.Name,
    key,
    issuer: x509.Name,
    issuerKey,
    *,
    ca: bool = False,
    pathLength: int | None = None,
    keyUsage: x509.KeyUsage | None | str = "default",
    eku: list | None = None,
    san: list | None = None,
    notBefore: datetime.datetime = NOW - 30 * DAY,
    notAfter: datetime.datetime = NOW + 365 * DAY,
    serial: int | None = None,
    extra: list[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate as a CA would issue it: basicConstraints, SKI/AKI, keyUsage by role."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else next(_serial))
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=pathLength), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuerKey.public_key()), False
        )
    )
    if keyUsage == "default":
        keyUsage = CA_USAGE if ca else SIGNING_USAGE
    if keyUsage is not None:
        builder = builder.add_extension(keyUsage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical)
    algorithm = None if isinstance(issuerKey, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuerKey, algorithm)


def crlOf(
    issuer: x509.Name,
    issuerKey,
    revoked: list[int],
    *,
    lastUpdate: datetime.datetime = NOW - DAY,
    nextUpdate: datetime.datetime = NOW + 7 * DAY,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(lastUpdate)
        .next_update(nextUpdate)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - 2 * DAY)
            .build()
        )
    return builder.sign(issuerKey, hashes.SHA256())


def writePem(path: Path, *items, mode: int = 0o644) -> Path:
    """Certificates and private keys as one PEM file (keys unencrypted, PKCS#8)."""
    parts = []
    for item in items:
        if isinstance(item, x509.Certificate):
            parts.append(item.public_bytes(serialization.Encoding.PEM))
        else:
            parts.append(
                item.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
    path.write_bytes(b"".join(parts))
    path.chmod(mode)
    return path
