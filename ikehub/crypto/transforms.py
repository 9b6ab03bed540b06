"""
The ENCR, PRF and INTEG transforms this hub implements, as immutable descriptions.

Each description is built once at import and shared: the IKE layer looks one up by IANA
number (and key length) when a proposal is chosen, and the SK payload and the ESP
datapath ask it for key sizes and for a cipher object keyed once per SA. The name tables
at the end are strongSwan's proposal keywords, for L{ikehub.crypto.proposals}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hmac import compare_digest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC

from ikehub.crypto.errors import (
    CryptoError,
    DecryptError,
    IntegrityError,
    UnsupportedTransform,
)
from ikehub.wire.constants import EncrId, EsnId, IntegId, KeGroup, PrfId

#: Bytes of salt at the end of an AEAD key (RFC 5282 section 7.1, RFC 7634 section 2).
AEAD_SALT_LENGTH = 4


@dataclass(frozen=True, slots=True)
class EncrAlgorithm:
    """
    An encryption transform at one key length.

    @ivar keyLength: the KEY_LENGTH attribute in bits, or C{None} where the transform
        carries none (ChaCha20-Poly1305).
    @ivar keyBytes: keying material to take from prf+, including the 4-byte salt of the
        AEAD transforms.
    @ivar ivLength: bytes of explicit IV in front of the ciphertext.
    @ivar blockSize: what plaintext plus padding must be a multiple of. AEAD transforms
        use 1: both are stream modes, RFC 5282 and RFC 7634 need no alignment in the SK
        payload, and RFC 7634's own IKEv2 example sends pad length 0 with a 13-byte
        plaintext. (ESP's 4-byte trailer alignment is the datapath's concern.)
    @ivar icvLength: bytes of ICV the transform itself appends (the AEAD tag), 0 for
        CBC, whose ICV comes from the INTEG transform.
    """

    transformId: int
    keyLength: int | None
    keyBytes: int
    ivLength: int
    blockSize: int
    isAead: bool
    icvLength: int
    name: str

    def newCipher(self, key: bytes) -> AeadCipher | CbcCipher:
        """
        The cipher keyed with C{key}; build it once per SA and direction, not per
        message.

        @raise CryptoError: C{key} is not L{keyBytes} long.
        """
        if len(key) != self.keyBytes:
            raise CryptoError(
                f"{self.name} needs {self.keyBytes} bytes of key, got {len(key)}"
            )
        if self.isAead:
            return AeadCipher(self, key)
        return CbcCipher(key)


class AeadCipher:
    """
    AES-GCM-16 or ChaCha20-Poly1305 with the IPsec nonce: salt (the last 4 key bytes)
    followed by the 8-byte explicit IV that travels with each message (RFC 4106,
    RFC 5282, RFC 7634).
    """

    __slots__ = ("_aead", "_salt")

    def __init__(self, encr: EncrAlgorithm, key: bytes) -> None:
        aeadClass = (
            AESGCM if encr.transformId == EncrId.AES_GCM_16 else ChaCha20Poly1305
        )
        self._aead = aeadClass(key[:-AEAD_SALT_LENGTH])
        self._salt = key[-AEAD_SALT_LENGTH:]

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """The ciphertext followed by the 16-byte tag."""
        return self._aead.encrypt(self._salt + iv, plaintext, aad)

    def open(self, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """
        @param ciphertext: the ciphertext followed by the tag.
        @raise IntegrityError: the tag does not verify.
        """
        try:
            return self._aead.decrypt(self._salt + iv, ciphertext, aad)
        except InvalidTag:
            raise IntegrityError("AEAD tag does not verify") from None


class CbcCipher:
    """AES-CBC without padding of its own (IKE and ESP pad before encrypting)."""

    __slots__ = ("_algorithm",)

    BLOCK_SIZE = 16

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.AES(key)

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        """@param plaintext: a whole number of blocks."""
        encryptor = Cipher(self._algorithm, modes.CBC(iv)).encryptor()
        return encryptor.update(plaintext) + encryptor.finalize()

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        """@raise DecryptError: C{ciphertext} is empty or not a whole number of blocks."""
        if not ciphertext or len(ciphertext) % self.BLOCK_SIZE:
            raise DecryptError(
                f"CBC ciphertext of {len(ciphertext)} bytes is not a whole number "
                f"of {self.BLOCK_SIZE}-byte blocks"
            )
        decryptor = Cipher(self._algorithm, modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()


@dataclass(frozen=True, slots=True)
class PrfAlgorithm:
    """
    A pseudo-random function (RFC 7296 section 2.13).

    @ivar keyLength: the preferred key length, which is also the length of SK_d, SK_pi
        and SK_pr; for HMAC PRFs it equals C{outputLength}.
    """

    transformId: int
    outputLength: int
    keyLength: int
    name: str
    hashAlgorithm: hashes.HashAlgorithm = field(compare=False, repr=False)

    def compute(self, key: bytes, data: bytes) -> bytes:
        mac = HMAC(key, self.hashAlgorithm)
        mac.update(data)
        return mac.finalize()

    def keyed(self, key: bytes) -> HMAC:
        """
        An HMAC keyed once with C{key}, to C{copy()} for each of many computations
        under the same key (prf+ uses it).
        """
        return HMAC(key, self.hashAlgorithm)


@dataclass(frozen=True, slots=True)
class IntegAlgorithm:
    """An integrity transform: HMAC truncated to C{icvLength} bytes (RFC 4868)."""

    transformId: int
    keyLength: int
    icvLength: int
    name: str
    hashAlgorithm: hashes.HashAlgorithm = field(compare=False, repr=False)

    def compute(self, key: bytes, data: bytes) -> bytes:
        mac = HMAC(key, self.hashAlgorithm)
        mac.update(data)
        return mac.finalize()[: self.icvLength]

    def verify(self, key: bytes, data: bytes, icv: bytes) -> bool:
        """Whether C{icv} is the ICV of C{data}, compared in constant time."""
        return compare_digest(self.compute(key, data), icv)


def _cbc(keyLength: int) -> EncrAlgorithm:
    return EncrAlgorithm(
        EncrId.AES_CBC, keyLength, keyLength // 8, 16, 16, False, 0, f"aes{keyLength}"
    )


def _gcm(keyLength: int) -> EncrAlgorithm:
    return EncrAlgorithm(
        EncrId.AES_GCM_16,
        keyLength,
        keyLength // 8 + AEAD_SALT_LENGTH,
        8,
        1,
        True,
        16,
        f"aes{keyLength}gcm16",
    )


CHACHA20_POLY1305 = EncrAlgorithm(
    EncrId.CHACHA20_POLY1305,
    None,
    32 + AEAD_SALT_LENGTH,
    8,
    1,
    True,
    16,
    "chacha20poly1305",
)

_ENCR: dict[tuple[int, int | None], EncrAlgorithm] = {
    (e.transformId, e.keyLength): e
    for e in (
        *(_cbc(bits) for bits in (128, 192, 256)),
        *(_gcm(bits) for bits in (128, 192, 256)),
        CHACHA20_POLY1305,
    )
}

_PRF: dict[int, PrfAlgorithm] = {
    p.transformId: p
    for p in (
        PrfAlgorithm(PrfId.HMAC_SHA1, 20, 20, "prfsha1", hashes.SHA1()),
        PrfAlgorithm(PrfId.HMAC_SHA2_256, 32, 32, "prfsha256", hashes.SHA256()),
        PrfAlgorithm(PrfId.HMAC_SHA2_384, 48, 48, "prfsha384", hashes.SHA384()),
        PrfAlgorithm(PrfId.HMAC_SHA2_512, 64, 64, "prfsha512", hashes.SHA512()),
    )
}

_INTEG: dict[int, IntegAlgorithm] = {
    i.transformId: i
    for i in (
        IntegAlgorithm(IntegId.HMAC_SHA1_96, 20, 12, "sha1", hashes.SHA1()),
        IntegAlgorithm(IntegId.HMAC_SHA2_256_128, 32, 16, "sha256", hashes.SHA256()),
        IntegAlgorithm(IntegId.HMAC_SHA2_384_192, 48, 24, "sha384", hashes.SHA384()),
        IntegAlgorithm(IntegId.HMAC_SHA2_512_256, 64, 32, "sha512", hashes.SHA512()),
    )
}


def encrAlgorithm(transformId: int, keyLength: int | None = None) -> EncrAlgorithm:
    """
    @param keyLength: the KEY_LENGTH attribute in bits; C{None} when absent.
    @raise UnsupportedTransform: not implemented at that key length (an AES transform
        without a key length is among these: RFC 7296 requires the attribute).
    """
    encr = _ENCR.get((transformId, keyLength))
    if encr is None:
        raise UnsupportedTransform(
            f"encryption transform {transformId} with key length {keyLength} "
            "is not supported"
        )
    return encr


def prfAlgorithm(transformId: int) -> PrfAlgorithm:
    """@raise UnsupportedTransform: not implemented."""
    prf = _PRF.get(transformId)
    if prf is None:
        raise UnsupportedTransform(f"PRF transform {transformId} is not supported")
    return prf


def integAlgorithm(transformId: int) -> IntegAlgorithm:
    """@raise UnsupportedTransform: not implemented (INTEG NONE is not a transform here)."""
    integ = _INTEG.get(transformId)
    if integ is None:
        raise UnsupportedTransform(
            f"integrity transform {transformId} is not supported"
        )
    return integ


#: strongSwan's encryption keywords. "aesNNNgcm" and "aesNNNgcm128" are its aliases
#: of "aesNNNgcm16" (the ICV is 16 bytes, 128 bits); plain "aes" is AES-128-CBC.
ENCR_NAMES: dict[str, EncrAlgorithm] = {
    "aes": _ENCR[EncrId.AES_CBC, 128],
    **{f"aes{bits}": _ENCR[EncrId.AES_CBC, bits] for bits in (128, 192, 256)},
    **{
        f"aes{bits}gcm{suffix}": _ENCR[EncrId.AES_GCM_16, bits]
        for bits in (128, 192, 256)
        for suffix in ("16", "128", "")
    },
    "chacha20poly1305": CHACHA20_POLY1305,
}

#: strongSwan's integrity keywords; in an IKE proposal each also implies the PRF in
#: L{PRF_FOR_INTEG}.
INTEG_NAMES: dict[str, IntegAlgorithm] = {
    "sha": _INTEG[IntegId.HMAC_SHA1_96],
    "sha1": _INTEG[IntegId.HMAC_SHA1_96],
    "sha256": _INTEG[IntegId.HMAC_SHA2_256_128],
    "sha2_256": _INTEG[IntegId.HMAC_SHA2_256_128],
    "sha384": _INTEG[IntegId.HMAC_SHA2_384_192],
    "sha2_384": _INTEG[IntegId.HMAC_SHA2_384_192],
    "sha512": _INTEG[IntegId.HMAC_SHA2_512_256],
    "sha2_512": _INTEG[IntegId.HMAC_SHA2_512_256],
}

#: The PRF that a bare integrity keyword stands for in an IKE proposal.
PRF_FOR_INTEG: dict[int, PrfAlgorithm] = {
    IntegId.HMAC_SHA1_96: _PRF[PrfId.HMAC_SHA1],
    IntegId.HMAC_SHA2_256_128: _PRF[PrfId.HMAC_SHA2_256],
    IntegId.HMAC_SHA2_384_192: _PRF[PrfId.HMAC_SHA2_384],
    IntegId.HMAC_SHA2_512_256: _PRF[PrfId.HMAC_SHA2_512],
}

PRF_NAMES: dict[str, PrfAlgorithm] = {prf.name: prf for prf in _PRF.values()}

KE_NAMES: dict[str, int] = {
    "modp1024": KeGroup.MODP_1024,
    "modp2048": KeGroup.MODP_2048,
    "modp3072": KeGroup.MODP_3072,
    "modp4096": KeGroup.MODP_4096,
    "ecp256": KeGroup.ECP_256,
    "ecp384": KeGroup.ECP_384,
    "ecp521": KeGroup.ECP_521,
    "x25519": KeGroup.CURVE25519,
    "curve25519": KeGroup.CURVE25519,
    "x448": KeGroup.CURVE448,
    "curve448": KeGroup.CURVE448,
}

ESN_NAMES: dict[str, int] = {"noesn": EsnId.NO_ESN, "esn": EsnId.ESN}
