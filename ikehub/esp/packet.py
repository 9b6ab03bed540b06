"""
ESP packet protection (RFC 4303) for one SA in one direction: AES-GCM (RFC 4106),
ChaCha20-Poly1305 (RFC 7634) and AES-CBC (RFC 3602) with a truncated HMAC (RFC 4868,
RFC 2404).

The datapath calls L{EspEncryptor.seal} and L{EspDecryptor.open} on every packet, so
everything that can be done once per SA is done at construction: the AEAD and HMAC
objects are keyed there, the CBC contexts are created there and live as long as the SA,
and calling C{EspEncryptor(...)} returns the subclass for the SA's cipher so no packet
pays for choosing it.

Both work on tunnel-mode payloads: C{seal} takes the inner IP packet and its Next Header
(4 for IPv4, 41 for IPv6) and returns the ESP packet from the SPI onwards; UDP
encapsulation (RFC 3948) and the outer header are the network glue's.
"""

from __future__ import annotations

import os
from hmac import compare_digest
from struct import Struct
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import (
    Cipher,
    CipherContext,
    algorithms,
    modes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC

from ikehub.crypto.proposals import ChildSuite
from ikehub.crypto.transforms import AEAD_SALT_LENGTH
from ikehub.esp.replay import MAX_SEQ_32, MAX_SEQ_64, ReplayWindow
from ikehub.wire.constants import EncrId

#: The drop reasons of L{EspDropped}, stable strings for counters.
DROP_MALFORMED = "malformed"
DROP_REPLAY = "replay"
DROP_ICV = "icv"
DROP_PADDING = "padding"
DROP_DUMMY = "dummy"

#: Next Header value of a dummy packet (RFC 4303 section 2.6: IP protocol 59, "no next
#: header"), which a receiver silently discards.
NEXT_HEADER_DUMMY = 59

#: SPI and the low 32 bits of the sequence number.
HEADER_LENGTH = 8
#: Bytes of explicit IV: the 64-bit counter of the AEAD transforms, a block for CBC.
AEAD_IV_LENGTH = 8
CBC_IV_LENGTH = 16
AEAD_TAG_LENGTH = 16

_CBC_BLOCK = 16
#: RFC 4303 section 2.4: the Pad Length and Next Header fields end on a 4-byte boundary.
_ESP_ALIGN = 4

#: SPI, sequence number low 32 bits, and the 64-bit sequence number as the AEAD IV.
_AEAD_HEAD = Struct(">4sIQ")
#: SPI and sequence number low 32 bits.
_HEAD = Struct(">4sI")
#: The AEAD AAD with ESN (RFC 4106 section 5): SPI, then the 64-bit sequence number,
#: which is its high 32 bits followed by its low 32 bits.
_AAD_ESN = Struct(">4sQ")
#: The AEAD nonce: the salt, then the IV, which is the 64-bit sequence number.
_NONCE = Struct(">4sQ")
_U32 = Struct(">I")

#: The Padding field's content for each pad length (RFC 4303 section 2.4: 1, 2, 3, ...).
_PAD_BYTES = tuple(bytes(range(1, n + 1)) for n in range(256))

#: Padding, Pad Length and Next Header for (nextHeader << 4 | padLength), filled on
#: first use: a packet then costs one dict lookup instead of three small allocations.
#: Pad lengths here never reach 16, so the key is unique for every next header.
_TRAILERS: dict[int, bytes] = {}


def _trailer(padLength: int, nextHeader: int) -> bytes:
    trailer = _TRAILERS.get(nextHeader << 4 | padLength)
    if trailer is None:
        if not 0 <= nextHeader <= 255:
            raise EspError(f"next header {nextHeader!r} is not a protocol number 0-255")
        trailer = _PAD_BYTES[padLength] + bytes((padLength, nextHeader))
        _TRAILERS[nextHeader << 4 | padLength] = trailer
    return trailer


class EspError(Exception):
    """
    Base of this module's errors: keys that do not fit the SA's suite at construction,
    and L{SequenceOverflow} when sealing.
    """


class SequenceOverflow(EspError):
    """
    A sequence number an SA may not use: 0, or past 2**32 - 1 (2**64 - 1 with ESN).
    The sender must not cycle the counter (RFC 4303 section 3.3.3); the SA needs
    rekeying.
    """


class EspDropped(EspError):
    """
    An inbound packet to count and drop.

    @ivar reason: one of the stable strings C{"malformed"} (too short, ciphertext not a
        whole number of blocks, pad length longer than the plaintext), C{"replay"}
        (the anti-replay window refused it, before or after the ICV check), C{"icv"}
        (tag or HMAC mismatch), C{"padding"} (padding bytes not 1, 2, 3, ...) and
        C{"dummy"} (an authentic dummy packet, Next Header 59).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _checkKeys(suite: ChildSuite, encrKey: bytes, integKey: bytes) -> None:
    encr, integ = suite.encr, suite.integ
    if len(encrKey) != encr.keyBytes:
        raise EspError(
            f"{encr.name} needs {encr.keyBytes} bytes of key, got {len(encrKey)}"
        )
    if encr.isAead:
        if integ is not None:
            raise EspError(
                f"{encr.name} is an AEAD cipher and takes no INTEG transform"
            )
        return
    if integ is None:
        raise EspError(f"{encr.name} needs an INTEG transform")
    if len(integKey) != integ.keyLength:
        raise EspError(
            f"{integ.name} needs {integ.keyLength} bytes of key, got {len(integKey)}"
        )


def _newAead(suite: ChildSuite, encrKey: bytes) -> AESGCM | ChaCha20Poly1305:
    key = encrKey[:-AEAD_SALT_LENGTH]
    if suite.encr.transformId == EncrId.AES_GCM_16:
        return AESGCM(key)
    if suite.encr.transformId == EncrId.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    raise EspError(
        f"{suite.encr.name} is not an ESP AEAD transform this hub implements"
    )


def _longLivedCbc(encrKey: bytes, decrypt: bool) -> CipherContext:
    """
    A CBC context to keep for the SA's lifetime; see L{_CbcEncryptor} and
    L{_CbcDecryptor} for how each turns it into per-packet IVs.
    """
    cipher = Cipher(algorithms.AES(encrKey), modes.CBC(bytes(_CBC_BLOCK)))
    return cipher.decryptor() if decrypt else cipher.encryptor()


class EspEncryptor:
    """
    Outbound protection for one ESP SA.

    C{EspEncryptor(suite, spi, encrKey, integKey)} returns an instance of the subclass
    for C{suite}'s cipher.

    @ivar spi: the SPI the peer chose, which goes in every packet.
    """

    __slots__ = ("_esn", "_maxSeq", "spi")

    def __new__(
        cls,
        suite: ChildSuite,
        spi: bytes,
        encrKey: bytes,
        integKey: bytes = b"",
    ) -> Self:
        concrete = cls
        if cls is EspEncryptor:
            concrete = _AeadEncryptor if suite.encr.isAead else _CbcEncryptor
        return object.__new__(concrete)

    def __init__(
        self,
        suite: ChildSuite,
        spi: bytes,
        encrKey: bytes,
        integKey: bytes = b"",
    ) -> None:
        """
        @param spi: 4 bytes, the peer's inbound SPI.
        @param encrKey: the outbound encryption key from KEYMAT, with the 4-byte salt
            at its end for the AEAD transforms.
        @param integKey: the outbound integrity key; empty for the AEAD transforms.
        @raise EspError: a key or SPI of the wrong size, or a suite ESP cannot use.
        """
        if len(spi) != 4:
            raise EspError(f"an ESP SPI is 4 bytes, got {len(spi)}")
        _checkKeys(suite, encrKey, integKey)
        self.spi = bytes(spi)
        self._esn = suite.esn
        self._maxSeq = MAX_SEQ_64 if suite.esn else MAX_SEQ_32

    def seal(self, seq: int, payload: bytes, nextHeader: int) -> bytes:
        """
        The ESP packet (SPI, Sequence Number, IV, ciphertext, ICV) carrying C{payload}.

        The trailer pads to the minimum: Padding 1, 2, 3, ... so that payload, padding
        and the two trailer bytes fill whole cipher blocks (16 bytes for CBC) and end
        on a 4-byte boundary.

        @param seq: this packet's sequence number, 1 for the SA's first packet; the
            caller counts, and must never reuse one (the AEAD IV is made from it).
        @param nextHeader: the IP protocol number of C{payload}.
        @raise SequenceOverflow: C{seq} is 0 or beyond what the SA may use.
        @raise EspError: C{nextHeader} is not 0-255.
        """
        raise NotImplementedError()

    def _overflow(self, seq: int) -> SequenceOverflow:
        return SequenceOverflow(
            f"sequence number {seq} is outside 1..{self._maxSeq}; the SA needs rekeying"
        )


class _AeadEncryptor(EspEncryptor):
    """
    AES-GCM-16 (RFC 4106) or ChaCha20-Poly1305 (RFC 7634). The explicit IV is the 64-bit
    sequence number, which both RFCs allow because it never repeats under one key; the
    nonce is the salt followed by it, and the AAD is SPI and sequence number (with the
    high 32 bits in the middle under ESN, RFC 4106 section 5).
    """

    __slots__ = ("_aead", "_salt")

    def __init__(self, suite, spi, encrKey, integKey=b""):
        super().__init__(suite, spi, encrKey, integKey)
        self._aead = _newAead(suite, encrKey)
        self._salt = encrKey[-AEAD_SALT_LENGTH:]

    def seal(self, seq: int, payload: bytes, nextHeader: int) -> bytes:
        if not 0 < seq <= self._maxSeq:
            raise self._overflow(seq)
        spi = self.spi
        head = _AEAD_HEAD.pack(spi, seq & MAX_SEQ_32, seq)
        padLength = -(len(payload) + 2) % _ESP_ALIGN
        return head + self._aead.encrypt(
            _NONCE.pack(self._salt, seq),
            payload
            + (
                _TRAILERS.get(nextHeader << 4 | padLength)
                or _trailer(padLength, nextHeader)
            ),
            _AAD_ESN.pack(spi, seq) if self._esn else head[:HEADER_LENGTH],
        )


class _CbcEncryptor(EspEncryptor):
    """
    AES-CBC (RFC 3602) then HMAC over SPI, sequence number, IV and ciphertext, truncated
    per RFC 4868 / RFC 2404; with ESN the high 32 bits of the sequence number are fed to
    the MAC after the ciphertext but never sent (RFC 4303 section 2.2.1).

    Making a CBC context per packet costs several microseconds, more than encrypting
    1400 bytes, so one context lives as long as the SA and keeps chaining. Each packet
    feeds it a fresh random block R (C{os.urandom}) ahead of the plaintext; what comes
    out for R is E_K(R xor C_prev), uniformly distributed and unpredictable because R
    is, and CBC then chains the payload from it exactly as from an IV. So that output
    block I{is} the packet's IV, and the receiver decrypts with standard CBC. This is
    the construction TLS 1.1 describes (RFC 4346 section 6.2.3.2, option 2b); it meets
    RFC 3602's requirement of an unpredictable IV.
    """

    __slots__ = ("_cbc", "_icvLength", "_mac")

    def __init__(self, suite, spi, encrKey, integKey=b""):
        super().__init__(suite, spi, encrKey, integKey)
        self._cbc = _longLivedCbc(encrKey, decrypt=False)
        self._mac = HMAC(integKey, suite.integ.hashAlgorithm)
        self._icvLength = suite.integ.icvLength

    def seal(self, seq: int, payload: bytes, nextHeader: int) -> bytes:
        if not 0 < seq <= self._maxSeq:
            raise self._overflow(seq)
        padLength = -(len(payload) + 2) % _CBC_BLOCK
        trailer = _TRAILERS.get(nextHeader << 4 | padLength) or _trailer(
            padLength, nextHeader
        )
        packet = _HEAD.pack(self.spi, seq & MAX_SEQ_32) + self._cbc.update(
            b"".join((os.urandom(_CBC_BLOCK), payload, trailer))
        )
        mac = self._mac.copy()
        mac.update(packet)
        if self._esn:
            mac.update(_U32.pack(seq >> 32))
        return packet + mac.finalize()[: self._icvLength]


class EspDecryptor:
    """
    Inbound protection for one ESP SA, with its anti-replay window.

    C{EspDecryptor(suite, spi, encrKey, integKey)} returns an instance of the subclass
    for C{suite}'s cipher. The decryptor owns the window (L{window}) because the order
    of checks is what keeps it safe: refuse what the window refuses before any
    cryptography, verify the ICV, and only then let the packet move the window (RFC
    4303 section 3.4.3). A caller may pass its own window, e.g. to size it from
    configuration.

    @ivar spi: our inbound SPI, the one the SAD found this SA by.
    @ivar window: the L{ReplayWindow}.
    """

    __slots__ = ("_esn", "_minLength", "spi", "window")

    def __new__(
        cls,
        suite: ChildSuite,
        spi: bytes,
        encrKey: bytes,
        integKey: bytes = b"",
        window: ReplayWindow | None = None,
    ) -> Self:
        concrete = cls
        if cls is EspDecryptor:
            concrete = _AeadDecryptor if suite.encr.isAead else _CbcDecryptor
        return object.__new__(concrete)

    def __init__(
        self,
        suite: ChildSuite,
        spi: bytes,
        encrKey: bytes,
        integKey: bytes = b"",
        window: ReplayWindow | None = None,
    ) -> None:
        """
        @param spi: 4 bytes, our inbound SPI.
        @param encrKey: the inbound encryption key, with the salt at its end for the
            AEAD transforms.
        @param integKey: the inbound integrity key; empty for the AEAD transforms.
        @param window: the anti-replay window to use; by default a new
            L{ReplayWindow} of its default size with the suite's ESN setting.
        @raise EspError: a key or SPI of the wrong size, a suite ESP cannot use, or a
            window whose ESN setting differs from the suite's.
        """
        if len(spi) != 4:
            raise EspError(f"an ESP SPI is 4 bytes, got {len(spi)}")
        _checkKeys(suite, encrKey, integKey)
        if window is None:
            window = ReplayWindow(esn=suite.esn)
        elif window.esn != suite.esn:
            raise EspError("the replay window's ESN setting differs from the SA's")
        self.spi = bytes(spi)
        self.window = window
        self._esn = suite.esn

    def open(self, packet: bytes) -> tuple[int, int, bytes]:
        """
        Authenticate and decrypt one ESP packet.

        @param packet: from the SPI to the end of the ICV (for UDP-encapsulated ESP,
            the UDP payload).
        @return: the full sequence number, the Next Header and the inner packet.
        @raise EspDropped: the packet must be dropped; C{reason} says why.
        """
        raise NotImplementedError()


def _unpad(seq: int, plaintext: bytes) -> tuple[int, int, bytes]:
    """
    Strip and check the trailer of an authenticated plaintext. Padding is checked as
    RFC 4303 section 2.4 says a receiver SHOULD; the window has already moved, since
    the packet was authentic.
    """
    if len(plaintext) < 2:
        raise EspDropped(DROP_MALFORMED)
    padLength = plaintext[-2]
    end = len(plaintext) - 2 - padLength
    if end < 0:
        raise EspDropped(DROP_MALFORMED)
    if padLength and not plaintext.startswith(_PAD_BYTES[padLength], end):
        raise EspDropped(DROP_PADDING)
    nextHeader = plaintext[-1]
    if nextHeader == NEXT_HEADER_DUMMY:
        raise EspDropped(DROP_DUMMY)
    return seq, nextHeader, plaintext[:end]


class _AeadDecryptor(EspDecryptor):
    """
    AES-GCM-16 or ChaCha20-Poly1305. These are stream modes, so any ciphertext length
    is accepted (a 4-byte misalignment is the sender's error but harms nothing).
    """

    __slots__ = ("_aead", "_salt")

    def __init__(self, suite, spi, encrKey, integKey=b"", window=None):
        super().__init__(suite, spi, encrKey, integKey, window)
        self._aead = _newAead(suite, encrKey)
        self._salt = encrKey[-AEAD_SALT_LENGTH:]
        # Header, IV, the two trailer bytes and the tag.
        self._minLength = HEADER_LENGTH + AEAD_IV_LENGTH + 2 + AEAD_TAG_LENGTH

    def open(self, packet: bytes) -> tuple[int, int, bytes]:
        if len(packet) < self._minLength:
            raise EspDropped(DROP_MALFORMED)
        window = self.window
        seq = window.check(_U32.unpack_from(packet, 4)[0])
        if seq is None:
            raise EspDropped(DROP_REPLAY)
        ivEnd = HEADER_LENGTH + AEAD_IV_LENGTH
        try:
            plaintext = self._aead.decrypt(
                self._salt + packet[HEADER_LENGTH:ivEnd],
                packet[ivEnd:],
                # The SPI as received: the ICV covers what is on the wire.
                _AAD_ESN.pack(packet[:4], seq) if self._esn else packet[:HEADER_LENGTH],
            )
        except InvalidTag:
            raise EspDropped(DROP_ICV) from None
        if not window.accept(seq):
            raise EspDropped(DROP_REPLAY)
        return _unpad(seq, plaintext)


class _CbcDecryptor(EspDecryptor):
    """
    HMAC first, then AES-CBC.

    Like the encryptor, it keeps one CBC context for the SA's lifetime instead of paying
    for a new one per packet. CBC decryption of a block needs only the block before it,
    so the packet's IV and ciphertext, which lie next to each other, are fed in
    together: the output for the IV block (chained from whatever came before) is
    discarded, and every later block comes out exactly as with a fresh context
    initialised with that IV. Only whole blocks are ever fed, so the context holds no
    partial block from one packet to the next.
    """

    __slots__ = ("_cbc", "_icvLength", "_mac")

    def __init__(self, suite, spi, encrKey, integKey=b"", window=None):
        super().__init__(suite, spi, encrKey, integKey, window)
        self._cbc = _longLivedCbc(encrKey, decrypt=True)
        self._mac = HMAC(integKey, suite.integ.hashAlgorithm)
        self._icvLength = suite.integ.icvLength
        # Header, IV, one block of ciphertext and the ICV.
        self._minLength = HEADER_LENGTH + CBC_IV_LENGTH + _CBC_BLOCK + self._icvLength

    def open(self, packet: bytes) -> tuple[int, int, bytes]:
        icvStart = len(packet) - self._icvLength
        if (
            len(packet) < self._minLength
            or (icvStart - HEADER_LENGTH - CBC_IV_LENGTH) % _CBC_BLOCK
        ):
            raise EspDropped(DROP_MALFORMED)
        window = self.window
        seq = window.check(_U32.unpack_from(packet, 4)[0])
        if seq is None:
            raise EspDropped(DROP_REPLAY)
        mac = self._mac.copy()
        mac.update(packet[:icvStart])
        if self._esn:
            mac.update(_U32.pack(seq >> 32))
        if not compare_digest(mac.finalize()[: self._icvLength], packet[icvStart:]):
            raise EspDropped(DROP_ICV)
        if not window.accept(seq):
            raise EspDropped(DROP_REPLAY)
        plaintext = self._cbc.update(packet[HEADER_LENGTH:icvStart])[CBC_IV_LENGTH:]
        return _unpad(seq, plaintext)
