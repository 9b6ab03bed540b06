"""
Tests for L{ikehub.wire.header}: the 28-byte IKE header of RFC 7296 section 3.1.
"""

from twisted.trial.unittest import SynchronousTestCase

from ikehub.wire import IKEHeader, InvalidMajorVersion, ParseError, TruncatedError
from ikehub.wire.constants import ExchangeType, HeaderFlag, NotifyType, PayloadType

# Laid out by hand from RFC 7296 figure 4: SPIi, SPIr, next payload SA (33), version 2.0,
# IKE_SA_INIT (34), flags I, message ID 0, length 448.
# fmt: off
INIT_HEADER = bytes.fromhex(
    "0102030405060708"
    "0000000000000000"
    "21" "20" "22" "08"
    "00000000"
    "000001c0"
)
# fmt: on


class HeaderEncodingTests(SynchronousTestCase):
    def test_decodesEveryFieldOfTheRFCLayout(self) -> None:
        """Each header field is read from its RFC 7296 position."""
        header = IKEHeader.fromBytes(INIT_HEADER)
        self.assertEqual(header.spiI, bytes.fromhex("0102030405060708"))
        self.assertEqual(header.spiR, bytes(8))
        self.assertEqual(header.nextPayload, PayloadType.SA)
        self.assertEqual(header.majorVersion, 2)
        self.assertEqual(header.minorVersion, 0)
        self.assertEqual(header.exchangeType, ExchangeType.IKE_SA_INIT)
        self.assertEqual(header.flags, HeaderFlag.INITIATOR)
        self.assertEqual(header.messageId, 0)
        self.assertEqual(header.length, 448)

    def test_encodesToTheRFCLayout(self) -> None:
        """toBytes writes the 28 bytes of the RFC layout, version byte 0x20."""
        header = IKEHeader(
            bytes.fromhex("0102030405060708"),
            bytes(8),
            PayloadType.SA,
            ExchangeType.IKE_SA_INIT,
            HeaderFlag.INITIATOR,
            0,
            448,
        )
        self.assertEqual(header.toBytes(), INIT_HEADER)

    def test_roundTripsLargeValues(self) -> None:
        """Message IDs and lengths use all 32 bits, and survive a round trip."""
        header = IKEHeader(b"\xff" * 8, b"\xee" * 8, 46, 37, 0x28, 0xFFFFFFFF, 0xFFFFFFFF)
        self.assertEqual(IKEHeader.fromBytes(header.toBytes()), header)

    def test_parsesOnlyTheFirst28Bytes(self) -> None:
        """Bytes after the header are not the header's concern."""
        header = IKEHeader.fromBytes(INIT_HEADER + b"payloads follow")
        self.assertEqual(header, IKEHeader.fromBytes(INIT_HEADER))

    def test_ignoresTheMinorVersion(self) -> None:
        """RFC 7296 section 3.1: the minor version of received messages is ignored."""
        data = INIT_HEADER[:17] + b"\x27" + INIT_HEADER[18:]
        header = IKEHeader.fromBytes(data)
        self.assertEqual((header.majorVersion, header.minorVersion), (2, 7))


class HeaderFlagTests(SynchronousTestCase):
    def header(self, flags: int) -> IKEHeader:
        return IKEHeader(bytes(8), bytes(8), 0, ExchangeType.INFORMATIONAL, flags, 1)

    def test_initiatorRequest(self) -> None:
        """The I flag alone: sent by the original initiator, a request."""
        header = self.header(HeaderFlag.INITIATOR)
        self.assertTrue(header.isInitiator)
        self.assertFalse(header.isResponse)

    def test_responderResponse(self) -> None:
        """The R flag alone: a response from the original responder."""
        header = self.header(HeaderFlag.RESPONSE)
        self.assertFalse(header.isInitiator)
        self.assertTrue(header.isResponse)

    def test_initiatorResponse(self) -> None:
        """I and R together: the original initiator answering a request."""
        header = self.header(HeaderFlag.INITIATOR | HeaderFlag.RESPONSE)
        self.assertTrue(header.isInitiator)
        self.assertTrue(header.isResponse)

    def test_versionFlagIsNeitherRole(self) -> None:
        """The V flag says nothing about who sent the message or why."""
        header = self.header(HeaderFlag.VERSION)
        self.assertFalse(header.isInitiator)
        self.assertFalse(header.isResponse)


class HeaderErrorTests(SynchronousTestCase):
    def test_truncated(self) -> None:
        """Fewer than 28 bytes raise TruncatedError, down to none at all."""
        for length in (0, 1, 27):
            self.assertRaises(TruncatedError, IKEHeader.fromBytes, INIT_HEADER[:length])

    def test_higherMajorVersion(self) -> None:
        """
        Major version 3 raises InvalidMajorVersion carrying INVALID_MAJOR_VERSION and
        the parsed header, whose SPIs and message ID the answer needs.
        """
        data = INIT_HEADER[:17] + b"\x30" + INIT_HEADER[18:]
        error = self.assertRaises(InvalidMajorVersion, IKEHeader.fromBytes, data)
        self.assertEqual(error.notifyType, NotifyType.INVALID_MAJOR_VERSION)
        self.assertEqual(error.notifyData, b"")
        self.assertEqual(error.majorVersion, 3)
        self.assertEqual(error.header.spiI, INIT_HEADER[:8])
        self.assertIn("3", str(error))

    def test_lowerMajorVersion(self) -> None:
        """IKEv1 (major version 1) is a ParseError that asks for no answer."""
        data = INIT_HEADER[:17] + b"\x10" + INIT_HEADER[18:]
        error = self.assertRaises(ParseError, IKEHeader.fromBytes, data)
        self.assertNotIsInstance(error, InvalidMajorVersion)
        self.assertIsNone(error.notifyType)

    def test_spisMustBe8Bytes(self) -> None:
        """Building a header with a short or long SPI is a programming error."""
        self.assertRaises(ValueError, IKEHeader, bytes(7), bytes(8), 0, 34, 0, 0)
        self.assertRaises(ValueError, IKEHeader, bytes(8), bytes(9), 0, 34, 0, 0)
