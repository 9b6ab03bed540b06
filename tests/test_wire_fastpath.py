"""
The codec's cheaper construction and decoding paths give exactly what the plain ones give:
L{ikehub.wire._frozen} builders, the caches of repeated payload bodies, L{IKEHeader.outgoing},
L{encodeMessage}, L{Message.fromBytes} with a parsed header and L{TrafficSelector.narrowedTo}.
"""

import dataclasses
import ipaddress

import pytest

from ikehub.wire import (
    CPPayload,
    IKEHeader,
    Message,
    NoncePayload,
    NotifyPayload,
    ParseError,
    SAPayload,
    TrafficSelector,
    TSiPayload,
    TSrPayload,
    encodeMessage,
)
from ikehub.wire import payloads as payloadsModule
from ikehub.wire._frozen import fastInit, trustedBuilder
from ikehub.wire.constants import (
    ConfigAttributeType,
    ExchangeType,
    HeaderFlag,
    ProtocolId,
    TransformType,
)
from ikehub.wire.payloads import ConfigAttribute, IDiPayload, Proposal, Transform

SPI_I = bytes(range(1, 9))
SPI_R = bytes(range(9, 17))


# -- fastInit and trustedBuilder -----------------------------------------------------------


@fastInit
@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    count: int
    data: bytes = b"default"

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must not be negative")


def test_fastInitKeepsSignatureDefaultsAndKeywords():
    """A fastInit class takes the same positional, keyword and default arguments."""
    assert Sample(1) == Sample(count=1, data=b"default")
    assert Sample(2, b"x").data == b"x"
    with pytest.raises(TypeError):
        Sample()
    with pytest.raises(TypeError):
        Sample(1, b"x", b"extra")


def test_fastInitStillValidates():
    """__post_init__ still runs: a bad value raises as before."""
    with pytest.raises(ValueError):
        Sample(-1)


def test_fastInitObjectsStayFrozen():
    """The instance is as immutable as a plain frozen dataclass's."""
    sample = Sample(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.count = 2  # type: ignore[misc]


def test_fastInitRefusesWhatItCannotBuild():
    """A default factory cannot be mirrored: refused when the class is defined."""

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError):
        fastInit(WithFactory)


def test_trustedBuilderSkipsChecksButBuildsTheSameObject():
    """
    A trusted builder gives an object equal to, hashing like and as frozen as the constructor's,
    and does not run __post_init__ (so it is only for values valid by construction).
    """
    build = trustedBuilder(Sample)
    built = build(3, b"y")
    assert built == Sample(3, b"y")
    assert hash(built) == hash(Sample(3, b"y"))
    assert type(built) is Sample
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.data = b"z"  # type: ignore[misc]
    assert build(-1, b"").count == -1


def test_codecClassesValidateThroughFastInit():
    """The codec's own constructors still refuse bad fields."""
    with pytest.raises(ValueError):
        IKEHeader(b"short", SPI_R, 0, ExchangeType.IKE_AUTH, 0, 0)
    with pytest.raises(ValueError):
        TrafficSelector(7, 0, 0, 65535, bytes(16), bytes(16))
    with pytest.raises(ValueError):
        ConfigAttribute(0x8000, b"")


# -- headers and messages -------------------------------------------------------------------


def test_outgoingHeaderEqualsTheConstructorsHeader():
    """IKEHeader.outgoing is the constructor with next payload 0, length 0 and version 2.0."""
    flags = int(HeaderFlag.RESPONSE)
    assert IKEHeader.outgoing(SPI_I, SPI_R, ExchangeType.IKE_AUTH, flags, 7) == IKEHeader(
        SPI_I, SPI_R, 0, ExchangeType.IKE_AUTH, flags, 7
    )


@pytest.mark.parametrize(
    "spiI, spiR, messageId",
    [(b"short", SPI_R, 0), (SPI_I, SPI_R + b"x", 0), (SPI_I, SPI_R, 1 << 32), (SPI_I, SPI_R, -1)],
)
def test_outgoingHeaderChecksWhatTheConstructorChecks(spiI, spiR, messageId):
    """Bad SPIs or a message ID beyond 32 bits raise ValueError, as with the constructor."""
    with pytest.raises(ValueError):
        IKEHeader.outgoing(spiI, spiR, ExchangeType.IKE_AUTH, 0, messageId)


def test_encodeMessageEqualsMessageToBytes():
    """encodeMessage writes what Message.toBytes writes, without building the Message."""
    header = IKEHeader.outgoing(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, 0, 1)
    payloads = [NotifyPayload(ProtocolId.NONE, 16390, b"", b"abc"), NoncePayload(bytes(16))]
    assert encodeMessage(header, payloads) == Message(header, tuple(payloads)).toBytes()


def test_fromBytesWithParsedHeaderEqualsFromBytes():
    """Passing the already parsed header gives the same message as parsing it again."""
    header = IKEHeader.outgoing(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, 0, 1)
    data = encodeMessage(header, [NoncePayload(bytes(16))])
    assert Message.fromBytes(data, IKEHeader.fromBytes(data)) == Message.fromBytes(data)


def test_fromBytesWithParsedHeaderStillChecksTheLength():
    """A header whose length disagrees with the datagram is still refused."""
    header = IKEHeader.outgoing(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, 0, 1)
    data = encodeMessage(header, [NoncePayload(bytes(16))])
    with pytest.raises(ParseError):
        Message.fromBytes(data + b"\x00", IKEHeader.fromBytes(data))


# -- repeated payload bodies ----------------------------------------------------------------


def selector(network: str) -> TrafficSelector:
    return TrafficSelector.fromNetwork(ipaddress.ip_network(network))


@pytest.mark.parametrize(
    "payload",
    [
        TSiPayload((selector("0.0.0.0/0"),)),
        TSrPayload((selector("203.0.113.0/24"), selector("2001:db8::/32"))),
        CPPayload(1, (ConfigAttribute(ConfigAttributeType.INTERNAL_IP4_ADDRESS, b""),)),
        SAPayload((Proposal(1, ProtocolId.IKE, b"", (Transform(TransformType.ENCR, 20, 256),)),)),
    ],
)
def test_repeatedBodiesDecodeToEqualObjects(payload):
    """A body decoded again (from the cache) equals the first decoding and the original."""
    body = payload.bodyBytes()
    first = type(payload).fromBody(body)
    again = type(payload).fromBody(bytes(body))
    assert first == again == payload
    assert type(again) is type(payload)


def test_saPayloadWithSpisIsNotKept():
    """An SA payload carrying SPIs (new in every IKE_AUTH) is decoded afresh, not stored."""
    payload = SAPayload(
        (
            Proposal(
                1, ProtocolId.ESP, b"\x01\x02\x03\x04", (Transform(TransformType.ENCR, 20, 256),)
            ),
        )
    )
    body = payload.bodyBytes()
    SAPayload.fromBody(body)
    assert (SAPayload, body) not in payloadsModule._repeated


def test_repeatedCacheIsBounded():
    """However many distinct bodies arrive, the cache holds at most its limit."""
    for count in range(payloadsModule._REPEATED_SIZE + 10):
        address = ipaddress.ip_address(count)
        TSiPayload.fromBody(TSiPayload((TrafficSelector.fromRange(address, address),)).bodyBytes())
    assert len(payloadsModule._repeated) <= payloadsModule._REPEATED_SIZE


def test_malformedBodiesAreNotKept():
    """A body that fails to decode fails again: only successes are stored."""
    body = TSiPayload((selector("10.0.0.0/8"),)).bodyBytes()[:-1]
    for _ in range(2):
        with pytest.raises(ParseError):
            TSiPayload.fromBody(body)


# -- traffic selectors ----------------------------------------------------------------------


def test_narrowedToReplacesOnlyTheAddresses():
    """narrowedTo keeps type, protocol and ports and takes the new range."""
    wide = TrafficSelector.fromNetwork(ipaddress.ip_network("10.0.0.0/8"), 6, 80, 443)
    narrow = wide.narrowedTo(bytes([10, 1, 2, 3]), bytes([10, 1, 2, 3]))
    assert narrow == TrafficSelector(
        wide.tsType, 6, 80, 443, bytes([10, 1, 2, 3]), bytes([10, 1, 2, 3])
    )


def test_narrowedToRefusesAnotherFamily():
    """Addresses of another length than the selector's are refused."""
    wide = selector("10.0.0.0/8")
    with pytest.raises(ValueError):
        wide.narrowedTo(bytes(16), bytes(16))


def test_decodedIdPayloadKeepsItsReservedBytes():
    """The trusted decoder keeps the reserved bytes AUTH signs, as the constructor did."""
    body = b"\x03\x01\x02\x03alice"
    payload = IDiPayload.fromBody(body)
    assert payload.bodyBytes() == body
    assert payload == IDiPayload(3, b"alice", b"\x01\x02\x03")
