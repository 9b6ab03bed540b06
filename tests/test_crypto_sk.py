"""
The SK payload: RFC 7634's IKEv2 example byte for byte, the RFC 7296 / RFC 5282 layout
checked by decrypting with cryptography directly, round trips for every ENCR/INTEG
combination, and every kind of tampering ending in IntegrityError or DecryptError.
"""

from __future__ import annotations

import itertools
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from ikehub.crypto import (
    CryptoError,
    DecryptError,
    IkeKeys,
    IkeSuite,
    IntegrityError,
    SKCodec,
    encrAlgorithm,
    ikeSkCodecs,
    integAlgorithm,
    prfAlgorithm,
)
from ikehub.wire import (
    AuthPayload,
    IDiPayload,
    IKEHeader,
    Message,
    NotifyPayload,
    ParseError,
    SKFPayload,
    SKPayload,
    encodePayloadChain,
)
from ikehub.wire.constants import (
    GENERIC_PAYLOAD_HEADER_LENGTH,
    IKE_HEADER_LENGTH,
    EncrId,
    ExchangeType,
    HeaderFlag,
    IntegId,
    NotifyType,
    PayloadType,
    PrfId,
)

ENCRS = [
    encrAlgorithm(EncrId.AES_CBC, 128),
    encrAlgorithm(EncrId.AES_CBC, 192),
    encrAlgorithm(EncrId.AES_CBC, 256),
    encrAlgorithm(EncrId.AES_GCM_16, 128),
    encrAlgorithm(EncrId.AES_GCM_16, 192),
    encrAlgorithm(EncrId.AES_GCM_16, 256),
    encrAlgorithm(EncrId.CHACHA20_POLY1305),
]
INTEGS = [
    integAlgorithm(IntegId.HMAC_SHA1_96),
    integAlgorithm(IntegId.HMAC_SHA2_256_128),
    integAlgorithm(IntegId.HMAC_SHA2_384_192),
    integAlgorithm(IntegId.HMAC_SHA2_512_256),
]
COMBINATIONS = [(e, None) for e in ENCRS if e.isAead] + [
    (e, i) for e in ENCRS if not e.isAead for i in INTEGS
]


def _name(value):
    return value.name if value is not None else "aead"


def _codec(encr, integ, **kwargs) -> SKCodec:
    encrKey = os.urandom(encr.keyBytes)
    integKey = os.urandom(integ.keyLength) if integ is not None else b""
    return SKCodec(encr, integ, encrKey, integKey, **kwargs), encrKey, integKey


def _pair(encr, integ):
    """A sender and a receiver sharing keys, as two peers' codecs would."""
    sender, encrKey, integKey = _codec(encr, integ)
    return sender, SKCodec(encr, integ, encrKey, integKey), encrKey, integKey


HEADER = IKEHeader(b"\x01" * 8, b"\x02" * 8, 0, ExchangeType.IKE_AUTH, HeaderFlag.INITIATOR, 1)
PAYLOADS = (
    IDiPayload(2, b"client1.example"),
    AuthPayload(2, bytes(range(32))),
    NotifyPayload(0, NotifyType.INITIAL_CONTACT),
)


def _unprotect(codec: SKCodec, datagram: bytes):
    return codec.unprotect(datagram, Message.fromBytes(datagram))


def test_chachaMatchesRfc7634IKEv2Example():
    """
    RFC 7634's IKEv2 example (also in strongSwan's test_message_chapoly.c): an
    INFORMATIONAL request with SET_WINDOW_SIZE(10) under KEYMAT 80..9f | a0a1a2a3 and
    IV 1011121314151617 is exactly the published datagram, and decrypts back.
    """
    encr = encrAlgorithm(EncrId.CHACHA20_POLY1305)
    key = bytes(range(0x80, 0xA0)) + bytes.fromhex("a0a1a2a3")
    codec = SKCodec(encr, None, key, b"", ivSeed=0x1011121314151617)
    header = IKEHeader(
        bytes.fromhex("c0c1c2c3c4c5c6c7"),
        bytes.fromhex("d0d1d2d3d4d5d6d7"),
        0,
        ExchangeType.INFORMATIONAL,
        0,
        9,
    )
    notify = NotifyPayload(0, NotifyType.SET_WINDOW_SIZE, b"", (10).to_bytes(4, "big"))
    expected = bytes.fromhex(
        "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d7"
        "2e20250000000009000000452900002910111213141516176103"
        "94701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2"
    )
    assert codec.protect(header, [notify]) == expected
    receiver = SKCodec(encr, None, key, b"")
    assert _unprotect(receiver, expected) == (notify,)


@pytest.mark.parametrize("encr,integ", COMBINATIONS, ids=lambda v: _name(v))
def test_roundTripEveryCombination(encr, integ):
    """Every ENCR/INTEG pair returns the payloads it protected, for many lengths."""
    sender, receiver, _, _ = _pair(encr, integ)
    for size in range(40):
        payloads = (IDiPayload(2, b"x" * size), *PAYLOADS[1:])
        datagram = sender.protect(HEADER, payloads)
        assert _unprotect(receiver, datagram) == payloads
    assert _unprotect(receiver, sender.protect(HEADER, ())) == ()


@pytest.mark.parametrize("encr,integ", COMBINATIONS, ids=lambda v: _name(v))
def test_protectFillsHeaderAndSkGenericHeader(encr, integ):
    """
    The header says next payload SK and the datagram's length; the SK payload's own
    next-payload field names the first inner payload and its length runs to the end.
    """
    sender, _, _, _ = _pair(encr, integ)
    datagram = sender.protect(HEADER, PAYLOADS)
    message = Message.fromBytes(datagram)
    assert message.header.nextPayload == PayloadType.SK
    assert message.header.length == len(datagram)
    assert (message.header.spiI, message.header.messageId) == (HEADER.spiI, 1)
    assert message.payloads == (message.sk,)
    assert message.sk.firstPayload == PayloadType.IDi
    assert datagram[28] == PayloadType.IDi and datagram[29] == 0
    assert int.from_bytes(datagram[30:32], "big") == len(datagram) - 28


@pytest.mark.parametrize(
    "encr,integ", [c for c in COMBINATIONS if c[1] is not None], ids=lambda v: _name(v)
)
def test_cbcLayoutIsRfc7296Section3_14(encr, integ):
    """
    Decrypted with cryptography directly: IV (a block) then ciphertext then ICV, the
    ICV being INTEG over the header's first byte to the ciphertext's last, and the
    plaintext the payload chain, padding, and a pad-length byte, a multiple of 16.
    """
    sender, _, encrKey, integKey = _pair(encr, integ)
    datagram = sender.protect(HEADER, PAYLOADS)
    icvLength = integ.icvLength
    body = datagram[32 : len(datagram) - icvLength]
    iv, ciphertext = body[:16], body[16:]
    assert len(ciphertext) % 16 == 0
    assert integ.compute(integKey, datagram[:-icvLength]) == datagram[-icvLength:]
    decryptor = Cipher(algorithms.AES(encrKey), modes.CBC(iv)).decryptor()
    plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    padLength = plaintext[-1]
    _, chain = encodePayloadChain(PAYLOADS)
    assert plaintext[: len(plaintext) - padLength - 1] == chain
    assert padLength < 16


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_gcmLayoutIsRfc5282(bits):
    """
    Decrypted with cryptography's AESGCM directly: nonce = salt (last 4 key bytes) |
    8-byte IV, AAD = IKE header | SK generic header (RFC 5282 section 5.1), a 16-byte
    tag, and no padding beyond the pad-length byte.
    """
    encr = encrAlgorithm(EncrId.AES_GCM_16, bits)
    sender, _, encrKey, _ = _pair(encr, None)
    datagram = sender.protect(HEADER, PAYLOADS)
    iv = datagram[32:40]
    aead = AESGCM(encrKey[:-4])
    plaintext = aead.decrypt(encrKey[-4:] + iv, datagram[40:], datagram[:32])
    _, chain = encodePayloadChain(PAYLOADS)
    assert plaintext == chain + b"\x00"


def test_aeadIvsNeverRepeatAndStartAtTheSeed():
    encr = encrAlgorithm(EncrId.AES_GCM_16, 128)
    codec, _, _ = _codec(encr, None, ivSeed=0xDEADBEEF00000000)
    ivs = [codec.protect(HEADER, PAYLOADS)[32:40] for _ in range(1000)]
    assert ivs[0] == (0xDEADBEEF00000000).to_bytes(8, "big")
    assert len(set(ivs)) == len(ivs)


def test_aeadIvSeedIsRandomByDefault():
    encr = encrAlgorithm(EncrId.AES_GCM_16, 128)
    first = {_codec(encr, None)[0].protect(HEADER, PAYLOADS)[32:40] for _ in range(8)}
    assert len(first) == 8


def test_cbcIvsAreFreshPerMessage():
    sender, _, _, _ = _pair(ENCRS[0], INTEGS[1])
    ivs = {sender.protect(HEADER, PAYLOADS)[32:48] for _ in range(50)}
    assert len(ivs) == 50


@pytest.mark.parametrize(
    "encr,integ",
    [(ENCRS[0], INTEGS[1]), (ENCRS[5], None), (ENCRS[6], None), (ENCRS[2], INTEGS[3])],
    ids=lambda v: _name(v),
)
def test_anySingleBitFlipIsRejected(encr, integ):
    """
    Flipping any one bit of the header or the SK payload either makes the datagram
    unparseable or fails the ICV; it never decrypts.
    """
    sender, receiver, _, _ = _pair(encr, integ)
    datagram = sender.protect(HEADER, PAYLOADS)
    for position in range(len(datagram)):
        for bit in (0, 7):
            tampered = bytearray(datagram)
            tampered[position] ^= 1 << bit
            tampered = bytes(tampered)
            try:
                message = Message.fromBytes(tampered)
            except ParseError:
                continue
            if isinstance(message.sk, SKPayload):
                with pytest.raises(IntegrityError):
                    receiver.unprotect(tampered, message)
            else:
                with pytest.raises(DecryptError):
                    receiver.unprotect(tampered, message)


@pytest.mark.parametrize(
    "encr,integ", [(ENCRS[0], INTEGS[1]), (ENCRS[3], None)], ids=lambda v: _name(v)
)
def test_flipsInHeaderFieldsIvCiphertextAndIcvFailIntegrity(encr, integ):
    """Named positions that always parse: SPIs, flags, message ID, IV, body, ICV."""
    sender, receiver, _, _ = _pair(encr, integ)
    datagram = sender.protect(HEADER, PAYLOADS)
    for position in (
        0,
        8,
        18,
        19,
        23,
        28,
        33,
        40,
        len(datagram) // 2,
        len(datagram) - 1,
    ):
        tampered = bytearray(datagram)
        tampered[position] ^= 0x01
        with pytest.raises(IntegrityError):
            _unprotect(receiver, bytes(tampered))


@pytest.mark.parametrize(
    "encr,integ", [(ENCRS[0], INTEGS[1]), (ENCRS[5], None)], ids=lambda v: _name(v)
)
def test_truncatedBodyIsRejected(encr, integ):
    """
    An SK body cut short (with lengths fixed up so that it parses) fails: DecryptError
    when too short for IV and ICV, IntegrityError otherwise.
    """
    sender, receiver, _, _ = _pair(encr, integ)
    datagram = sender.protect(HEADER, PAYLOADS)
    sk = Message.fromBytes(datagram).sk
    minimum = encr.ivLength + (integ.icvLength if integ else encr.icvLength)
    for keep in range(len(sk.encrypted)):
        short = Message(HEADER, (SKPayload(sk.firstPayload, sk.encrypted[:keep]),)).toBytes()
        expected = DecryptError if keep < minimum else IntegrityError
        with pytest.raises(expected):
            _unprotect(receiver, short)


def _cbcDatagram(encrKey, integ, integKey, plaintext, firstPayload=PayloadType.NOTIFY):
    """An SK datagram built by hand, with a valid ICV over whatever C{plaintext} is."""
    iv = os.urandom(16)
    if len(plaintext) % 16:
        ciphertext = plaintext
    else:
        encryptor = Cipher(algorithms.AES(encrKey), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    body = iv + ciphertext + bytes(integ.icvLength)
    unsigned = Message(HEADER, (SKPayload(firstPayload, body),)).toBytes()
    signed = unsigned[: -integ.icvLength]
    return signed + integ.compute(integKey, signed)


def test_cbcPadLengthBeyondPlaintextIsDecryptError():
    encr, integ = ENCRS[0], INTEGS[1]
    _, receiver, encrKey, integKey = _pair(encr, integ)
    for padLength in (16, 200, 255):
        datagram = _cbcDatagram(encrKey, integ, integKey, bytes(15) + bytes((padLength,)))
        with pytest.raises(DecryptError):
            _unprotect(receiver, datagram)


def test_cbcPartialBlockWithValidIcvIsDecryptError():
    encr, integ = ENCRS[0], INTEGS[1]
    _, receiver, encrKey, integKey = _pair(encr, integ)
    datagram = _cbcDatagram(encrKey, integ, integKey, bytes(17))
    with pytest.raises(DecryptError):
        _unprotect(receiver, datagram)


def test_cbcAcceptsAnyPadLengthThatAligns():
    """RFC 7296: the recipient MUST accept any padding that gives proper alignment."""
    encr, integ = ENCRS[0], INTEGS[1]
    _, receiver, encrKey, integKey = _pair(encr, integ)
    _, chain = encodePayloadChain(PAYLOADS[2:])
    padLength = 32 - len(chain) - 1
    plaintext = chain + b"\xff" * padLength + bytes((padLength,))
    datagram = _cbcDatagram(encrKey, integ, integKey, plaintext)
    assert _unprotect(receiver, datagram) == PAYLOADS[2:]


def _gcmDatagram(encrKey, plaintext, firstPayload=PayloadType.NOTIFY):
    iv = os.urandom(8)
    body = iv + bytes(len(plaintext) + 16)
    prefix = Message(HEADER, (SKPayload(firstPayload, body),)).toBytes()[:32]
    sealed = AESGCM(encrKey[:-4]).encrypt(encrKey[-4:] + iv, plaintext, prefix)
    return prefix + iv + sealed


def test_aeadPadLengthBeyondPlaintextIsDecryptError():
    encr = ENCRS[3]
    _, receiver, encrKey, _ = _pair(encr, None)
    for plaintext in (bytes(10) + bytes((11,)), b"\x01", b"\x00" * 3 + b"\xff"):
        with pytest.raises(DecryptError):
            _unprotect(receiver, _gcmDatagram(encrKey, plaintext))


def test_aeadEmptyPlaintextIsDecryptError():
    """A valid tag over nothing still lacks the pad-length byte."""
    encr = ENCRS[3]
    _, receiver, encrKey, _ = _pair(encr, None)
    with pytest.raises(DecryptError):
        _unprotect(receiver, _gcmDatagram(encrKey, b""))


def test_aeadPaddingIsAccepted():
    encr = ENCRS[3]
    _, receiver, encrKey, _ = _pair(encr, None)
    _, chain = encodePayloadChain(PAYLOADS)
    datagram = _gcmDatagram(encrKey, chain + bytes(5) + b"\x05", PayloadType.IDi)
    assert _unprotect(receiver, datagram) == PAYLOADS


def test_malformedInnerChainRaisesParseError():
    """After a valid tag, a broken payload chain is the wire codec's ParseError."""
    encr = ENCRS[3]
    _, receiver, encrKey, _ = _pair(encr, None)
    datagram = _gcmDatagram(encrKey, b"\x00\x00\x00\x02" + b"\x00")
    with pytest.raises(ParseError):
        _unprotect(receiver, datagram)


def test_messageWithoutSkPayloadIsDecryptError():
    _, receiver, _, _ = _pair(ENCRS[3], None)
    plain = Message(HEADER, PAYLOADS).toBytes()
    with pytest.raises(DecryptError):
        _unprotect(receiver, plain)
    fragment = Message(HEADER, (SKFPayload(PayloadType.IDi, 1, 2, bytes(40)),)).toBytes()
    with pytest.raises(DecryptError):
        _unprotect(receiver, fragment)


def test_ikeSkCodecsPairDirections():
    """
    The initiator's outbound codec uses SK_ei/SK_ai and its inbound SK_er/SK_ar, so each
    side reads what the other writes and nobody reads its own messages.
    """
    suite = IkeSuite(ENCRS[0], INTEGS[1], prfAlgorithm(PrfId.HMAC_SHA2_256), 31)
    keys = IkeKeys(
        os.urandom(32),
        os.urandom(32),
        os.urandom(32),
        os.urandom(16),
        os.urandom(16),
        os.urandom(32),
        os.urandom(32),
    )
    initiatorOut, initiatorIn = ikeSkCodecs(suite, keys, isInitiator=True)
    responderOut, responderIn = ikeSkCodecs(suite, keys, isInitiator=False)
    request = initiatorOut.protect(HEADER, PAYLOADS)
    response = responderOut.protect(HEADER, PAYLOADS[2:])
    assert _unprotect(responderIn, request) == PAYLOADS
    assert _unprotect(initiatorIn, response) == PAYLOADS[2:]
    with pytest.raises(IntegrityError):
        _unprotect(initiatorIn, request)
    manual = SKCodec(ENCRS[0], INTEGS[1], keys.skEi, keys.skAi)
    assert _unprotect(manual, request) == PAYLOADS


def test_ikeSkCodecsDrawIndependentAeadIvs():
    """
    Each direction's AEAD IVs start from its own random seed, in every IKE SA: the first
    messages of the two directions, and of two SAs, carry different IVs.
    """
    gcm = ENCRS[3]
    suite = IkeSuite(gcm, None, prfAlgorithm(PrfId.HMAC_SHA2_256), 31)
    keys = IkeKeys(
        os.urandom(32),
        b"",
        b"",
        os.urandom(gcm.keyBytes),
        os.urandom(gcm.keyBytes),
        os.urandom(32),
        os.urandom(32),
    )
    ivStart = IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH

    def firstIvs():
        out, back = ikeSkCodecs(suite, keys, isInitiator=True)
        return tuple(c.protect(HEADER, PAYLOADS)[ivStart : ivStart + 8] for c in (out, back))

    first, second = firstIvs(), firstIvs()
    assert first[0] != first[1]
    assert len(set(first + second)) == 4


def test_codecRefusesInconsistentConstruction():
    gcm, cbc, sha256 = ENCRS[3], ENCRS[0], INTEGS[1]
    for args in (
        (gcm, sha256, bytes(gcm.keyBytes), bytes(32)),
        (cbc, None, bytes(16), b""),
        (cbc, sha256, bytes(15), bytes(32)),
        (cbc, sha256, bytes(16), bytes(20)),
        (gcm, None, bytes(16), b""),
    ):
        with pytest.raises(CryptoError):
            SKCodec(*args)


def test_reprShowsAlgorithmsNotKeys():
    codec = SKCodec(ENCRS[0], INTEGS[1], b"\x11" * 16, b"\x22" * 32)
    assert repr(codec) == "<SKCodec aes128/sha256>"


def test_everyCombinationIsCovered():
    """7 ciphers, of which the 3 CBC ones pair with 4 integrity algorithms: 16 in all."""
    assert len(COMBINATIONS) == 4 + 3 * 4
    assert len(set(itertools.chain.from_iterable(COMBINATIONS)) - {None}) == 11


_MUTATION_SENDER, _MUTATION_RECEIVER, _, _ = _pair(ENCRS[0], INTEGS[1])
_MUTATION_BASE = _MUTATION_SENDER.protect(HEADER, PAYLOADS)


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(_MUTATION_BASE) - 1), st.integers(0, 255)),
        max_size=4,
    ),
    cut=st.integers(0, 64),
)
def test_mutatedDatagramsRaiseOnlyTypedErrors(edits, cut):
    """
    Whatever bytes arrive, parsing plus unprotect either fails with ParseError,
    IntegrityError or DecryptError, or returns the original payloads (no edits).
    """
    tampered = bytearray(_MUTATION_BASE)
    for position, value in edits:
        tampered[position] = value
    tampered = bytes(tampered[: len(tampered) - cut])
    try:
        message = Message.fromBytes(tampered)
        payloads = _MUTATION_RECEIVER.unprotect(tampered, message)
    except (ParseError, IntegrityError, DecryptError):
        return
    assert tampered == _MUTATION_BASE and payloads == PAYLOADS


# -- SKF fragments (RFC 7383) ------------------------------------------------------------------


@pytest.mark.parametrize("encr,integ", COMBINATIONS, ids=lambda v: _name(v))
def test_fragmentsRoundTripWithinTheSizeEveryCombination(encr, integ):
    """
    protectFragments: a message that fits comes back as one SK datagram; a larger one as SKF
    fragments numbered 1..n, each at most maxSize bytes and each opening on its own, the first
    naming the first inner payload, whose pieces join to the payload chain.
    """
    from ikehub.wire.message import decodePayloadChain, encodePayloadChain

    sender, receiver, _, _ = _pair(encr, integ)
    payloads = (IDiPayload(2, bytes(1500)), *PAYLOADS[1:])
    whole = sender.protectFragments(HEADER, payloads, 4000)
    assert type(whole) is bytes and Message.fromBytes(whole).header.nextPayload == PayloadType.SK
    assert _unprotect(receiver, whole) == payloads
    for maxSize in (200, 333, 576, 1248):
        fragments = sender.protectFragments(HEADER, payloads, maxSize)
        assert type(fragments) is tuple and len(fragments) > 1
        pieces = []
        for number, datagram in enumerate(fragments, 1):
            assert len(datagram) <= maxSize
            message = Message.fromBytes(datagram)
            assert message.header.nextPayload == PayloadType.SKF
            skf = message.sk
            assert (skf.fragmentNumber, skf.totalFragments) == (number, len(fragments))
            assert skf.firstPayload == (PayloadType.IDi if number == 1 else 0)
            pieces.append(receiver.open(datagram, skf.encrypted))
        assert b"".join(pieces) == encodePayloadChain(payloads)[1]
        assert decodePayloadChain(PayloadType.IDi, b"".join(pieces)) == payloads


def test_fragmentSizeTooSmallForAnyPayloadIsRefused():
    """A maxSize that leaves no room for a byte of payload in a fragment is a ValueError."""
    sender, _, _, _ = _pair(ENCRS[-1], None)
    with pytest.raises(ValueError):
        sender.protectFragments(HEADER, PAYLOADS, 28 + 4 + 4 + 8 + 16)
