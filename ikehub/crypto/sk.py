"""
The Encrypted and Authenticated payload (RFC 7296 section 3.14) with AES-CBC plus HMAC
(encrypt-then-MAC), AES-GCM-16 (RFC 5282) and ChaCha20-Poly1305 (RFC 7634).

An L{SKCodec} holds one direction of one IKE SA: its cipher is keyed once, when the SA
is established, and every message after that only encrypts or decrypts.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ikehub.crypto.errors import CryptoError, DecryptError, IntegrityError
from ikehub.crypto.keys import IkeKeys
from ikehub.crypto.transforms import EncrAlgorithm, IntegAlgorithm
from ikehub.wire.constants import (
    GENERIC_PAYLOAD_HEADER_LENGTH,
    IKE_HEADER_LENGTH,
    PayloadType,
)
from ikehub.wire.header import IKEHeader
from ikehub.wire.message import Message, decodePayloadChain, encodePayloadChain
from ikehub.wire.payloads import Payload, SKPayload

if TYPE_CHECKING:
    from ikehub.crypto.proposals import IkeSuite

_GENERIC = struct.Struct("!BBH")
_IV_SPACE = 1 << 64
#: An SKF payload's Fragment Number and Total Fragments (RFC 7383 section 2.5).
_FRAGMENT = struct.Struct("!HH")


class SKCodec:
    """
    Encrypts outgoing and decrypts incoming SK payloads for one direction of an IKE SA.

    AEAD IVs must never repeat under a key, so they come from a counter: the n-th
    message uses n XOR C{ivSeed}, which is unique for 2^64 messages and does not reveal
    how many were sent. CBC IVs must be unpredictable, so they are random.
    """

    __slots__ = ("_cipher", "_integKey", "_ivSeed", "_sent", "encr", "integ")

    def __init__(
        self,
        encr: EncrAlgorithm,
        integ: IntegAlgorithm | None,
        encrKey: bytes,
        integKey: bytes,
        *,
        ivSeed: int | None = None,
    ) -> None:
        """
        @param ivSeed: the first explicit AEAD IV as an integer; random unless given.
            Tests give one to reproduce published vectors.
        @raise CryptoError: keys of the wrong length, an INTEG transform with an AEAD
            cipher, or none without.
        """
        if encr.isAead != (integ is None):
            raise CryptoError(
                f"{encr.name} needs {'no' if encr.isAead else 'an'} integrity transform"
            )
        if integ is not None and len(integKey) != integ.keyLength:
            raise CryptoError(
                f"{integ.name} needs {integ.keyLength} bytes of key, got {len(integKey)}"
            )
        self.encr = encr
        self.integ = integ
        self._cipher = encr.newCipher(encrKey)
        self._integKey = integKey
        if ivSeed is None:
            ivSeed = int.from_bytes(os.urandom(8), "big")
        self._ivSeed = ivSeed
        self._sent = 0

    def __repr__(self) -> str:
        integ = self.integ.name if self.integ is not None else "aead"
        return f"<SKCodec {self.encr.name}/{integ}>"

    def protect(self, header: IKEHeader, payloads: Sequence[Payload]) -> bytes:
        """
        The whole datagram: C{header} (with next payload SK and the length filled in),
        the SK payload's generic header, IV, ciphertext of C{payloads}, ICV.

        @raise CryptoError: this codec has sent 2^64 AEAD messages (never, in practice).
        """
        firstType, inner = encodePayloadChain(payloads)
        return self._seal(header, PayloadType.SK, firstType, b"", inner)

    def _seal(
        self, header: IKEHeader, payloadType: int, firstType: int, fields: bytes, inner: bytes
    ) -> bytes:
        """
        Encrypt C{inner} (an encoded payload chain, or a piece of one) into a datagram whose
        only payload is of C{payloadType} (SK, or SKF with its fragment number and total in
        C{fields}, which the ICV and AEAD tag cover like the headers, RFC 7383 section 2.5).
        """
        encr = self.encr
        padLength = -(len(inner) + 1) % encr.blockSize
        plaintext = inner + bytes(padLength) + bytes((padLength,))
        if encr.isAead:
            icvLength = encr.icvLength
        else:
            icvLength = self.integ.icvLength
        skLength = (
            GENERIC_PAYLOAD_HEADER_LENGTH
            + len(fields)
            + encr.ivLength
            + len(plaintext)
            + icvLength
        )
        prefix = (
            header.toBytesWith(payloadType, IKE_HEADER_LENGTH + skLength)
            + _GENERIC.pack(firstType, 0, skLength)
            + fields
        )
        cipher = self._cipher
        if encr.isAead:
            iv = self._nextAeadIv()
            return prefix + iv + cipher.seal(iv, plaintext, prefix)
        iv = os.urandom(encr.ivLength)
        signed = prefix + iv + cipher.encrypt(iv, plaintext)
        return signed + self.integ.compute(self._integKey, signed)

    def overhead(self) -> int:
        """
        Bytes a message adds around its encrypted payload chain, padding aside: the IKE
        header, the SK payload's generic header, IV and ICV.
        """
        encr = self.encr
        icvLength = encr.icvLength if encr.isAead else self.integ.icvLength
        return IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH + encr.ivLength + icvLength

    def protectFragments(
        self, header: IKEHeader, payloads: Sequence[Payload], maxSize: int
    ) -> bytes | tuple[bytes, ...]:
        """
        Like L{protect} when the datagram fits in C{maxSize} bytes (the same bytes come
        back); otherwise the message as a tuple of SKF fragments (RFC 7383 section 2.5),
        each at most C{maxSize} bytes and separately encrypted, numbered from 1, the first
        carrying the type of the first inner payload and the others 0.

        @raise ValueError: C{maxSize} leaves no room for a byte of payload in a fragment,
            or the message needs more than 65535 fragments.
        """
        firstType, inner = encodePayloadChain(payloads)
        encr = self.encr
        base = self.overhead()
        padded = len(inner) + 1
        padded += -padded % encr.blockSize
        if base + padded <= maxSize:
            return self._seal(header, PayloadType.SK, firstType, b"", inner)
        # Each fragment's plaintext (its piece, padding, pad length) must fit what is left
        # after the headers, the fragment number and total, IV and ICV.
        room = maxSize - base - _FRAGMENT.size
        room -= room % encr.blockSize
        piece = room - 1
        if piece < 1:
            raise ValueError(f"{maxSize} bytes leave no room for an SKF fragment's payload")
        total = -(-len(inner) // piece)
        if total > 0xFFFF:
            raise ValueError(f"{len(inner)} bytes need more than 65535 fragments")
        fragments = []
        for number in range(1, total + 1):
            start = (number - 1) * piece
            fragments.append(
                self._seal(
                    header,
                    PayloadType.SKF,
                    firstType if number == 1 else 0,
                    _FRAGMENT.pack(number, total),
                    inner[start : start + piece],
                )
            )
        return tuple(fragments)

    def unprotect(self, datagram: bytes, message: Message) -> tuple[Payload, ...]:
        """
        The payloads inside C{message}'s SK payload.

        @param datagram: the bytes C{message} was parsed from (without the non-ESP
            marker): the ICV and the AEAD associated data cover them as sent.
        @raise DecryptError: no SK payload, one too short for its IV and ICV, a
            ciphertext that is not whole blocks, or a pad length beyond the plaintext.
        @raise IntegrityError: the ICV or tag does not verify.
        @raise ikehub.wire.ParseError: the decrypted payload chain is malformed.
        """
        sk = message.sk
        if not isinstance(sk, SKPayload):
            raise DecryptError("message carries no SK payload")
        return decodePayloadChain(sk.firstPayload, self.open(datagram, sk.encrypted))

    def open(self, datagram: bytes, body: bytes) -> bytes:
        """
        The payload chain (padding removed, not yet decoded) in C{body}, the IV, ciphertext
        and ICV that end C{datagram}: an SK payload's, or an SKF fragment's piece of one
        (RFC 7383 section 2.6: each fragment is verified on its own, and its fragment
        number and total are covered like the headers before them).

        @raise DecryptError: C{body} too short for its IV and ICV, a ciphertext that is
            not whole blocks, or a pad length beyond the plaintext.
        @raise IntegrityError: the ICV or tag does not verify.
        """
        encr = self.encr
        ivLength = encr.ivLength
        icvLength = encr.icvLength if encr.isAead else self.integ.icvLength
        if len(body) < ivLength + icvLength:
            raise DecryptError(
                f"SK payload body of {len(body)} bytes is too short for "
                f"{ivLength} bytes of IV and {icvLength} of ICV"
            )
        iv = body[:ivLength]
        cipher = self._cipher
        if encr.isAead:
            skEnd = len(datagram) - len(body)
            plaintext = cipher.open(iv, body[ivLength:], datagram[:skEnd])
        else:
            signedEnd = len(datagram) - icvLength
            if not self.integ.verify(
                self._integKey, datagram[:signedEnd], datagram[signedEnd:]
            ):
                raise IntegrityError("SK payload ICV does not verify")
            plaintext = cipher.decrypt(iv, body[ivLength : len(body) - icvLength])
        if not plaintext:
            raise DecryptError("SK payload plaintext has no pad length")
        padLength = plaintext[-1]
        if padLength + 1 > len(plaintext):
            raise DecryptError(
                f"pad length {padLength} exceeds the {len(plaintext)}-byte plaintext"
            )
        return plaintext[: len(plaintext) - padLength - 1]

    def _nextAeadIv(self) -> bytes:
        sent = self._sent
        if sent >= _IV_SPACE:
            raise CryptoError("AEAD IVs exhausted; the IKE SA must be rekeyed")
        self._sent = sent + 1
        return ((sent ^ self._ivSeed) % _IV_SPACE).to_bytes(8, "big")


def ikeSkCodecs(
    suite: IkeSuite, keys: IkeKeys, isInitiator: bool
) -> tuple[SKCodec, SKCodec]:
    """
    The (outbound, inbound) codecs of an IKE SA: the original initiator sends with
    SK_ei/SK_ai and receives with SK_er/SK_ar, the responder the other way round.
    """
    # Both IV seeds from one system call: a handshake already makes several for its SPIs and
    # nonces.
    seeds = os.urandom(16)
    initiatorToResponder = SKCodec(
        suite.encr, suite.integ, keys.skEi, keys.skAi, ivSeed=int.from_bytes(seeds[:8], "big")
    )
    responderToInitiator = SKCodec(
        suite.encr, suite.integ, keys.skEr, keys.skAr, ivSeed=int.from_bytes(seeds[8:], "big")
    )
    if isInitiator:
        return initiatorToResponder, responderToInitiator
    return responderToInitiator, initiatorToResponder
