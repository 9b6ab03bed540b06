"""
Loading the hub's own credentials and trust anchors from files, at start-up.

These run before the daemon forks, so every failure is a L{CredentialError} whose message
names the file and says what is wrong with it, fit to show an operator as it is. Parsing
is C{cryptography}'s; this module only decides which loader to try and what to refuse:
a private key readable by group or others, a chain not in end-entity-first order, a "CA"
that is not a CA certificate.
"""

from __future__ import annotations

import itertools
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = [
    "CA_FILE_SUFFIXES",
    "CRL_FILE_SUFFIXES",
    "CredentialError",
    "HubCredentials",
    "loadCAs",
    "loadCRLs",
    "loadCertificateChain",
    "loadPrivateKey",
]

#: The files of a CA directory that are read; anything else there is ignored.
CA_FILE_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
#: The files of a CRL directory that are read.
CRL_FILE_SUFFIXES = frozenset({".pem", ".crl", ".der"})

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)
_PEM_ANY = b"-----BEGIN "

_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


class CredentialError(Exception):
    """
    A credential file that cannot be used; the message names the file and the problem.

    @ivar path: the file (or directory) at fault, or C{None} when no file was given.
    @ivar problem: what is wrong, without the path.
    """

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CredentialError(path, "no such file") from None
    except IsADirectoryError:
        raise CredentialError(path, "is a directory, expected a file") from None
    except OSError as e:
        raise CredentialError(path, f"cannot be read ({e.strerror or e})") from None


# -- certificates -----------------------------------------------------------------------------


def _loadCertificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in a PEM file (one or more blocks) or a single DER certificate."""
    data = _read(path)
    try:
        if _PEM_CERTIFICATE in data:
            return x509.load_pem_x509_certificates(data)
        if _PEM_ANY in data:
            raise CredentialError(path, "holds PEM data but no CERTIFICATE block")
        return [x509.load_der_x509_certificate(data)]
    except ValueError as e:
        raise CredentialError(path, f"is not a valid X.509 certificate ({e})") from None


def loadCertificateChain(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """
    The hub's certificate and the intermediates it sends, from one PEM file, end entity
    first (a single DER certificate is accepted too).

    Each certificate must be issued by the next one: the order is what goes into the CERT
    payloads, and a peer given a shuffled or foreign chain fails in ways hard to trace back.

    @raise CredentialError: if the file is missing, unparsable, empty or out of order.
    """
    chain = _loadCertificates(path)
    if not chain:
        raise CredentialError(path, "contains no certificate")
    for position, (cert, issuer) in enumerate(itertools.pairwise(chain), start=1):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise CredentialError(
                path,
                f"certificate {position} ({_subject(cert)}) is not issued by certificate "
                f"{position + 1} ({_subject(issuer)}); list the end entity first, then "
                f"each issuer in turn",
            ) from None
    return chain


def loadCAs(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[x509.Certificate]:
    """
    Trusted CA certificates from files (PEM with any number of certificates, or one DER
    certificate) or from a directory (its C{.pem}, C{.crt}, C{.cer} and C{.der} files, in
    name order).

    Every certificate must be a CA (basicConstraints with cA set): path validation would
    never use anything else, and an end-entity certificate here is a configuration mistake
    better reported now than as "untrusted CA" at every handshake.

    @raise CredentialError: if a file is unusable or nothing was found.
    """
    cas: list[x509.Certificate] = []
    for path in _expand(paths, "CA certificates", CA_FILE_SUFFIXES):
        certs = _loadCertificates(path)
        for cert in certs:
            if not _isCA(cert):
                raise CredentialError(
                    path,
                    f"{_subject(cert)} is not a CA certificate (no basicConstraints with cA)",
                )
        cas.extend(c for c in certs if c not in cas)
    return cas


def loadCRLs(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[x509.CertificateRevocationList]:
    """
    Certificate revocation lists from files (PEM with any number of CRLs, or one DER CRL)
    or a directory (its C{.pem}, C{.crl} and C{.der} files, in name order). An empty list
    of paths gives an empty list.

    @raise CredentialError: if a file is unusable.
    """
    crls: list[x509.CertificateRevocationList] = []
    for path in _expand(paths, "CRLs", CRL_FILE_SUFFIXES, allowEmpty=True):
        data = _read(path)
        try:
            if _PEM_ANY in data:
                blocks = _PEM_CRL.findall(data)
                if not blocks:
                    raise CredentialError(path, "holds PEM data but no X509 CRL block")
                crls.extend(x509.load_pem_x509_crl(block) for block in blocks)
            else:
                crls.append(x509.load_der_x509_crl(data))
        except ValueError as e:
            raise CredentialError(path, f"is not a valid CRL ({e})") from None
    return crls


def _expand(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    what: str,
    suffixes: frozenset[str],
    allowEmpty: bool = False,
) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            try:
                found = sorted(
                    p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file()
                )
            except OSError as e:
                raise CredentialError(path, f"cannot be listed ({e.strerror or e})") from None
            if not found:
                endings = ", ".join(sorted(suffixes))
                raise CredentialError(
                    path, f"directory holds no {what} (files ending in {endings})"
                )
            files.extend(found)
        else:
            files.append(path)
    if not files and not allowEmpty:
        raise CredentialError(None, f"no {what} were given")
    return files


def _isCA(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _subject(cert: x509.Certificate) -> str:
    try:
        return repr(cert.subject.rfc4514_string())
    except ValueError:
        return "a certificate with an unreadable subject"


# -- private keys -----------------------------------------------------------------------------


def loadPrivateKey(path: str | os.PathLike[str], password: str | bytes | None = None) -> PrivateKey:
    """
    The hub's private key: PEM or DER, PKCS#8 (encrypted or not), PKCS#1 RSA or SEC1 EC.

    The file must not be readable or writable by group or others (mode & 0o077 == 0), as
    OpenSSH and strongSwan's own tools expect of a private key.

    @raise CredentialError: if the file is missing, too open, encrypted without a password
        (or with the wrong one), unparsable, or holds a key type that cannot sign AUTH.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CredentialError(path, "no such file") from None
    except OSError as e:
        raise CredentialError(path, f"cannot be read ({e.strerror or e})") from None
    if stat.S_ISREG(mode) and mode & 0o077:
        raise CredentialError(
            path,
            f"private key is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run chmod 600 on it",
        )
    data = _read(path)
    if isinstance(password, str):
        password = password.encode("utf-8")
    try:
        if _PEM_ANY in data:
            key = serialization.load_pem_private_key(data, password)
        else:
            key = serialization.load_der_private_key(data, password)
    except TypeError as e:
        if password is None:
            raise CredentialError(path, "private key is encrypted; a password is needed") from None
        raise CredentialError(
            path, f"private key is not encrypted but a password was given ({e})"
        ) from None
    except ValueError as e:
        if password is not None:
            raise CredentialError(
                path, f"cannot decrypt or parse the private key: wrong password or corrupt ({e})"
            ) from None
        raise CredentialError(path, f"is not a valid private key ({e})") from None
    except UnsupportedAlgorithm as e:
        raise CredentialError(path, f"private key uses an unsupported algorithm ({e})") from None
    if not isinstance(key, _SIGNING_KEYS):
        raise CredentialError(
            path, f"a {type(key).__name__} cannot sign IKE AUTH (use RSA, ECDSA, Ed25519 or Ed448)"
        )
    return key


class HubCredentials:
    """
    The hub's own certificate chain (end entity first) and the private key of its end entity,
    loaded once at start; what the hub signs its AUTH payloads and EAP-TLS handshakes with.
    """

    __slots__ = ("chain", "privateKey")

    def __init__(self, chain: Iterable[x509.Certificate], privateKey: PrivateKey) -> None:
        self.chain: tuple[x509.Certificate, ...] = tuple(chain)
        self.privateKey = privateKey

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    def __repr__(self) -> str:
        return f"<HubCredentials {_subject(self.chain[0])}, private key redacted>"
