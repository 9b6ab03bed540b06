"""
Tests for L{ikehub.wire.payloads}: payload bodies of RFC 7296 section 3 and RFC 7383.

Every expected byte string here is written out by hand from the RFC's figures, one
field per chunk, never produced by the code under test.
"""

from ipaddress import ip_address, ip_network

from twisted.trial.unittest import SynchronousTestCase

from ikehub.wire import (
    PAYLOAD_CLASSES,
    AuthPayload,
    BadLengthError,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
    CPPayload,
    DeletePayload,
    EAPPayload,
    IDiPayload,
    IDrPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    ParseError,
    Proposal,
    SAPayload,
    SKFPayload,
    SKPayload,
    TrafficSelector,
    Transform,
    TruncatedError,
    TSiPayload,
    TSrPayload,
    VendorIDPayload,
)
from ikehub.wire.constants import (
    AuthMethod,
    CertEncoding,
    CfgType,
    ConfigAttributeType,
    EncrId,
    EsnId,
    IDType,
    IntegId,
    KeGroup,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
    TSType,
)


def h(*chunks: str) -> bytes:
    """Join hex chunks, one per field, so each test vector reads like the RFC figure."""
    return bytes.fromhex("".join(chunks))


# One IKE proposal: AES-CBC with a 256-bit key, HMAC-SHA2-256 PRF and integrity,
# 2048-bit MODP group (RFC 7296 figures 6, 7 and 9).
# fmt: off
IKE_PROPOSAL_BODY = h(
    "00", "00", "002c", "01", "01", "00", "04",  # last, -, length 44, #1, IKE, no SPI, 4
    "03", "00", "000c", "01", "00", "000c", "800e", "0100",  # ENCR AES_CBC, keylen 256
    "03", "00", "0008", "02", "00", "0005",  # PRF HMAC_SHA2_256
    "03", "00", "0008", "03", "00", "000c",  # INTEG HMAC_SHA2_256_128
    "00", "00", "0008", "04", "00", "000e",  # KE MODP_2048, last transform
)
# fmt: on
IKE_PROPOSAL = Proposal(
    1,
    ProtocolId.IKE,
    b"",
    (
        Transform(TransformType.ENCR, EncrId.AES_CBC, 256),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
        Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
        Transform(TransformType.KE, KeGroup.MODP_2048),
    ),
)

# Two ESP proposals sharing SPI 0x11223344: AES-GCM-16/128, then AES-CBC-128 with
# HMAC-SHA2-256-128; both without ESN.
# fmt: off
ESP_PROPOSALS_BODY = h(
    "02", "00", "0020", "01", "03", "04", "02", "11223344",  # more follow, length 32
    "03", "00", "000c", "01", "00", "0014", "800e", "0080",
    "00", "00", "0008", "05", "00", "0000",
    "00", "00", "0028", "02", "03", "04", "03", "11223344",  # last, length 40
    "03", "00", "000c", "01", "00", "000c", "800e", "0080",
    "03", "00", "0008", "03", "00", "000c",
    "00", "00", "0008", "05", "00", "0000",
)
# fmt: on
ESP_PROPOSALS = (
    Proposal(
        1,
        ProtocolId.ESP,
        h("11223344"),
        (
            Transform(TransformType.ENCR, EncrId.AES_GCM_16, 128),
            Transform(TransformType.ESN, EsnId.NO_ESN),
        ),
    ),
    Proposal(
        2,
        ProtocolId.ESP,
        h("11223344"),
        (
            Transform(TransformType.ENCR, EncrId.AES_CBC, 128),
            Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
            Transform(TransformType.ESN, EsnId.NO_ESN),
        ),
    ),
)

NAT_HASH = bytes(range(20))

# Traffic selectors (RFC 7296 figure 20): 10.0.0.0/24 any protocol and port, then a TSr
# body with ::/0 TCP 443 followed by 192.0.2.0/24.
TS_10_0_0_0_24 = h("07", "00", "0010", "0000", "ffff", "0a000000", "0a0000ff")
# fmt: off
TSR_BODY = h(
    "02", "000000",
    "08", "06", "0028", "01bb", "01bb", "00" * 16, "ff" * 16,
    "07", "00", "0010", "0000", "ffff", "c0000200", "c00002ff",
)
# fmt: on

# (payload, its body by hand) for every payload class.
EXAMPLES = [
    (SAPayload((IKE_PROPOSAL,)), IKE_PROPOSAL_BODY),
    (SAPayload(ESP_PROPOSALS), ESP_PROPOSALS_BODY),
    (KEPayload(KeGroup.MODP_2048, b"\xaa" * 256), h("000e", "0000") + b"\xaa" * 256),
    (
        IDiPayload(IDType.ID_FQDN, b"vpn.example.com"),
        h("02", "000000") + b"vpn.example.com",
    ),
    (IDrPayload(IDType.ID_IPV4_ADDR, h("c0000201")), h("01", "000000", "c0000201")),
    (CertPayload(CertEncoding.X509_SIGNATURE, b"0\x82der"), h("04") + b"0\x82der"),
    (CertReqPayload(CertEncoding.X509_SIGNATURE, b"\x01" * 20), h("04") + b"\x01" * 20),
    (
        AuthPayload(AuthMethod.SHARED_KEY_MIC, b"\x5a" * 32),
        h("02", "000000") + b"\x5a" * 32,
    ),
    (NoncePayload(b"\x42" * 32), b"\x42" * 32),
    (
        NotifyPayload(0, NotifyType.NAT_DETECTION_SOURCE_IP, data=NAT_HASH),
        h("00", "00", "4004") + NAT_HASH,
    ),
    (
        NotifyPayload(ProtocolId.ESP, NotifyType.REKEY_SA, spi=h("11223344")),
        h("03", "04", "4009", "11223344"),
    ),
    (
        DeletePayload(ProtocolId.ESP, (h("11223344"), h("55667788"))),
        h("03", "04", "0002", "11223344", "55667788"),
    ),
    (DeletePayload(ProtocolId.IKE, ()), h("01", "00", "0000")),
    (VendorIDPayload(b"strongSwan"), b"strongSwan"),
    (
        TSiPayload((TrafficSelector.fromNetwork(ip_network("10.0.0.0/24")),)),
        h("01", "000000") + TS_10_0_0_0_24,
    ),
    (
        TSrPayload(
            (
                TrafficSelector.fromNetwork(ip_network("::/0"), 6, 443, 443),
                TrafficSelector.fromNetwork(ip_network("192.0.2.0/24")),
            )
        ),
        TSR_BODY,
    ),
    (SKPayload(PayloadType.IDi, b"\x01" * 48), b"\x01" * 48),
    (SKFPayload(PayloadType.IDi, 1, 3, b"\x02" * 40), h("0001", "0003") + b"\x02" * 40),
    (
        CPPayload(
            CfgType.CFG_REQUEST,
            (
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS, b""),
                ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_DNS, b""),
            ),
        ),
        h("01", "000000", "0001", "0000", "0003", "0000"),
    ),
    (
        CPPayload(
            CfgType.CFG_REPLY,
            (ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS, h("0a000005")),),
        ),
        h("02", "000000", "0001", "0004", "0a000005"),
    ),
    (EAPPayload(h("01", "01", "0005", "01")), h("01", "01", "0005", "01")),
]


class ExampleTests(SynchronousTestCase):
    def test_encodesHandWrittenBodies(self) -> None:
        """Every payload class encodes its body exactly as the RFC figure lays it out."""
        for payload, body in EXAMPLES:
            with self.subTest(payload=payload):
                self.assertEqual(payload.bodyBytes(), body)

    def test_decodesHandWrittenBodies(self) -> None:
        """Every payload class decodes the RFC layout into the same value."""
        for payload, body in EXAMPLES:
            with self.subTest(payload=payload):
                if isinstance(payload, (SKPayload, SKFPayload)):
                    decoded = type(payload).fromBody(body, payload.firstPayload)
                else:
                    decoded = type(payload).fromBody(body)
                self.assertEqual(decoded, payload)
                self.assertIs(type(decoded), type(payload))

    def test_examplesCoverEveryPayloadClass(self) -> None:
        """The examples above leave no payload class untested."""
        self.assertEqual({type(payload) for payload, _ in EXAMPLES}, set(PAYLOAD_CLASSES.values()))

    def test_payloadClassesByType(self) -> None:
        """PAYLOAD_CLASSES maps every RFC 7296 / RFC 7383 type to its class."""
        self.assertEqual(set(PAYLOAD_CLASSES), set(PayloadType) - {PayloadType.NONE})
        for payloadType, cls in PAYLOAD_CLASSES.items():
            self.assertEqual(cls.PAYLOAD_TYPE, payloadType)

    def test_decodedFieldsAreBytes(self) -> None:
        """A body given as bytearray or memoryview still decodes to immutable bytes."""
        body = h("03", "04", "4009", "11223344", "beef")
        for view in (bytearray(body), memoryview(body)):
            payload = NotifyPayload.fromBody(view)
            self.assertIs(type(payload.spi), bytes)
            self.assertIs(type(payload.data), bytes)
            hash(payload)


class TransformTests(SynchronousTestCase):
    def test_unknownTVAttribute(self) -> None:
        """A TV attribute other than Key Length marks the transform as not understood."""
        # fmt: off
        body = h(
            "00", "00", "0018", "01", "01", "00", "01",
            "00", "00", "0010", "01", "00", "000c", "800e", "0080", "800f", "0001",
        )
        # fmt: on
        transform = SAPayload.fromBody(body).proposals[0].transforms[0]
        self.assertEqual(transform.keyLength, 128)
        self.assertTrue(transform.hasUnknownAttributes)

    def test_unknownTLVAttribute(self) -> None:
        """A TLV attribute is skipped by its length and marks the transform."""
        # fmt: off
        body = h(
            "00", "00", "0017", "01", "01", "00", "01",
            "00", "00", "000f", "01", "00", "000c", "0010", "0003", "aabbcc",
        )
        # fmt: on
        transform = SAPayload.fromBody(body).proposals[0].transforms[0]
        self.assertIsNone(transform.keyLength)
        self.assertTrue(transform.hasUnknownAttributes)

    def test_repeatedKeyLength(self) -> None:
        """Two Key Length attributes are ambiguous: the transform is not understood."""
        # fmt: off
        body = h(
            "00", "00", "0018", "01", "01", "00", "01",
            "00", "00", "0010", "01", "00", "000c", "800e", "0080", "800e", "0100",
        )
        # fmt: on
        transform = SAPayload.fromBody(body).proposals[0].transforms[0]
        self.assertTrue(transform.hasUnknownAttributes)

    def test_encodingDropsUnknownAttributes(self) -> None:
        """Unknown attributes were never kept, so encoding emits only Key Length."""
        transform = Transform(TransformType.ENCR, EncrId.AES_CBC, 128, True)
        expected = h("00", "00", "000c", "01", "00", "000c", "800e", "0080")
        self.assertEqual(transform.toBytes(), expected)

    def test_notLastMarker(self) -> None:
        """toBytes(last=False) writes the "more transforms" marker 3."""
        self.assertEqual(
            Transform(TransformType.PRF, PrfId.HMAC_SHA1).toBytes(last=False),
            h("03", "00", "0008", "02", "00", "0002"),
        )

    def test_attributeOverrunsTransform(self) -> None:
        """A TLV attribute longer than its transform is a BadLengthError."""
        # fmt: off
        body = h(
            "00", "00", "0014", "01", "01", "00", "01",
            "00", "00", "000c", "01", "00", "000c", "0010", "0009",
        )
        # fmt: on
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_truncatedAttribute(self) -> None:
        """Two stray bytes after a transform header are a TruncatedError."""
        # fmt: off
        body = h(
            "00", "00", "0012", "01", "01", "00", "01",
            "00", "00", "000a", "01", "00", "000c", "800e",
        )
        # fmt: on
        self.assertRaises(TruncatedError, SAPayload.fromBody, body)


class ProposalErrorTests(SynchronousTestCase):
    def test_noProposals(self) -> None:
        """An SA payload without a single proposal is a ParseError."""
        self.assertRaises(ParseError, SAPayload.fromBody, b"")

    def test_declaresMoreTransformsThanItHolds(self) -> None:
        """A proposal counting 5 transforms but holding 4 is a BadLengthError."""
        body = IKE_PROPOSAL_BODY[:7] + b"\x05" + IKE_PROPOSAL_BODY[8:]
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_declaresFewerTransformsThanItHolds(self) -> None:
        """A proposal counting 3 transforms but holding 4 is a BadLengthError."""
        body = IKE_PROPOSAL_BODY[:7] + b"\x03" + IKE_PROPOSAL_BODY[8:]
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_countMismatchIsCheckedOnRepeatedInput(self) -> None:
        """
        Decoding the same transforms twice gives equal results, and a wrong count is
        still caught the second time (decoded transforms are reused between calls).
        """
        self.assertEqual(
            SAPayload.fromBody(IKE_PROPOSAL_BODY), SAPayload.fromBody(IKE_PROPOSAL_BODY)
        )
        body = IKE_PROPOSAL_BODY[:7] + b"\x02" + IKE_PROPOSAL_BODY[8:]
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_proposalLongerThanPayload(self) -> None:
        """A proposal length beyond the SA payload is a BadLengthError."""
        body = IKE_PROPOSAL_BODY[:2] + h("002d") + IKE_PROPOSAL_BODY[4:]
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_proposalShorterThanItsTransforms(self) -> None:
        """
        A proposal length (18) that ends inside its first transform (length 12 from
        offset 8) is a BadLengthError.
        """
        body = IKE_PROPOSAL_BODY[:2] + h("0012") + IKE_PROPOSAL_BODY[4:]
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_proposalEndsInsideATransformHeader(self) -> None:
        """
        A proposal length (40) leaving only 4 bytes of its last transform is a
        TruncatedError: no transform header fits.
        """
        body = IKE_PROPOSAL_BODY[:2] + h("0028") + IKE_PROPOSAL_BODY[4:]
        self.assertRaises(TruncatedError, SAPayload.fromBody, body)

    def test_proposalShorterThanItsSPI(self) -> None:
        """A proposal length below its header plus SPI is a BadLengthError."""
        body = h("00", "00", "000a", "01", "03", "04", "00", "11223344")
        self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_proposalHeaderTruncated(self) -> None:
        """Fewer than 8 bytes where a proposal header should be: TruncatedError."""
        self.assertRaises(TruncatedError, SAPayload.fromBody, IKE_PROPOSAL_BODY[:5])

    def test_lastProposalClaimsMore(self) -> None:
        """A final proposal marked "more follow" leaves the SA truncated."""
        body = h("02") + IKE_PROPOSAL_BODY[1:]
        self.assertRaises(TruncatedError, SAPayload.fromBody, body)

    def test_bytesAfterLastProposal(self) -> None:
        """Bytes after the proposal marked last are a BadLengthError."""
        self.assertRaises(BadLengthError, SAPayload.fromBody, IKE_PROPOSAL_BODY + IKE_PROPOSAL_BODY)

    def test_badProposalMarker(self) -> None:
        """A proposal marker other than 0 or 2 is a ParseError."""
        body = h("03") + IKE_PROPOSAL_BODY[1:] + IKE_PROPOSAL_BODY
        self.assertRaises(ParseError, SAPayload.fromBody, body)

    def test_transformMarkersMustMatchPosition(self) -> None:
        """A non-final transform marked last (0) is a ParseError."""
        body = IKE_PROPOSAL_BODY[:8] + h("00") + IKE_PROPOSAL_BODY[9:]
        self.assertRaises(ParseError, SAPayload.fromBody, body)

    def test_finalTransformMarkedMore(self) -> None:
        """The final transform marked "more" (3) is a ParseError."""
        body = IKE_PROPOSAL_BODY[:36] + h("03") + IKE_PROPOSAL_BODY[37:]
        self.assertRaises(ParseError, SAPayload.fromBody, body)

    def test_transformLengthBelowHeader(self) -> None:
        """A transform length below 8 is a BadLengthError (and cannot loop forever)."""
        for length in ("0000", "0007"):
            body = IKE_PROPOSAL_BODY[:10] + h(length) + IKE_PROPOSAL_BODY[12:]
            self.assertRaises(BadLengthError, SAPayload.fromBody, body)

    def test_tooManyTransformsToEncode(self) -> None:
        """The transform count is one byte: 256 transforms cannot be encoded."""
        proposal = Proposal(1, ProtocolId.IKE, b"", (Transform(1, 12),) * 256)
        self.assertRaises(ValueError, proposal.toBytes)


class SimplePayloadErrorTests(SynchronousTestCase):
    def test_fixedPartsTruncated(self) -> None:
        """A body shorter than its fixed fields is a TruncatedError."""
        for cls, minimum in [
            (KEPayload, 4),
            (IDiPayload, 4),
            (IDrPayload, 4),
            (CertPayload, 1),
            (CertReqPayload, 1),
            (AuthPayload, 4),
            (NotifyPayload, 4),
            (DeletePayload, 4),
            (TSiPayload, 4),
            (CPPayload, 4),
            (EAPPayload, 4),
            (SKFPayload, 4),
        ]:
            with self.subTest(cls=cls):
                self.assertRaises(TruncatedError, cls.fromBody, b"\x01" * (minimum - 1))

    def test_notifySPIBeyondPayload(self) -> None:
        """A Notify SPI size larger than what follows is a BadLengthError."""
        self.assertRaises(BadLengthError, NotifyPayload.fromBody, h("03", "04", "4009", "112233"))

    def test_idKeepsReservedBytes(self) -> None:
        """
        AUTH signs the ID body as received, so bodyBytes() gives back even nonzero
        reserved bytes; they do not take part in equality.
        """
        body = h("02", "010203") + b"peer"
        payload = IDiPayload.fromBody(body)
        self.assertEqual(payload.bodyBytes(), body)
        self.assertEqual(payload, IDiPayload(IDType.ID_FQDN, b"peer"))

    def test_idiIsNotIdr(self) -> None:
        """IDi and IDr with the same contents are different payloads."""
        self.assertNotEqual(IDiPayload(2, b"x"), IDrPayload(2, b"x"))


class DeleteTests(SynchronousTestCase):
    def test_espSPISizeMismatch(self) -> None:
        """An ESP Delete with 8-byte SPIs is a BadLengthError."""
        body = h("03", "08", "0001", "1122334455667788")
        self.assertRaises(BadLengthError, DeletePayload.fromBody, body)

    def test_ikeWithSPISize(self) -> None:
        """An IKE Delete must have SPI size 0: 4 is a BadLengthError."""
        self.assertRaises(BadLengthError, DeletePayload.fromBody, h("01", "04", "0000"))

    def test_ikeWithSPICount(self) -> None:
        """An IKE Delete must count 0 SPIs."""
        self.assertRaises(BadLengthError, DeletePayload.fromBody, h("01", "00", "0001"))

    def test_ikeWithTrailingBytes(self) -> None:
        """An IKE Delete has nothing after its fixed fields."""
        self.assertRaises(BadLengthError, DeletePayload.fromBody, h("01", "00", "0000", "11223344"))

    def test_countMismatch(self) -> None:
        """An ESP Delete counting 3 SPIs but holding 2 is a BadLengthError."""
        body = h("03", "04", "0003", "11223344", "55667788")
        self.assertRaises(BadLengthError, DeletePayload.fromBody, body)

    def test_partialSPI(self) -> None:
        """A trailing partial SPI is a BadLengthError."""
        body = h("03", "04", "0001", "11223344", "55")
        self.assertRaises(BadLengthError, DeletePayload.fromBody, body)

    def test_unknownProtocol(self) -> None:
        """A Delete for protocol 9 is a ParseError."""
        self.assertRaises(ParseError, DeletePayload.fromBody, h("09", "04", "0000"))

    def test_constructorChecksSPIs(self) -> None:
        """Building a Delete with SPIs of the wrong size is a programming error."""
        self.assertRaises(ValueError, DeletePayload, ProtocolId.ESP, (b"\x01" * 8,))
        self.assertRaises(ValueError, DeletePayload, ProtocolId.IKE, (b"\x01" * 4,))
        self.assertRaises(ValueError, DeletePayload, 9, ())


class TrafficSelectorTests(SynchronousTestCase):
    def test_badSelectorLength(self) -> None:
        """An IPv4 selector with length 17, or IPv6 with 16, is a BadLengthError."""
        for body in (
            h("01", "000000", "07", "00", "0011") + TS_10_0_0_0_24[4:],
            h("01", "000000", "08", "00", "0010") + TS_10_0_0_0_24[4:],
        ):
            self.assertRaises(BadLengthError, TSiPayload.fromBody, body)

    def test_unknownSelectorType(self) -> None:
        """Selector type 9 is unknown: ParseError."""
        body = h("01", "000000", "09") + TS_10_0_0_0_24[1:]
        self.assertRaises(ParseError, TSiPayload.fromBody, body)

    def test_fewerSelectorsThanCounted(self) -> None:
        """A count of 2 with one selector present is a TruncatedError."""
        body = h("02", "000000") + TS_10_0_0_0_24
        self.assertRaises(TruncatedError, TSiPayload.fromBody, body)

    def test_selectorCutShort(self) -> None:
        """A selector whose addresses run past the payload is a BadLengthError."""
        body = h("01", "000000") + TS_10_0_0_0_24[:-4]
        self.assertRaises(BadLengthError, TSiPayload.fromBody, body)

    def test_moreSelectorsThanCounted(self) -> None:
        """A count of 1 with a second selector after it is a BadLengthError."""
        body = h("01", "000000") + TS_10_0_0_0_24 + TS_10_0_0_0_24
        self.assertRaises(BadLengthError, TSrPayload.fromBody, body)

    def test_fromNetwork(self) -> None:
        """A network becomes the range from its network to its broadcast address."""
        selector = TrafficSelector.fromNetwork(ip_network("2001:db8::/32"), 17, 500, 500)
        self.assertEqual(selector.tsType, TSType.TS_IPV6_ADDR_RANGE)
        self.assertEqual(selector.start, ip_address("2001:db8::"))
        self.assertEqual(selector.end, ip_address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"))
        self.assertEqual(
            (selector.ipProtocol, selector.startPort, selector.endPort), (17, 500, 500)
        )

    def test_fromRange(self) -> None:
        """A range keeps its endpoints and defaults to any protocol and port."""
        selector = TrafficSelector.fromRange(ip_address("192.0.2.5"), ip_address("192.0.2.9"))
        self.assertEqual(selector.tsType, TSType.TS_IPV4_ADDR_RANGE)
        self.assertEqual(selector.startAddress, h("c0000205"))
        self.assertEqual(selector.endAddress, h("c0000209"))
        self.assertEqual((selector.ipProtocol, selector.startPort, selector.endPort), (0, 0, 65535))

    def test_fromRangeMixedFamilies(self) -> None:
        """A range from an IPv4 to an IPv6 address is a programming error."""
        self.assertRaises(
            ValueError,
            TrafficSelector.fromRange,
            ip_address("10.0.0.1"),
            ip_address("::1"),
        )

    def test_constructorChecksAddressSizes(self) -> None:
        """Type 7 with 16-byte addresses, or an unknown type, is a programming error."""
        self.assertRaises(ValueError, TrafficSelector, 7, 0, 0, 65535, bytes(16), bytes(16))
        self.assertRaises(ValueError, TrafficSelector, 9, 0, 0, 65535, bytes(4), bytes(4))

    def test_strLikeStrongSwan(self) -> None:
        """str() prints subnets, ranges and protocol/port the way strongSwan logs them."""
        net = ip_network
        cases = [
            (TrafficSelector.fromNetwork(net("192.0.2.0/24")), "192.0.2.0/24"),
            (TrafficSelector.fromNetwork(net("0.0.0.0/0")), "0.0.0.0/0"),
            (TrafficSelector.fromNetwork(net("10.1.2.3/32")), "10.1.2.3/32"),
            (TrafficSelector.fromNetwork(net("::/0")), "::/0"),
            (TrafficSelector.fromNetwork(net("2001:db8::/32")), "2001:db8::/32"),
            (
                TrafficSelector.fromRange(ip_address("192.0.2.5"), ip_address("192.0.2.9")),
                "192.0.2.5..192.0.2.9",
            ),
            (
                TrafficSelector.fromRange(ip_address("10.0.0.1"), ip_address("10.0.0.2")),
                "10.0.0.1..10.0.0.2",
            ),
            (TrafficSelector.fromNetwork(net("192.0.2.0/24"), 6), "192.0.2.0/24[tcp]"),
            (
                TrafficSelector.fromNetwork(net("192.0.2.0/24"), 6, 443, 443),
                "192.0.2.0/24[tcp/443]",
            ),
            (
                TrafficSelector.fromNetwork(net("0.0.0.0/0"), 17, 1000, 2000),
                "0.0.0.0/0[udp/1000-2000]",
            ),
            (TrafficSelector.fromNetwork(net("0.0.0.0/0"), 0, 53, 53), "0.0.0.0/0[53]"),
            (
                TrafficSelector.fromNetwork(net("0.0.0.0/0"), 6, 65535, 0),
                "0.0.0.0/0[tcp/OPAQUE]",
            ),
            (
                TrafficSelector.fromNetwork(net("0.0.0.0/0"), 1, 0x0800, 0x0800),
                "0.0.0.0/0[icmp/8]",
            ),
            (
                TrafficSelector.fromNetwork(net("::/0"), 58, 0x0301, 0x0301),
                "::/0[ipv6-icmp/3(1)]",
            ),
            (TrafficSelector.fromNetwork(net("0.0.0.0/0"), 99), "0.0.0.0/0[99]"),
        ]
        for selector, text in cases:
            with self.subTest(text=text):
                self.assertEqual(str(selector), text)


class EncryptedPayloadTests(SynchronousTestCase):
    def test_fragmentNumberZero(self) -> None:
        """SKF fragment number 0 is a ParseError."""
        self.assertRaises(ParseError, SKFPayload.fromBody, h("0000", "0003", "aa"))

    def test_totalFragmentsZero(self) -> None:
        """SKF total 0 is a ParseError."""
        self.assertRaises(ParseError, SKFPayload.fromBody, h("0001", "0000", "aa"))

    def test_fragmentBeyondTotal(self) -> None:
        """SKF fragment 4 of 3 is a ParseError."""
        self.assertRaises(ParseError, SKFPayload.fromBody, h("0004", "0003", "aa"))

    def test_lastFragment(self) -> None:
        """SKF fragment 3 of 3 is fine."""
        payload = SKFPayload.fromBody(h("0003", "0003", "aa"))
        self.assertEqual((payload.fragmentNumber, payload.totalFragments), (3, 3))

    def test_skKeepsBodyWhole(self) -> None:
        """The SK body (IV, ciphertext, ICV) is kept whole and undivided."""
        payload = SKPayload.fromBody(b"\x01\x02\x03", PayloadType.IDi)
        self.assertEqual(payload, SKPayload(PayloadType.IDi, b"\x01\x02\x03"))


class ConfigurationTests(SynchronousTestCase):
    def test_attributeLengthBeyondPayload(self) -> None:
        """A configuration attribute length past the payload is a BadLengthError."""
        body = h("02", "000000", "0001", "0008", "0a000005")
        self.assertRaises(BadLengthError, CPPayload.fromBody, body)

    def test_attributeHeaderTruncated(self) -> None:
        """Two stray bytes where an attribute header should be: TruncatedError."""
        self.assertRaises(TruncatedError, CPPayload.fromBody, h("01", "000000", "0001"))

    def test_reservedBitIgnored(self) -> None:
        """The reserved top bit of the attribute type is ignored on receipt."""
        payload = CPPayload.fromBody(h("01", "000000", "8001", "0000"))
        self.assertEqual(payload.attributes, (ConfigAttribute(1, b""),))

    def test_attributeTypeIs15Bits(self) -> None:
        """An attribute type of 0x8000 cannot be encoded."""
        self.assertRaises(ValueError, ConfigAttribute, 0x8000, b"")


class EAPTests(SynchronousTestCase):
    def test_lengthFieldTooLarge(self) -> None:
        """An EAP length field larger than the message is a BadLengthError."""
        self.assertRaises(BadLengthError, EAPPayload.fromBody, h("01", "01", "0006", "01"))

    def test_lengthFieldTooSmall(self) -> None:
        """An EAP length field smaller than the message is a BadLengthError."""
        self.assertRaises(BadLengthError, EAPPayload.fromBody, h("03", "01", "0004", "01"))

    def test_successMessage(self) -> None:
        """A bare 4-byte EAP-Success decodes."""
        self.assertEqual(EAPPayload.fromBody(h("03", "01", "0004")).message, h("03010004"))

    def test_constructorChecksLength(self) -> None:
        """Building an EAP payload whose length field lies is a programming error."""
        self.assertRaises(ValueError, EAPPayload, h("01", "01", "0009", "01"))
        self.assertRaises(ValueError, EAPPayload, h("0101"))
