"""
Key exchange methods (transform type 4): one ephemeral key pair per exchange.

The KE payload carries each group's public value in its own format, and each format has
its own ways of being malicious; a L{KeyExchange} hides both behind C{publicKey} and
C{computeSharedSecret}, and turns every bad peer value into L{InvalidKeyExchange}.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ikehub.crypto.errors import CryptoError, InvalidKeyExchange, UnsupportedTransform
from ikehub.crypto.modp import ModpGroup, modpGroup
from ikehub.wire.constants import KeGroup

#: Length of the KE payload's key exchange data for each supported group.
KE_PUBLIC_LENGTH: dict[int, int] = {
    KeGroup.MODP_1024: 128,
    KeGroup.MODP_2048: 256,
    KeGroup.MODP_3072: 384,
    KeGroup.MODP_4096: 512,
    KeGroup.ECP_256: 64,
    KeGroup.ECP_384: 96,
    KeGroup.ECP_521: 132,
    KeGroup.CURVE25519: 32,
    KeGroup.CURVE448: 56,
}

#: Every group this hub implements, in the order it prefers them when nothing else
#: decides: fast, strong curves first, legacy MODP 1024 last.
SUPPORTED_KE_GROUPS: tuple[int, ...] = (
    KeGroup.CURVE25519,
    KeGroup.ECP_256,
    KeGroup.ECP_384,
    KeGroup.ECP_521,
    KeGroup.CURVE448,
    KeGroup.MODP_3072,
    KeGroup.MODP_2048,
    KeGroup.MODP_4096,
    KeGroup.MODP_1024,
)


class KeyExchange:
    """
    One side of one key exchange.

    @ivar group: the transform ID (a L{KeGroup} value).
    @ivar publicKey: our public value, exactly as the KE payload carries it.
    """

    __slots__ = ("group", "publicKey")

    group: int
    publicKey: bytes

    def computeSharedSecret(self, peerPublic: bytes) -> bytes:
        """
        The shared secret g^ir in the form RFC 7296 and the group's RFC define.

        @raise InvalidKeyExchange: C{peerPublic} must not be used.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} group={self.group}>"


class _MontgomeryExchange(KeyExchange):
    """X25519 and X448 (RFC 8031): raw little-endian u-coordinates."""

    __slots__ = ("_private", "_publicClass", "_zero")

    def __init__(self, group: int, private, publicClass) -> None:
        self.group = group
        self._private = private
        self._publicClass = publicClass
        self.publicKey = private.public_key().public_bytes_raw()
        self._zero = bytes(len(self.publicKey))

    def computeSharedSecret(self, peerPublic: bytes) -> bytes:
        if len(peerPublic) != len(self._zero):
            raise InvalidKeyExchange(
                f"group {self.group} public value must be {len(self._zero)} bytes, "
                f"got {len(peerPublic)}"
            )
        try:
            secret = self._private.exchange(
                self._publicClass.from_public_bytes(peerPublic)
            )
        except ValueError as e:
            # OpenSSL refuses an all-zero result itself; the check below keeps that
            # guarantee should a backend ever stop doing so.
            raise InvalidKeyExchange(
                f"group {self.group} public value is a low-order point"
            ) from e
        if hmac.compare_digest(secret, self._zero):
            raise InvalidKeyExchange(
                f"group {self.group} shared secret is all zero (low-order point)"
            )
        return secret


class _EcpExchange(KeyExchange):
    """
    NIST prime curves (RFC 5903): the public value is x | y without the 0x04 prefix,
    each coordinate padded to the field size; the secret is the x coordinate.
    """

    __slots__ = ("_coordinateLength", "_curve", "_private")

    def __init__(self, group: int, private: ec.EllipticCurvePrivateKey) -> None:
        self.group = group
        self._private = private
        self._curve = private.curve
        self._coordinateLength = KE_PUBLIC_LENGTH[group] // 2
        self.publicKey = private.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )[1:]

    def computeSharedSecret(self, peerPublic: bytes) -> bytes:
        if len(peerPublic) != 2 * self._coordinateLength:
            raise InvalidKeyExchange(
                f"group {self.group} public value must be "
                f"{2 * self._coordinateLength} bytes, got {len(peerPublic)}"
            )
        try:
            # from_encoded_point rejects points off the curve; the point at infinity
            # has no x | y encoding, and all zeros is not on any of these curves.
            peerKey = ec.EllipticCurvePublicKey.from_encoded_point(
                self._curve, b"\x04" + peerPublic
            )
            secret = self._private.exchange(ec.ECDH(), peerKey)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise InvalidKeyExchange(
                f"group {self.group} public value is not a valid curve point"
            ) from e
        return secret.rjust(self._coordinateLength, b"\x00")


class _ModpExchange(KeyExchange):
    """RFC 2409/3526 MODP groups, through L{ModpGroup}."""

    __slots__ = ("_modp", "_private")

    def __init__(self, modp: ModpGroup) -> None:
        self.group = modp.group
        self._modp = modp
        self._private = modp.generatePrivateKey()
        self.publicKey = modp.publicBytes(self._private)

    def computeSharedSecret(self, peerPublic: bytes) -> bytes:
        return self._modp.computeSharedSecret(self._private, peerPublic)


_CURVES: dict[int, ec.EllipticCurve] = {
    KeGroup.ECP_256: ec.SECP256R1(),
    KeGroup.ECP_384: ec.SECP384R1(),
    KeGroup.ECP_521: ec.SECP521R1(),
}

_MONTGOMERY = {
    KeGroup.CURVE25519: (x25519.X25519PrivateKey, x25519.X25519PublicKey),
    KeGroup.CURVE448: (x448.X448PrivateKey, x448.X448PublicKey),
}


def _newMontgomery(group: int) -> Callable[[], KeyExchange]:
    privateClass, publicClass = _MONTGOMERY[group]
    return lambda: _MontgomeryExchange(group, privateClass.generate(), publicClass)


def _newEcp(group: int) -> Callable[[], KeyExchange]:
    curve = _CURVES[group]
    return lambda: _EcpExchange(group, ec.generate_private_key(curve))


def _newModp(group: int) -> Callable[[], KeyExchange]:
    return lambda: _ModpExchange(modpGroup(group))


_FACTORIES: dict[int, Callable[[], KeyExchange]] = {
    **{group: _newMontgomery(group) for group in _MONTGOMERY},
    **{group: _newEcp(group) for group in _CURVES},
    **{
        group: _newModp(group)
        for group in (
            KeGroup.MODP_1024,
            KeGroup.MODP_2048,
            KeGroup.MODP_3072,
            KeGroup.MODP_4096,
        )
    },
}


def newKeyExchange(group: int) -> KeyExchange:
    """
    A fresh ephemeral key pair for C{group}.

    @raise UnsupportedTransform: (a L{CryptoError} and C{KeyError}) the group is not
        implemented; the IKE layer answers INVALID_KE_PAYLOAD or NO_PROPOSAL_CHOSEN.
    """
    factory = _FACTORIES.get(group)
    if factory is None:
        raise UnsupportedTransform(f"key exchange group {group} is not supported")
    return factory()


def keyExchangeFromPrivate(group: int, privateKey: bytes) -> KeyExchange:
    """
    A L{KeyExchange} around a given private key, for known-answer tests against
    published vectors (RFC 5903, RFC 7748) and for replaying a captured exchange.
    Never use it for live traffic: the point of an exchange is a fresh random key.

    @param privateKey: for ECP groups the big-endian private scalar; for X25519/X448
        the raw private key of RFC 7748.
    @raise CryptoError: MODP groups (no use has come up) or an invalid private key.
    @raise UnsupportedTransform: an unknown group.
    """
    try:
        if group in _CURVES:
            return _EcpExchange(
                group,
                ec.derive_private_key(
                    int.from_bytes(privateKey, "big"), _CURVES[group]
                ),
            )
        if group in _MONTGOMERY:
            privateClass, publicClass = _MONTGOMERY[group]
            return _MontgomeryExchange(
                group, privateClass.from_private_bytes(privateKey), publicClass
            )
    except (ValueError, TypeError) as e:
        raise CryptoError(f"invalid private key for group {group}: {e}") from e
    if group in _FACTORIES:
        raise CryptoError(f"group {group} cannot be built from a private key")
    raise UnsupportedTransform(f"key exchange group {group} is not supported")
