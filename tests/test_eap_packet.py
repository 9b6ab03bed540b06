"""
The EAP packet codec (RFC 3748 section 4): exact bytes for each code, and every malformed
input class rejected with L{EAPParseError} and nothing else.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPParseError, EAPType


def test_identityRequestBytes():
    """An Identity Request with no prompt is Code 1, Identifier, Length 5, Type 1."""
    packet = EAPPacket(EAPCode.REQUEST, 7, EAPType.IDENTITY)
    assert packet.toBytes() == bytes.fromhex("0107000501")
    assert EAPPacket.fromBytes(bytes.fromhex("0107000501")) == packet


def test_identityResponseBytes():
    """An Identity Response carries the identity after the Type octet."""
    wire = bytes.fromhex("02 2a 00 0a 01") + b"alice"
    packet = EAPPacket.fromBytes(wire)
    assert (packet.code, packet.identifier, packet.type, packet.data) == (2, 42, 1, b"alice")
    assert packet.toBytes() == wire


@pytest.mark.parametrize("code", [EAPCode.SUCCESS, EAPCode.FAILURE])
def test_successAndFailureAreFourOctets(code):
    """Success and Failure have no Type and no data: exactly Code, Identifier, Length 4."""
    packet = EAPPacket(code, 0x86, None)
    assert packet.toBytes() == bytes([code, 0x86, 0, 4])
    assert EAPPacket.fromBytes(bytes([code, 0x86, 0, 4])) == packet
    assert packet.length == 4


def test_typeNumbers():
    """The Type numbers are the IANA ones the brief lists."""
    assert [EAPType.IDENTITY, EAPType.NOTIFICATION, EAPType.NAK] == [1, 2, 3]
    assert [EAPType.MD5_CHALLENGE, EAPType.TLS, EAPType.MSCHAPV2] == [4, 13, 26]
    assert [EAPCode.REQUEST, EAPCode.RESPONSE, EAPCode.SUCCESS, EAPCode.FAILURE] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x01",
        b"\x01\x02\x00",
    ],
)
def test_shorterThanTheHeader(wire):
    """Fewer than four octets is not an EAP packet."""
    with pytest.raises(EAPParseError):
        EAPPacket.fromBytes(wire)


@pytest.mark.parametrize(
    "wire",
    [
        bytes.fromhex("0107000601"),  # says 6, has 5
        bytes.fromhex("010700040100"),  # says 4, has 6
        bytes.fromhex("0207000501") + b"x",  # trailing octet
        bytes.fromhex("03070005"),  # Success says 5, has 4
    ],
)
def test_lengthMismatch(wire):
    """The Length field must equal the number of octets given, in both directions."""
    with pytest.raises(EAPParseError) as caught:
        EAPPacket.fromBytes(wire)
    assert "Length" in caught.value.reason


@pytest.mark.parametrize("code", [0, 5, 6, 255])
def test_unknownCode(code):
    """Codes other than 1..4 are rejected."""
    with pytest.raises(EAPParseError):
        EAPPacket.fromBytes(bytes([code, 1, 0, 5, 1]))


@pytest.mark.parametrize("code", [3, 4])
def test_successOrFailureWithABody(code):
    """A Success or Failure longer than four octets (a Type or data) is rejected."""
    with pytest.raises(EAPParseError):
        EAPPacket.fromBytes(bytes([code, 1, 0, 5, 1]))


@pytest.mark.parametrize("code", [1, 2])
def test_requestOrResponseWithoutType(code):
    """A Request or Response must have a Type octet."""
    with pytest.raises(EAPParseError):
        EAPPacket.fromBytes(bytes([code, 1, 0, 4]))


def test_expandedTypeUnsupported():
    """Type 254 (Expanded Types, RFC 3748 section 5.7) is refused as unsupported."""
    with pytest.raises(EAPParseError) as caught:
        EAPPacket.fromBytes(bytes([2, 1, 0, 13, 254]) + bytes(8))
    assert "254" in caught.value.reason


def test_typeZeroRejected():
    """Type 0 is no method type."""
    with pytest.raises(EAPParseError):
        EAPPacket.fromBytes(bytes([2, 1, 0, 5, 0]))


@pytest.mark.parametrize(
    "args",
    [
        (0, 1, 1, b""),  # bad code
        (1, 256, 1, b""),  # bad identifier
        (3, 1, 1, b""),  # Success with a type
        (4, 1, None, b"x"),  # Failure with data
        (1, 1, None, b""),  # Request without a type
        (2, 1, 0, b""),  # type 0
    ],
)
def test_inconsistentConstructionIsAProgrammingError(args):
    """Building an impossible packet raises ValueError (parsing never does)."""
    with pytest.raises(ValueError):
        EAPPacket(*args)


def test_packetIsImmutable():
    """Packets are frozen values."""
    packet = EAPPacket(EAPCode.REQUEST, 1, EAPType.IDENTITY)
    with pytest.raises(AttributeError):
        packet.identifier = 2  # type: ignore[misc]


@given(st.binary(max_size=64))
def test_randomBytesParseOrRaiseParseError(wire):
    """No input makes fromBytes raise anything but EAPParseError; what parses round-trips."""
    try:
        packet = EAPPacket.fromBytes(wire)
    except EAPParseError:
        return
    assert packet.toBytes() == wire


_types = st.integers(1, 253) | st.just(255)


@given(
    st.sampled_from([EAPCode.REQUEST, EAPCode.RESPONSE]),
    st.integers(0, 255),
    _types,
    st.binary(max_size=64),
)
def test_requestsAndResponsesRoundTrip(code, identifier, eapType, data):
    """Any Request or Response survives toBytes/fromBytes."""
    packet = EAPPacket(code, identifier, eapType, data)
    assert EAPPacket.fromBytes(packet.toBytes()) == packet
