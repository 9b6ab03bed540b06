"""
The Authentication Data of an AUTH payload made with a private key (RFC 7296 section 2.15).

The IKE layer assembles the signed octets (C{RealMessage | Nonce | MACedID}); this module
only turns them into Authentication Data and back, through C{cryptography}. Four wire
formats exist, one per method:

  - 1, RSA Digital Signature: RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 section 3.8);
  - 9, 10, 11, ECDSA with SHA-256/P-256, SHA-384/P-384, SHA-512/P-521 (RFC 4754): the
    signature is C{r | s}, each zero-padded to the curve's size, and the key's curve is
    fixed by the method;
  - 14, Digital Signature (RFC 7427): one length octet, a DER AlgorithmIdentifier, then
    the signature in that algorithm's usual encoding (DER for ECDSA, unlike 9 to 11).

For method 14 the AlgorithmIdentifier is compared byte for byte against the encodings
listed here (those of RFC 7427 Appendix A and RFC 8420) instead of being parsed: the
peer cannot smuggle in parameters we did not think about, and a PSS identifier whose
MGF1 hash or salt length disagrees with its hash simply matches nothing. SHA-1 is
recognised only to be refused by name (RFC 8247).

Every failure a peer can cause is a L{SignatureError}, whose C{reason} is fit for the
PAD's decision record; nothing else escapes L{verifyAuth} for any C{authData}.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ikehub.wire.constants import AuthMethod, HashAlgorithm

__all__ = [
    "SIGNATURE_HASH_ALGORITHMS",
    "SIGNATURE_METHODS",
    "SignatureError",
    "chooseHash",
    "signAuth",
    "signWithBestHash",
    "verifyAuth",
]


class SignatureError(Exception):
    """
    Authentication Data that does not verify, cannot be parsed, names an algorithm we
    refuse, or does not fit the key; also a key that cannot sign with the asked method.

    @ivar reason: a short sentence for the PAD's decision record.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: What the hub announces in SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4), strongest
#: last; SHA-1 is absent on purpose (RFC 8247).
SIGNATURE_HASH_ALGORITHMS: tuple[HashAlgorithm, ...] = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)

#: The authentication methods this module signs and verifies.
SIGNATURE_METHODS: frozenset[AuthMethod] = frozenset(
    {
        AuthMethod.RSA_SIGNATURE,
        AuthMethod.ECDSA_SHA256_P256,
        AuthMethod.ECDSA_SHA384_P384,
        AuthMethod.ECDSA_SHA512_P521,
        AuthMethod.DIGITAL_SIGNATURE,
    }
)

_HASHES: dict[int, hashes.HashAlgorithm] = {
    HashAlgorithm.SHA1: hashes.SHA1(),
    HashAlgorithm.SHA2_256: hashes.SHA256(),
    HashAlgorithm.SHA2_384: hashes.SHA384(),
    HashAlgorithm.SHA2_512: hashes.SHA512(),
}

#: Methods 9 to 11: (curve class, hash, width of r and of s in octets).
_RFC4754: dict[int, tuple[type[ec.EllipticCurve], int, int]] = {
    AuthMethod.ECDSA_SHA256_P256: (ec.SECP256R1, HashAlgorithm.SHA2_256, 32),
    AuthMethod.ECDSA_SHA384_P384: (ec.SECP384R1, HashAlgorithm.SHA2_384, 48),
    AuthMethod.ECDSA_SHA512_P521: (ec.SECP521R1, HashAlgorithm.SHA2_512, 66),
}

#: The curves method 14 accepts for ECDSA (those of RFC 4754 and the CA/B profile).
_ECDSA_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)

_MIN_RSA_BITS = 2048

# -- AlgorithmIdentifiers (DER) ---------------------------------------------------------------
# The fixed ones are written out as RFC 7427 Appendix A and RFC 8420 list them; the tests
# check each against cryptography's own certificate encodings and strongSwan's.

_RSA = "rsa"
_PSS = "pss"
_ECDSA = "ecdsa"
_ED25519 = "ed25519"
_ED448 = "ed448"


@dataclass(frozen=True, slots=True)
class _Algorithm:
    """What an AlgorithmIdentifier means: signature family and hash (RFC 7427 numbering)."""

    family: str
    hashAlgorithm: int


def _tlv(tag: int, body: bytes) -> bytes:
    """A DER element with a short-form length (every element here is under 128 octets)."""
    return bytes([tag, len(body)]) + body


_OID_SHA256 = bytes.fromhex("0609608648016503040201")
_OID_SHA384 = bytes.fromhex("0609608648016503040202")
_OID_SHA512 = bytes.fromhex("0609608648016503040203")
_OID_MGF1 = bytes.fromhex("06092a864886f70d010108")
_OID_RSASSA_PSS = bytes.fromhex("06092a864886f70d01010a")
_NULL = bytes.fromhex("0500")


def _pssIdentifier(hashOid: bytes, saltLength: int, withNull: bool) -> bytes:
    """
    RSASSA-PSS with one SHA-2 hash for the message and for MGF1, salt as long as the hash,
    default trailer (RFC 4055 section 3.1). RFC 4055 requires accepting the hash
    AlgorithmIdentifiers with NULL parameters (what strongSwan, OpenSSL and RFC 7427 A.4.3
    send) and without.
    """
    hashId = _tlv(0x30, hashOid + (_NULL if withNull else b""))
    params = _tlv(
        0x30,
        _tlv(0xA0, hashId)
        + _tlv(0xA1, _tlv(0x30, _OID_MGF1 + hashId))
        + _tlv(0xA2, _tlv(0x02, bytes([saltLength]))),
    )
    return _tlv(0x30, _OID_RSASSA_PSS + params)


def _rsaPkcs1Identifiers(lastArc: int, hashAlgorithm: int) -> dict[bytes, _Algorithm]:
    """sha*WithRSAEncryption with NULL parameters and, as RFC 4055 section 5 allows, without."""
    oid = bytes.fromhex("06092a864886f70d0101") + bytes([lastArc])
    algorithm = _Algorithm(_RSA, hashAlgorithm)
    return {_tlv(0x30, oid + _NULL): algorithm, _tlv(0x30, oid): algorithm}


_ALGORITHMS: dict[bytes, _Algorithm] = {
    **_rsaPkcs1Identifiers(0x05, HashAlgorithm.SHA1),
    **_rsaPkcs1Identifiers(0x0B, HashAlgorithm.SHA2_256),
    **_rsaPkcs1Identifiers(0x0C, HashAlgorithm.SHA2_384),
    **_rsaPkcs1Identifiers(0x0D, HashAlgorithm.SHA2_512),
    # ecdsa-with-SHA1 and ecdsa-with-SHA256/384/512 (RFC 5758: no parameters).
    bytes.fromhex("300906072a8648ce3d0401"): _Algorithm(_ECDSA, HashAlgorithm.SHA1),
    bytes.fromhex("300a06082a8648ce3d040302"): _Algorithm(_ECDSA, HashAlgorithm.SHA2_256),
    bytes.fromhex("300a06082a8648ce3d040303"): _Algorithm(_ECDSA, HashAlgorithm.SHA2_384),
    bytes.fromhex("300a06082a8648ce3d040304"): _Algorithm(_ECDSA, HashAlgorithm.SHA2_512),
    # RSASSA-PSS with absent or empty parameters means SHA-1 (RFC 4055 defaults).
    bytes.fromhex("300b06092a864886f70d01010a"): _Algorithm(_PSS, HashAlgorithm.SHA1),
    bytes.fromhex("300d06092a864886f70d01010a3000"): _Algorithm(_PSS, HashAlgorithm.SHA1),
    **{
        _pssIdentifier(oid, size, withNull): _Algorithm(_PSS, number)
        for oid, size, number in (
            (_OID_SHA256, 32, HashAlgorithm.SHA2_256),
            (_OID_SHA384, 48, HashAlgorithm.SHA2_384),
            (_OID_SHA512, 64, HashAlgorithm.SHA2_512),
        )
        for withNull in (True, False)
    },
    # id-Ed25519 and id-Ed448 (RFC 8410; RFC 8420 for IKEv2), hash "Identity".
    bytes.fromhex("300506032b6570"): _Algorithm(_ED25519, HashAlgorithm.IDENTITY),
    bytes.fromhex("300506032b6571"): _Algorithm(_ED448, HashAlgorithm.IDENTITY),
}

#: The identifier signAuth writes for each (family, hash): the NULL-parameter forms.
_OUTGOING: dict[tuple[str, int], bytes] = {
    (_RSA, HashAlgorithm.SHA2_256): _tlv(0x30, bytes.fromhex("06092a864886f70d01010b") + _NULL),
    (_RSA, HashAlgorithm.SHA2_384): _tlv(0x30, bytes.fromhex("06092a864886f70d01010c") + _NULL),
    (_RSA, HashAlgorithm.SHA2_512): _tlv(0x30, bytes.fromhex("06092a864886f70d01010d") + _NULL),
    (_PSS, HashAlgorithm.SHA2_256): _pssIdentifier(_OID_SHA256, 32, True),
    (_PSS, HashAlgorithm.SHA2_384): _pssIdentifier(_OID_SHA384, 48, True),
    (_PSS, HashAlgorithm.SHA2_512): _pssIdentifier(_OID_SHA512, 64, True),
    (_ECDSA, HashAlgorithm.SHA2_256): bytes.fromhex("300a06082a8648ce3d040302"),
    (_ECDSA, HashAlgorithm.SHA2_384): bytes.fromhex("300a06082a8648ce3d040303"),
    (_ECDSA, HashAlgorithm.SHA2_512): bytes.fromhex("300a06082a8648ce3d040304"),
    (_ED25519, HashAlgorithm.IDENTITY): bytes.fromhex("300506032b6570"),
    (_ED448, HashAlgorithm.IDENTITY): bytes.fromhex("300506032b6571"),
}

_ED_SIGNATURE_LENGTH = {_ED25519: 64, _ED448: 114}


# -- choosing ---------------------------------------------------------------------------------


def chooseHash(peerAnnounced: Iterable[int], key: object) -> HashAlgorithm:
    """
    The RFC 7427 hash to sign with, given what the peer announced in its
    SIGNATURE_HASH_ALGORITHMS and our key (private or public).

    EdDSA can only use Identity. For ECDSA the hash of the key's own size comes first
    (strongSwan's choice, and the strength match of RFC 4754), then the others; for RSA
    SHA2-256 first, as strongSwan does, because the cost is in the RSA operation anyway.
    SHA-1 is never chosen.

    @raise SignatureError: if the peer announced nothing we can use with this key; the
        caller may fall back to method 1 or 9 to 11, which need no announcement.
    """
    announced = set()
    for number in peerAnnounced:
        if isinstance(number, int) and number in SIGNATURE_HASH_ALGORITHMS:
            announced.add(number)
    for candidate in _hashPreference(key):
        if candidate in announced:
            return HashAlgorithm(candidate)
    raise SignatureError("the peer announced no signature hash algorithm usable with our key")


def _hashPreference(key: object) -> tuple[int, ...]:
    sha2 = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return (HashAlgorithm.IDENTITY,)
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return (HashAlgorithm.IDENTITY,)
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        own = {32: HashAlgorithm.SHA2_256, 48: HashAlgorithm.SHA2_384, 66: HashAlgorithm.SHA2_512}
        first = own.get((key.curve.key_size + 7) // 8)
        return ((first,) if first else ()) + tuple(h for h in sha2 if h != first)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return sha2
    raise SignatureError(f"unsupported key type {type(key).__name__} for signature authentication")


# -- signing ----------------------------------------------------------------------------------


def signAuth(
    privateKey: object,
    method: int,
    octets: bytes,
    hashAlgorithm: int | None,
    *,
    rsaPss: bool = False,
) -> bytes:
    """
    The Authentication Data of an AUTH payload of C{method} over C{octets}.

    @param hashAlgorithm: for method 14, the RFC 7427 hash (see L{chooseHash}; Identity for
        EdDSA). Methods 1 and 9 to 11 fix their hash; pass C{None} or that same hash.
    @param rsaPss: for method 14 with an RSA key, sign RSASSA-PSS (MGF1 with the same hash,
        salt as long as the hash, as strongSwan's C{rsa/pss}) instead of PKCS#1 v1.5.

    @raise SignatureError: if the key cannot sign with this method and hash.
    """
    octets = bytes(octets)
    if method == AuthMethod.RSA_SIGNATURE:
        _checkFixedHash(method, hashAlgorithm, HashAlgorithm.SHA1)
        if not isinstance(privateKey, rsa.RSAPrivateKey):
            raise SignatureError("method 1 (RSA signature) needs an RSA key")
        return privateKey.sign(octets, padding.PKCS1v15(), hashes.SHA1())
    if method in _RFC4754:
        curve, hashNumber, width = _RFC4754[method]
        _checkFixedHash(method, hashAlgorithm, hashNumber)
        if not isinstance(privateKey, ec.EllipticCurvePrivateKey) or not isinstance(
            privateKey.curve, curve
        ):
            raise SignatureError(f"method {int(method)} needs an ECDSA key on {curve.name}")
        r, s = decode_dss_signature(privateKey.sign(octets, ec.ECDSA(_HASHES[hashNumber])))
        return r.to_bytes(width, "big") + s.to_bytes(width, "big")
    if method == AuthMethod.DIGITAL_SIGNATURE:
        return _signDigital(privateKey, octets, hashAlgorithm, rsaPss)
    raise SignatureError(f"authentication method {method} is not a signature method")


#: The classic ECDSA method (RFC 4754) for each curve size.
_CLASSIC_ECDSA = {
    256: AuthMethod.ECDSA_SHA256_P256,
    384: AuthMethod.ECDSA_SHA384_P384,
    521: AuthMethod.ECDSA_SHA512_P521,
}


def signWithBestHash(key: object, octets: bytes, peerHashes) -> tuple[int, bytes]:
    """
    (AUTH method, Authentication Data) over C{octets}, as both our roles sign: method 14
    (RFC 7427) with the strongest hash both sides support when the peer announced
    SIGNATURE_HASH_ALGORITHMS, else the key's classic method (1 for RSA, 9 to 11 for ECDSA).
    """
    if peerHashes:
        try:
            hashAlgorithm = int(chooseHash(peerHashes, key))
        except SignatureError:
            pass  # nothing in common: the classic method below
        else:
            method = AuthMethod.DIGITAL_SIGNATURE
            return method, signAuth(key, method, octets, hashAlgorithm)
    if isinstance(key, rsa.RSAPrivateKey):
        method = AuthMethod.RSA_SIGNATURE
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size in _CLASSIC_ECDSA:
        method = _CLASSIC_ECDSA[key.curve.key_size]
    else:
        method = AuthMethod.DIGITAL_SIGNATURE
    return method, signAuth(key, method, octets, None)


def _checkFixedHash(method: int, hashAlgorithm: int | None, fixed: int) -> None:
    if hashAlgorithm is not None and hashAlgorithm != fixed:
        raise SignatureError(
            f"method {int(method)} always hashes with {HashAlgorithm(fixed).name}, "
            f"not hash algorithm {hashAlgorithm}"
        )


def _signDigital(key: object, octets: bytes, hashAlgorithm: int | None, rsaPss: bool) -> bytes:
    if hashAlgorithm == HashAlgorithm.SHA1:
        raise SignatureError("SHA-1 is not allowed in Digital Signature authentication (RFC 8247)")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        family = _ED25519
    elif isinstance(key, ed448.Ed448PrivateKey):
        family = _ED448
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        family = _ECDSA
        if not isinstance(key.curve, _ECDSA_CURVES):
            raise SignatureError(f"ECDSA on {key.curve.name} is not supported")
    elif isinstance(key, rsa.RSAPrivateKey):
        family = _PSS if rsaPss else _RSA
    else:
        raise SignatureError(f"unsupported key type {type(key).__name__} for signing")
    if hashAlgorithm is None and family in (_ED25519, _ED448):
        hashAlgorithm = HashAlgorithm.IDENTITY
    identifier = _OUTGOING.get((family, hashAlgorithm))  # type: ignore[arg-type]
    if identifier is None:
        raise SignatureError(f"a {family} key cannot sign with hash algorithm {hashAlgorithm}")
    if family in (_ED25519, _ED448):
        signature = key.sign(octets)  # type: ignore[union-attr]
    elif family == _ECDSA:
        signature = key.sign(octets, ec.ECDSA(_HASHES[hashAlgorithm]))  # type: ignore[union-attr]
    else:
        digest = _HASHES[hashAlgorithm]  # type: ignore[index]
        rsaPadding = _rsaPadding(family, digest)
        signature = key.sign(octets, rsaPadding, digest)  # type: ignore[union-attr]
    return bytes([len(identifier)]) + identifier + signature


def _rsaPadding(family: str, digest: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if family == _PSS:
        return padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    return padding.PKCS1v15()


# -- verifying --------------------------------------------------------------------------------


def verifyAuth(
    publicKey: object,
    method: int,
    authData: bytes,
    octets: bytes,
    allowedHashes: Collection[int] = SIGNATURE_HASH_ALGORITHMS,
) -> None:
    """
    Check the Authentication Data of a peer's AUTH payload over C{octets}.

    @param publicKey: the peer's key, normally from its validated end-entity certificate.
    @param allowedHashes: the RFC 7427 hashes accepted in method 14 (what we announced);
        SHA-1 is refused there whatever this says. Methods 1 and 9 to 11 fix their own
        hash and ignore it.

    @raise SignatureError: for anything but a valid signature by C{publicKey}.
    """
    try:
        authData = bytes(authData)
        octets = bytes(octets)
    except TypeError:
        raise SignatureError("authentication data must be bytes") from None
    if method == AuthMethod.RSA_SIGNATURE:
        rsaKey = _requireRsa(publicKey, "method 1 (RSA signature)")
        _verify(
            lambda: rsaKey.verify(authData, octets, padding.PKCS1v15(), hashes.SHA1()),
        )
    elif method in _RFC4754:
        _verifyRfc4754(publicKey, method, authData, octets)
    elif method == AuthMethod.DIGITAL_SIGNATURE:
        _verifyDigital(publicKey, authData, octets, allowedHashes)
    else:
        raise SignatureError(f"authentication method {method} is not a signature method")


def _verify(check) -> None:  # type: ignore[no-untyped-def]
    """Run one cryptography verification, turning each way it can refuse into ours."""
    try:
        check()
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    except (ValueError, TypeError, UnsupportedAlgorithm, OverflowError) as e:
        raise SignatureError(f"malformed signature ({e})") from None


def _requireRsa(publicKey: object, what: str) -> rsa.RSAPublicKey:
    if not isinstance(publicKey, rsa.RSAPublicKey):
        raise SignatureError(f"{what} needs an RSA key, the peer's key is {_keyName(publicKey)}")
    if publicKey.key_size < _MIN_RSA_BITS:
        raise SignatureError(f"RSA key of {publicKey.key_size} bits is too short")
    return publicKey


def _verifyRfc4754(publicKey: object, method: int, authData: bytes, octets: bytes) -> None:
    curve, hashNumber, width = _RFC4754[method]
    if not isinstance(publicKey, ec.EllipticCurvePublicKey) or not isinstance(
        publicKey.curve, curve
    ):
        raise SignatureError(
            f"method {int(method)} needs an ECDSA key on {curve.name}, "
            f"the peer's key is {_keyName(publicKey)}"
        )
    if len(authData) != 2 * width:
        raise SignatureError(
            f"method {int(method)} signature must be {2 * width} octets (r | s), "
            f"not {len(authData)}"
        )
    r = int.from_bytes(authData[:width], "big")
    s = int.from_bytes(authData[width:], "big")
    if r == 0 or s == 0:
        raise SignatureError("ECDSA signature with r or s zero")
    signature = encode_dss_signature(r, s)
    _verify(lambda: publicKey.verify(signature, octets, ec.ECDSA(_HASHES[hashNumber])))


def _verifyDigital(
    publicKey: object, authData: bytes, octets: bytes, allowedHashes: Collection[int]
) -> None:
    if not authData:
        raise SignatureError("Digital Signature authentication data is empty")
    length = authData[0]
    if length == 0 or 1 + length > len(authData):
        raise SignatureError("AlgorithmIdentifier length runs beyond the authentication data")
    algorithm = _ALGORITHMS.get(authData[1 : 1 + length])
    if algorithm is None:
        raise SignatureError("unknown or unsupported signature AlgorithmIdentifier")
    signature = authData[1 + length :]
    if algorithm.hashAlgorithm == HashAlgorithm.SHA1:
        raise SignatureError("SHA-1 is not allowed in Digital Signature authentication (RFC 8247)")
    try:
        allowed = algorithm.hashAlgorithm in allowedHashes
    except TypeError:
        allowed = False
    if not allowed:
        raise SignatureError(
            f"hash algorithm {HashAlgorithm(algorithm.hashAlgorithm).name} was not announced"
        )
    if not signature:
        raise SignatureError("Digital Signature authentication data has no signature")

    family = algorithm.family
    if family in (_RSA, _PSS):
        rsaKey = _requireRsa(publicKey, f"an {family.upper()} AlgorithmIdentifier")
        digest = _HASHES[algorithm.hashAlgorithm]
        _verify(lambda: rsaKey.verify(signature, octets, _rsaPadding(family, digest), digest))
    elif family == _ECDSA:
        if not isinstance(publicKey, ec.EllipticCurvePublicKey) or not isinstance(
            publicKey.curve, _ECDSA_CURVES
        ):
            raise SignatureError(
                f"an ECDSA AlgorithmIdentifier needs an ECDSA key on P-256, P-384 or P-521, "
                f"the peer's key is {_keyName(publicKey)}"
            )
        digest = _HASHES[algorithm.hashAlgorithm]
        _verify(lambda: publicKey.verify(signature, octets, ec.ECDSA(digest)))
    else:
        keyClass = ed25519.Ed25519PublicKey if family == _ED25519 else ed448.Ed448PublicKey
        if not isinstance(publicKey, keyClass):
            raise SignatureError(
                f"an {family} AlgorithmIdentifier needs an {family} key, "
                f"the peer's key is {_keyName(publicKey)}"
            )
        if len(signature) != _ED_SIGNATURE_LENGTH[family]:
            raise SignatureError(
                f"{family} signature must be {_ED_SIGNATURE_LENGTH[family]} octets, "
                f"not {len(signature)}"
            )
        _verify(lambda: publicKey.verify(signature, octets))


def _keyName(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__
