"""
Key derivation of RFC 7296: prf+ (section 2.13), the IKE SA keys (section 2.14), the
rekeyed SKEYSEED (section 2.18) and CHILD SA KEYMAT (section 2.17).

The key holders redact themselves in C{repr}, so no log line or traceback can carry
key material by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.transforms import EncrAlgorithm, IntegAlgorithm, PrfAlgorithm
from ikehub.wire._frozen import fastInit

#: prf+ counts its blocks in one octet.
MAX_PRF_PLUS_BLOCKS = 255


def prfPlus(prf: PrfAlgorithm, key: bytes, seed: bytes, length: int) -> bytes:
    """
    prf+ (RFC 7296 section 2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n),
    concatenated and cut to C{length} bytes.

    @raise CryptoError: C{length} is negative or needs more than 255 blocks.
    """
    if length < 0 or length > MAX_PRF_PLUS_BLOCKS * prf.outputLength:
        raise CryptoError(
            f"prf+ with {prf.name} yields 0 to "
            f"{MAX_PRF_PLUS_BLOCKS * prf.outputLength} bytes, not {length}"
        )
    keyed = prf.keyed(key)
    count = -(-length // prf.outputLength)
    blocks = []
    previous = b""
    for counter in range(1, count + 1):
        # Keyed once, copied per block; the last block uses the keyed original itself.
        mac = keyed.copy() if counter < count else keyed
        mac.update(previous + seed + bytes((counter,)))
        previous = mac.finalize()
        blocks.append(previous)
    return b"".join(blocks)[:length]


def skeyseed(
    prf: PrfAlgorithm, nonceI: bytes, nonceR: bytes, sharedSecret: bytes
) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 section 2.14)."""
    return prf.compute(nonceI + nonceR, sharedSecret)


def deriveRekeyedSkeyseed(
    prf: PrfAlgorithm,
    oldSkD: bytes,
    sharedSecret: bytes,
    nonceI: bytes,
    nonceR: bytes,
) -> bytes:
    """
    SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for an IKE SA rekeyed with
    CREATE_CHILD_SA (RFC 7296 section 2.18).

    @param prf: the PRF of the IKE SA being rekeyed (the new SA's keys then come from
        L{deriveIkeKeysFromSkeyseed} with the new SA's PRF).
    @param nonceI: the nonce of whoever initiated the rekey exchange.
    """
    return prf.compute(oldSkD, sharedSecret + nonceI + nonceR)


@fastInit  # built on every handshake: see ikehub.wire._frozen
@dataclass(frozen=True, slots=True, repr=False)
class IkeKeys:
    """
    The seven keys of an IKE SA. C{skAi} and C{skAr} are empty with an AEAD cipher,
    and C{skEi}/C{skEr} include the AEAD salt.
    """

    skD: bytes
    skAi: bytes
    skAr: bytes
    skEi: bytes
    skEr: bytes
    skPi: bytes
    skPr: bytes

    def __repr__(self) -> str:
        return "<IkeKeys (redacted)>"


def deriveIkeKeysFromSkeyseed(
    prf: PrfAlgorithm,
    encr: EncrAlgorithm,
    integ: IntegAlgorithm | None,
    seed: bytes,
    nonceI: bytes,
    nonceR: bytes,
    spiI: bytes,
    spiR: bytes,
) -> IkeKeys:
    """
    {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
        = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)

    @param seed: SKEYSEED, from L{skeyseed} or L{deriveRekeyedSkeyseed}.
    """
    prfLength = prf.keyLength
    integLength = integ.keyLength if integ is not None else 0
    encrLength = encr.keyBytes
    sizes = (
        prfLength,
        integLength,
        integLength,
        encrLength,
        encrLength,
        prfLength,
        prfLength,
    )
    material = prfPlus(prf, seed, nonceI + nonceR + spiI + spiR, sum(sizes))
    return IkeKeys(*_split(material, sizes))


def deriveIkeKeys(
    prf: PrfAlgorithm,
    encr: EncrAlgorithm,
    integ: IntegAlgorithm | None,
    nonceI: bytes,
    nonceR: bytes,
    sharedSecret: bytes,
    spiI: bytes,
    spiR: bytes,
) -> IkeKeys:
    """The keys of a new IKE SA from its IKE_SA_INIT exchange (RFC 7296 section 2.14)."""
    return deriveIkeKeysFromSkeyseed(
        prf,
        encr,
        integ,
        skeyseed(prf, nonceI, nonceR, sharedSecret),
        nonceI,
        nonceR,
        spiI,
        spiR,
    )


@fastInit
@dataclass(frozen=True, slots=True, repr=False)
class ChildKeys:
    """
    The keys of a CHILD SA pair: C{encrI}/C{integI} protect traffic from the initiator
    (of the exchange that made the SA) to the responder, C{encrR}/C{integR} the other
    way. Integrity keys are empty with an AEAD cipher.
    """

    encrI: bytes
    integI: bytes
    encrR: bytes
    integR: bytes

    def __repr__(self) -> str:
        return "<ChildKeys (redacted)>"


def deriveChildKeys(
    prf: PrfAlgorithm,
    skD: bytes,
    encr: EncrAlgorithm,
    integ: IntegAlgorithm | None,
    nonceI: bytes,
    nonceR: bytes,
    sharedSecret: bytes | None = None,
) -> ChildKeys:
    """
    KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 section 2.17), taken in the
    order: initiator-to-responder encryption key, its integrity key, then the
    responder-to-initiator pair.

    @param sharedSecret: the fresh g^ir of a CREATE_CHILD_SA with PFS, else C{None}.
    @param nonceI: the nonce of the exchange's initiator (for IKE_AUTH, that of
        IKE_SA_INIT).
    """
    integLength = integ.keyLength if integ is not None else 0
    sizes = (encr.keyBytes, integLength, encr.keyBytes, integLength)
    seed = (sharedSecret or b"") + nonceI + nonceR
    return ChildKeys(*_split(prfPlus(prf, skD, seed, sum(sizes)), sizes))


def _split(material: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    parts = []
    offset = 0
    for size in sizes:
        parts.append(material[offset : offset + size])
        offset += size
    return parts
