"""
Property tests for the wire codec: valid payloads survive a round trip, and no input at
all makes the decoder raise anything but L{ParseError}.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikehub.wire import (
    PAYLOAD_CLASSES,
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
    CPPayload,
    DeletePayload,
    EAPPayload,
    IDiPayload,
    IDrPayload,
    IKEHeader,
    KEPayload,
    Message,
    NoncePayload,
    NotifyPayload,
    ParseError,
    Payload,
    Proposal,
    SAPayload,
    SKFPayload,
    SKPayload,
    TrafficSelector,
    Transform,
    TSiPayload,
    TSrPayload,
    VendorIDPayload,
    decodePayloadChain,
)
from ikehub.wire.constants import ProtocolId, TSType

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
blobs = st.binary(max_size=48)


def tuples(strategy, minSize=0, maxSize=4):
    return st.lists(strategy, min_size=minSize, max_size=maxSize).map(tuple)


transforms = st.builds(Transform, u8, u16, st.none() | u16)
proposals = st.builds(Proposal, u8, u8, st.binary(max_size=16), tuples(transforms, maxSize=8))


def selectors():
    def build(tsType: int, size: int):
        return st.builds(
            TrafficSelector,
            st.just(tsType),
            u8,
            u16,
            u16,
            st.binary(min_size=size, max_size=size),
            st.binary(min_size=size, max_size=size),
        )

    return build(TSType.TS_IPV4_ADDR_RANGE, 4) | build(TSType.TS_IPV6_ADDR_RANGE, 16)


def eapMessages():
    def build(parts):
        code, identifier, rest = parts
        return bytes([code, identifier]) + (4 + len(rest)).to_bytes(2, "big") + rest

    return st.tuples(u8, u8, blobs).map(build)


def skfPayloads():
    return st.integers(1, 0xFFFF).flatmap(
        lambda total: st.builds(SKFPayload, u8, st.integers(1, total), st.just(total), blobs)
    )


deletes = st.builds(DeletePayload, st.just(ProtocolId.IKE), st.just(())) | st.builds(
    DeletePayload,
    st.sampled_from([ProtocolId.ESP, ProtocolId.AH]),
    tuples(st.binary(min_size=4, max_size=4)),
)

#: Payloads that may appear anywhere in a chain (everything but SK and SKF).
plainPayloads = st.one_of(
    st.builds(SAPayload, tuples(proposals, minSize=1, maxSize=3)),
    st.builds(KEPayload, u16, blobs),
    st.builds(IDiPayload, u8, blobs),
    st.builds(IDrPayload, u8, blobs, st.binary(min_size=3, max_size=3)),
    st.builds(CertPayload, u8, blobs),
    st.builds(CertReqPayload, u8, blobs),
    st.builds(AuthPayload, u8, blobs),
    st.builds(NoncePayload, blobs),
    st.builds(NotifyPayload, u8, u16, st.binary(max_size=16), blobs),
    deletes,
    st.builds(VendorIDPayload, blobs),
    st.builds(TSiPayload, tuples(selectors())),
    st.builds(TSrPayload, tuples(selectors())),
    st.builds(
        CPPayload,
        u8,
        tuples(st.builds(ConfigAttribute, st.integers(0, 0x7FFF), st.binary(max_size=16))),
    ),
    st.builds(EAPPayload, eapMessages()),
)
encryptedPayloads = st.builds(SKPayload, u8, blobs) | skfPayloads()
headers = st.builds(
    IKEHeader,
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=8, max_size=8),
    st.just(0),
    u8,
    u8,
    u32,
)
messages = st.builds(
    lambda header, payloads, last: Message(header, tuple(payloads) + last),
    headers,
    st.lists(plainPayloads, max_size=6),
    st.just(()) | encryptedPayloads.map(lambda p: (p,)),
)


def decodeBody(payload: Payload, body: bytes) -> Payload:
    if isinstance(payload, (SKPayload, SKFPayload)):
        return type(payload).fromBody(body, payload.firstPayload)
    return type(payload).fromBody(body)


@given(plainPayloads | encryptedPayloads)
def test_payloadBodyRoundTrip(payload: Payload) -> None:
    """Every valid payload decodes from its own body to an equal payload."""
    body = payload.bodyBytes()
    assert decodeBody(payload, body) == payload
    assert decodeBody(payload, body).bodyBytes() == body


@given(messages)
def test_messageRoundTrip(message: Message) -> None:
    """
    Every valid message decodes from its encoding to the same payloads and header,
    the header now carrying the real first payload type and length.
    """
    data = message.toBytes()
    decoded = Message.fromBytes(data)
    assert decoded.payloads == message.payloads
    assert decoded.header.spiI == message.header.spiI
    assert decoded.header.messageId == message.header.messageId
    assert decoded.header.length == len(data)
    assert decoded.toBytes() == data


def mustParseOrRaiseParseError(data: bytes) -> Message | None:
    try:
        return Message.fromBytes(data)
    except ParseError:
        return None


def assertReencodable(message: Message | None) -> None:
    """
    Whatever decodes must encode again, and decode to the same payloads: the decoder
    accepts nothing the encoder cannot express. (Unknown transform attributes are
    deliberately not re-encoded, so those messages are exempt from the equality.)
    """
    if message is None:
        return
    again = Message.fromBytes(message.toBytes())
    hasUnknown = any(
        t.hasUnknownAttributes
        for sa in message.getAll(SAPayload)
        for p in sa.proposals
        for t in p.transforms
    )
    if not hasUnknown:
        assert again.payloads == message.payloads


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitraryBytes(data: bytes) -> None:
    """Arbitrary bytes parse or raise ParseError, nothing else."""
    assertReencodable(mustParseOrRaiseParseError(data))


def withHeader(firstType: int, chain: bytes) -> bytes:
    return (
        b"\x01" * 16
        + bytes([firstType, 0x20, 34, 0x08])
        + bytes(4)
        + (28 + len(chain)).to_bytes(4, "big")
        + chain
    )


@settings(max_examples=1000)
@given(st.sampled_from(sorted(PAYLOAD_CLASSES)) | u8, st.binary(max_size=300))
def test_arbitraryChainBehindValidHeader(firstType: int, chain: bytes) -> None:
    """
    Arbitrary payload bytes behind a consistent header (so decoding reaches the chain)
    parse or raise ParseError.
    """
    assertReencodable(mustParseOrRaiseParseError(withHeader(firstType, chain)))


@settings(max_examples=300)
@given(st.sampled_from(sorted(PAYLOAD_CLASSES)), st.binary(max_size=200))
def test_arbitraryBodies(payloadType: int, body: bytes) -> None:
    """Every payload class's fromBody raises only ParseError on arbitrary bodies."""
    try:
        payload = PAYLOAD_CLASSES[payloadType].fromBody(body)
    except ParseError:
        return
    assert isinstance(payload, PAYLOAD_CLASSES[payloadType])


def mutate(data: st.DataObject, original: bytes) -> bytes:
    """Change, insert or delete a few bytes of C{original}."""
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        operation = data.draw(st.sampled_from(["set", "insert", "delete"]))
        index = data.draw(st.integers(0, len(mutated)))
        if operation == "set" and index < len(mutated):
            mutated[index] = data.draw(u8)
        elif operation == "insert":
            mutated[index:index] = data.draw(st.binary(min_size=1, max_size=4))
        elif index < len(mutated):
            del mutated[index : index + data.draw(st.integers(1, 4))]
    return bytes(mutated)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(plainPayloads | encryptedPayloads, st.data())
def test_bodyMutations(payload: Payload, data: st.DataObject) -> None:
    """
    Valid payload bodies with bytes changed, inserted or deleted decode or raise
    ParseError; whatever decodes encodes again.
    """
    try:
        decoded = decodeBody(payload, mutate(data, payload.bodyBytes()))
    except ParseError:
        return
    decodeBody(decoded, decoded.bodyBytes())


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.data())
def test_singleByteMutations(message: Message, data: st.DataObject) -> None:
    """Valid messages with one byte changed parse or raise ParseError."""
    encoded = bytearray(message.toBytes())
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(u8)
    assertReencodable(mustParseOrRaiseParseError(bytes(encoded)))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.data())
def test_mutationsBehindConsistentHeader(message: Message, data: st.DataObject) -> None:
    """
    Valid payload chains with bytes changed, inserted or deleted, behind a header whose
    length still matches, parse or raise ParseError.
    """
    firstType = message.payloads[0].PAYLOAD_TYPE if message.payloads else 0
    chain = mutate(data, message.toBytes()[28:])
    assertReencodable(mustParseOrRaiseParseError(withHeader(firstType, chain)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.data())
def test_truncations(message: Message, data: st.DataObject) -> None:
    """Valid messages cut short, with or without the header length fixed up, fail cleanly."""
    encoded = message.toBytes()
    cut = data.draw(st.integers(0, len(encoded)))
    assertReencodable(mustParseOrRaiseParseError(encoded[:cut]))
    if cut >= 28:
        fixed = encoded[:24] + cut.to_bytes(4, "big") + encoded[28:cut]
        assertReencodable(mustParseOrRaiseParseError(fixed))


@settings(max_examples=300)
@given(u8, st.binary(max_size=200), st.integers(0, 70))
def test_chainDecoderRaisesOnlyParseError(firstType: int, chain: bytes, maxPayloads: int) -> None:
    """decodePayloadChain on arbitrary input returns payloads or raises ParseError."""
    try:
        payloads = decodePayloadChain(firstType, chain, maxPayloads)
    except ParseError:
        return
    assert len(payloads) <= maxPayloads
