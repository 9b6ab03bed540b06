"""
Tests for L{ikehub.wire.message}: payload chains and whole IKE messages.
"""

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from ikehub.wire import (
    BadLengthError,
    DeletePayload,
    EAPPayload,
    IDiPayload,
    IDPayload,
    IDrPayload,
    IKEHeader,
    KEPayload,
    Message,
    NoncePayload,
    NotifyPayload,
    ParseError,
    SAPayload,
    SKFPayload,
    SKPayload,
    TruncatedError,
    UnsupportedCriticalPayload,
    VendorIDPayload,
    decodePayloadChain,
    encodePayloadChain,
)
from ikehub.wire.constants import (
    NON_ESP_MARKER,
    ExchangeType,
    HeaderFlag,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
)

STRONGSWAN_CAPTURE = Path(__file__).parent / "data" / "strongswan_ike_sa_init_request.bin"
STRONGSWAN_RESPONSE = Path(__file__).parent / "data" / "strongswan_ike_sa_init_response.bin"

SPI_I = bytes.fromhex("1111111111111111")
SPI_R = bytes.fromhex("2222222222222222")

# By hand from RFC 7296 figures 4 and 5: an INFORMATIONAL request carrying
# N(INITIAL_CONTACT) then D(IKE), chained Notify (41) -> Delete (42) -> none.
# fmt: off
INFORMATIONAL = bytes.fromhex(
    "1111111111111111" "2222222222222222" "29" "20" "25" "08" "00000001" "0000002c"
    "2a" "00" "0008" "00" "00" "4000"
    "00" "00" "0008" "01" "00" "0000"
)
# fmt: on


def header(nextPayload: int = 0, length: int = 0) -> IKEHeader:
    return IKEHeader(
        SPI_I,
        SPI_R,
        nextPayload,
        ExchangeType.INFORMATIONAL,
        HeaderFlag.INITIATOR,
        1,
        length,
    )


def generic(nextType: int, body: bytes, critical: bool = False) -> bytes:
    """A payload with its generic header, by hand."""
    return bytes([nextType, 0x80 if critical else 0]) + (4 + len(body)).to_bytes(2, "big") + body


def datagram(firstType: int, chain: bytes) -> bytes:
    """A header (by hand) in front of C{chain}, with the right length field."""
    return (
        SPI_I
        + SPI_R
        + bytes([firstType, 0x20, 37, 0x08])
        + (1).to_bytes(4, "big")
        + (28 + len(chain)).to_bytes(4, "big")
        + chain
    )


class StrongSwanCaptureTests(SynchronousTestCase):
    """
    The IKE_SA_INIT request of a real strongSwan 5.9.8 client, captured into tests/data by
    tests/tools/make_fixtures.py.
    """

    def setUp(self) -> None:
        data = STRONGSWAN_CAPTURE.read_bytes()
        # A capture taken on UDP 4500 starts with the non-ESP marker; an initiator
        # SPI is never zero, so four zero bytes can only be that marker.
        self.data = data.removeprefix(NON_ESP_MARKER)
        self.message = Message.fromBytes(self.data)

    def test_header(self) -> None:
        """An initiator's first request: IKE_SA_INIT, I flag only, message ID 0."""
        h = self.message.header
        self.assertEqual(h.exchangeType, ExchangeType.IKE_SA_INIT)
        self.assertEqual(h.flags, HeaderFlag.INITIATOR)
        self.assertEqual(h.messageId, 0)
        self.assertEqual(h.spiR, bytes(8))
        self.assertNotEqual(h.spiI, bytes(8))

    def test_payloads(self) -> None:
        """SA, KE, Nonce first; then only notifies and vendor IDs."""
        types = [p.PAYLOAD_TYPE for p in self.message.payloads]
        self.assertEqual(types[:3], [PayloadType.SA, PayloadType.KE, PayloadType.NONCE])
        self.assertLessEqual(set(types[3:]), {PayloadType.NOTIFY, PayloadType.VENDOR_ID})
        sa = self.message.get(SAPayload)
        for proposal in sa.proposals:
            self.assertEqual(proposal.protocolId, ProtocolId.IKE)
            self.assertEqual(proposal.spi, b"")
        groups = {
            t.transformId for t in sa.proposals[0].transforms if t.transformType == TransformType.KE
        }
        self.assertIn(self.message.get(KEPayload).group, groups)
        self.assertTrue(16 <= len(self.message.get(NoncePayload).nonce) <= 256)

    def test_notifies(self) -> None:
        """NAT detection, fragmentation and signature hash notifies are present."""
        types = {n.notifyType for n in self.message.notifies()}
        for expected in (
            NotifyType.NAT_DETECTION_SOURCE_IP,
            NotifyType.NAT_DETECTION_DESTINATION_IP,
            NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
            NotifyType.SIGNATURE_HASH_ALGORITHMS,
        ):
            self.assertIn(expected, types)
        self.assertEqual(len(self.message.getNotify(NotifyType.NAT_DETECTION_SOURCE_IP).data), 20)

    def test_reencodesByteForByte(self) -> None:
        """Nothing strongSwan sends is lost or reordered by decoding."""
        self.assertEqual(self.message.toBytes(), self.data)


class StrongSwanResponseCaptureTests(SynchronousTestCase):
    """
    A stock strongSwan responder's answer to that same request.
    """

    def setUp(self) -> None:
        self.request = Message.fromBytes(STRONGSWAN_CAPTURE.read_bytes())
        self.data = STRONGSWAN_RESPONSE.read_bytes()
        self.message = Message.fromBytes(self.data)

    def test_answersTheRequest(self) -> None:
        """Same initiator SPI, a fresh responder SPI, the R flag, message ID 0."""
        h = self.message.header
        self.assertEqual(h.spiI, self.request.header.spiI)
        self.assertNotEqual(h.spiR, bytes(8))
        self.assertTrue(h.isResponse)
        self.assertFalse(h.isInitiator)
        self.assertEqual(h.messageId, 0)

    def test_oneProposalOneTransformPerType(self) -> None:
        [proposal] = self.message.get(SAPayload).proposals
        types = [t.transformType for t in proposal.transforms]
        self.assertEqual(len(types), len(set(types)))
        self.assertEqual(self.message.get(KEPayload).group, 31)

    def test_reencodesByteForByte(self) -> None:
        self.assertEqual(self.message.toBytes(), self.data)


class MessageEncodingTests(SynchronousTestCase):
    def test_encodesHandWrittenMessage(self) -> None:
        """Payloads are chained by type and the header gets the first type and length."""
        message = Message(
            header(),
            (
                NotifyPayload(ProtocolId.NONE, NotifyType.INITIAL_CONTACT),
                DeletePayload(ProtocolId.IKE, ()),
            ),
        )
        self.assertEqual(message.toBytes(), INFORMATIONAL)

    def test_decodesHandWrittenMessage(self) -> None:
        """The same bytes decode to the same payloads, header fields as on the wire."""
        message = Message.fromBytes(INFORMATIONAL)
        self.assertEqual(message.header, header(PayloadType.NOTIFY, 44))
        self.assertEqual(
            message.payloads,
            (
                NotifyPayload(ProtocolId.NONE, NotifyType.INITIAL_CONTACT),
                DeletePayload(ProtocolId.IKE, ()),
            ),
        )

    def test_headerFieldsRecomputed(self) -> None:
        """Stale nextPayload and length in the header are replaced on encoding."""
        stale = Message(header(PayloadType.SA, 9999), Message.fromBytes(INFORMATIONAL).payloads)
        self.assertEqual(stale.toBytes(), INFORMATIONAL)

    def test_emptyMessage(self) -> None:
        """A message without payloads is a bare header: next payload 0, length 28."""
        data = Message(header(), ()).toBytes()
        self.assertEqual(data, INFORMATIONAL[:16] + bytes.fromhex("00202508000000010000001c"))
        self.assertEqual(Message.fromBytes(data).payloads, ())

    def test_payloadListBecomesTuple(self) -> None:
        """A list of payloads is stored as a tuple, so messages stay hashable."""
        message = Message(header(), [NoncePayload(b"n" * 16)])
        self.assertIsInstance(message.payloads, tuple)
        hash(message)

    def test_acceptsBytearray(self) -> None:
        """A datagram handed over as bytearray decodes like bytes."""
        self.assertEqual(
            Message.fromBytes(bytearray(INFORMATIONAL)),
            Message.fromBytes(INFORMATIONAL),
        )


class ChainEncodingTests(SynchronousTestCase):
    def test_emptyChain(self) -> None:
        """No payloads: first type 0 and no bytes."""
        self.assertEqual(encodePayloadChain(()), (0, b""))

    def test_linksPayloadsByType(self) -> None:
        """Each generic header names the following payload's type, the last 0."""
        firstType, chain = encodePayloadChain([NoncePayload(b"\x01" * 4), VendorIDPayload(b"v")])
        self.assertEqual(firstType, PayloadType.NONCE)
        self.assertEqual(chain, generic(PayloadType.VENDOR_ID, b"\x01" * 4) + generic(0, b"v"))

    def test_skWritesFirstPayloadAsItsNext(self) -> None:
        """An SK payload's own next-payload field holds its firstPayload."""
        firstType, chain = encodePayloadChain(
            [VendorIDPayload(b"v"), SKPayload(PayloadType.IDi, b"\xee" * 8)]
        )
        self.assertEqual(firstType, PayloadType.VENDOR_ID)
        self.assertEqual(
            chain, generic(PayloadType.SK, b"v") + generic(PayloadType.IDi, b"\xee" * 8)
        )

    def test_skfWritesFirstPayloadAsItsNext(self) -> None:
        """An SKF payload's own next-payload field holds its firstPayload."""
        firstType, chain = encodePayloadChain([SKFPayload(PayloadType.IDi, 1, 2, b"c")])
        self.assertEqual(firstType, PayloadType.SKF)
        self.assertEqual(chain, generic(PayloadType.IDi, bytes.fromhex("00010002") + b"c"))

    def test_skMustBeLast(self) -> None:
        """Nothing can follow SK or SKF: their next-payload field is taken."""
        for encrypted in (SKPayload(0, b""), SKFPayload(0, 1, 1, b"")):
            self.assertRaises(ValueError, encodePayloadChain, [encrypted, NoncePayload(b"n" * 16)])

    def test_payloadTooLong(self) -> None:
        """A payload whose length does not fit 16 bits cannot be encoded."""
        self.assertRaises(ValueError, encodePayloadChain, [NoncePayload(b"n" * 65532)])
        encodePayloadChain([NoncePayload(b"n" * 65531)])

    def test_fieldOutOfRange(self) -> None:
        """A field too large for the wire is a ValueError, not a struct.error."""
        self.assertRaises(ValueError, encodePayloadChain, [KEPayload(70000, b"")])
        self.assertRaises(ValueError, encodePayloadChain, [SKPayload(256, b"")])


class ChainDecodingTests(SynchronousTestCase):
    def test_noPayloads(self) -> None:
        """First type 0 with no data is an empty chain."""
        self.assertEqual(decodePayloadChain(0, b""), ())

    def test_bytesWithoutPayloads(self) -> None:
        """First type 0 but bytes present: leftover, BadLengthError."""
        self.assertRaises(BadLengthError, decodePayloadChain, 0, b"\x00\x00\x00\x04")

    def test_genericHeaderTruncated(self) -> None:
        """A chain that promises a payload but has under 4 bytes is a TruncatedError."""
        for data in (b"", b"\x00", b"\x00\x00\x00"):
            self.assertRaises(TruncatedError, decodePayloadChain, PayloadType.NONCE, data)

    def test_payloadLengthBelowHeader(self) -> None:
        """Payload lengths 0 to 3 are a BadLengthError (never a loop or a bad slice)."""
        for length in range(4):
            data = b"\x00\x00" + length.to_bytes(2, "big") + b"\x00" * 8
            self.assertRaises(BadLengthError, decodePayloadChain, PayloadType.NONCE, data)

    def test_payloadLengthBeyondData(self) -> None:
        """A payload length past the end of the data is a BadLengthError."""
        data = b"\x00\x00\x00\x09" + b"\x00" * 4
        self.assertRaises(BadLengthError, decodePayloadChain, PayloadType.NONCE, data)

    def test_leftoverAfterLastPayload(self) -> None:
        """Bytes after the payload whose next type is 0 are a BadLengthError."""
        data = generic(0, b"n" * 16) + b"\x00"
        self.assertRaises(BadLengthError, decodePayloadChain, PayloadType.NONCE, data)

    def test_criticalUnknownPayload(self) -> None:
        """
        An unknown type with the critical bit set raises UnsupportedCriticalPayload,
        whose notify data is the type as one byte (RFC 7296 section 2.5).
        """
        data = generic(PayloadType.NONCE, b"???", critical=True) + generic(0, b"n" * 16)
        error = self.assertRaises(UnsupportedCriticalPayload, decodePayloadChain, 200, data)
        self.assertEqual(error.payloadType, 200)
        self.assertEqual(error.notifyType, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)
        self.assertEqual(error.notifyData, b"\xc8")
        self.assertIn("200", str(error))

    def test_nonCriticalUnknownPayloadSkipped(self) -> None:
        """An unknown type without the critical bit is skipped; the chain goes on."""
        data = (
            generic(200, NotifyPayload(0, NotifyType.INITIAL_CONTACT).bodyBytes())
            + generic(PayloadType.NONCE, b"ignored")
            + generic(0, b"n" * 16)
        )
        self.assertEqual(
            decodePayloadChain(PayloadType.NOTIFY, data),
            (NotifyPayload(0, NotifyType.INITIAL_CONTACT), NoncePayload(b"n" * 16)),
        )

    def test_criticalBitIgnoredOnKnownPayload(self) -> None:
        """The critical bit on a payload we understand changes nothing."""
        data = generic(0, b"n" * 16, critical=True)
        self.assertEqual(decodePayloadChain(PayloadType.NONCE, data), (NoncePayload(b"n" * 16),))

    def test_tooManyPayloads(self) -> None:
        """64 payloads are fine, a 65th is a ParseError."""
        nonce = generic(PayloadType.NONCE, b"n" * 16)
        last = generic(0, b"n" * 16)
        self.assertEqual(len(decodePayloadChain(PayloadType.NONCE, nonce * 63 + last)), 64)
        self.assertRaises(ParseError, decodePayloadChain, PayloadType.NONCE, nonce * 64 + last)

    def test_skippedPayloadsCountTowardsTheLimit(self) -> None:
        """65 empty unknown payloads are as many as 65 known ones."""
        data = generic(200, b"") * 64 + generic(0, b"")
        self.assertRaises(ParseError, decodePayloadChain, 200, data)

    def test_customLimit(self) -> None:
        """maxPayloads sets the limit."""
        data = generic(PayloadType.NONCE, b"n" * 16) + generic(0, b"n" * 16)
        self.assertRaises(ParseError, decodePayloadChain, PayloadType.NONCE, data, maxPayloads=1)

    def test_skEndsTheChain(self) -> None:
        """SK's next-payload field becomes firstPayload, not another payload to walk."""
        data = generic(PayloadType.SK, b"v") + generic(PayloadType.IDi, b"\xee" * 8)
        self.assertEqual(
            decodePayloadChain(PayloadType.VENDOR_ID, data),
            (VendorIDPayload(b"v"), SKPayload(PayloadType.IDi, b"\xee" * 8)),
        )

    def test_skNotLast(self) -> None:
        """An SK payload that stops before the end of the data is a BadLengthError."""
        data = generic(PayloadType.IDi, b"\xee" * 8) + generic(0, b"n" * 16)
        self.assertRaises(BadLengthError, decodePayloadChain, PayloadType.SK, data)

    def test_skfNotLast(self) -> None:
        """The same holds for SKF."""
        data = generic(0, bytes.fromhex("00010001")) + b"\x00"
        self.assertRaises(BadLengthError, decodePayloadChain, PayloadType.SKF, data)

    def test_skfFragmentNumberZero(self) -> None:
        """A body error inside the chain (SKF fragment 0) propagates as ParseError."""
        data = generic(PayloadType.IDi, bytes.fromhex("00000002") + b"c")
        self.assertRaises(ParseError, decodePayloadChain, PayloadType.SKF, data)

    def test_eapLengthMismatch(self) -> None:
        """An EAP message whose own length disagrees is a BadLengthError."""
        data = generic(0, bytes.fromhex("0201000a01") + b"user")
        self.assertRaises(BadLengthError, decodePayloadChain, PayloadType.EAP, data)


class MessageErrorTests(SynchronousTestCase):
    def test_truncatedHeader(self) -> None:
        """Under 28 bytes is a TruncatedError."""
        self.assertRaises(TruncatedError, Message.fromBytes, INFORMATIONAL[:27])

    def test_lengthLargerThanDatagram(self) -> None:
        """A header length beyond the datagram is a BadLengthError."""
        self.assertRaises(BadLengthError, Message.fromBytes, INFORMATIONAL[:-1])

    def test_lengthSmallerThanDatagram(self) -> None:
        """Trailing bytes beyond the header length are a BadLengthError."""
        self.assertRaises(BadLengthError, Message.fromBytes, INFORMATIONAL + b"\x00")

    def test_lengthBelowHeader(self) -> None:
        """A header length below 28 is a BadLengthError."""
        data = INFORMATIONAL[:24] + (20).to_bytes(4, "big")
        self.assertRaises(BadLengthError, Message.fromBytes, data)

    def test_payloadLengthZeroInMessage(self) -> None:
        """A zero payload length inside a whole message is a BadLengthError."""
        self.assertRaises(
            BadLengthError,
            Message.fromBytes,
            datagram(PayloadType.NONCE, b"\x00\x00\x00\x00" + b"n" * 16),
        )

    def test_payloadBeyondDatagram(self) -> None:
        """A payload length past the datagram's end is a BadLengthError."""
        self.assertRaises(
            BadLengthError,
            Message.fromBytes,
            datagram(PayloadType.NONCE, b"\x00\x00\x00\x30" + b"n" * 16),
        )


class MessageHelperTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.message = Message(
            header(),
            (
                IDiPayload(2, b"client"),
                NotifyPayload(0, NotifyType.INITIAL_CONTACT),
                IDrPayload(2, b"server"),
                NotifyPayload(0, NotifyType.MOBIKE_SUPPORTED),
                NotifyPayload(0, NotifyType.INITIAL_CONTACT, data=b"second"),
            ),
        )

    def test_getFirstOfClass(self) -> None:
        """get returns the first payload of a class, including subclasses."""
        self.assertEqual(self.message.get(IDrPayload), IDrPayload(2, b"server"))
        self.assertEqual(self.message.get(IDPayload), IDiPayload(2, b"client"))
        self.assertIsNone(self.message.get(KEPayload))

    def test_getAll(self) -> None:
        """getAll returns every payload of a class, in order."""
        self.assertEqual(
            self.message.getAll(IDPayload),
            (IDiPayload(2, b"client"), IDrPayload(2, b"server")),
        )
        self.assertEqual(self.message.getAll(EAPPayload), ())

    def test_notifies(self) -> None:
        """notifies returns the Notify payloads in order."""
        self.assertEqual(
            [n.notifyType for n in self.message.notifies()],
            [
                NotifyType.INITIAL_CONTACT,
                NotifyType.MOBIKE_SUPPORTED,
                NotifyType.INITIAL_CONTACT,
            ],
        )

    def test_getNotify(self) -> None:
        """getNotify returns the first Notify of a type, or None."""
        self.assertEqual(self.message.getNotify(NotifyType.INITIAL_CONTACT).data, b"")
        self.assertEqual(
            self.message.getNotify(NotifyType.MOBIKE_SUPPORTED),
            NotifyPayload(0, NotifyType.MOBIKE_SUPPORTED),
        )
        self.assertIsNone(self.message.getNotify(NotifyType.COOKIE))

    def test_skOnlyWhenLast(self) -> None:
        """sk is the trailing SK or SKF payload, else None."""
        self.assertIsNone(self.message.sk)
        self.assertIsNone(Message(header(), ()).sk)
        sk = SKPayload(PayloadType.IDi, b"x")
        self.assertIs(Message(header(), (VendorIDPayload(b"v"), sk)).sk, sk)
        skf = SKFPayload(0, 2, 2, b"x")
        self.assertIs(Message(header(), (skf,)).sk, skf)
