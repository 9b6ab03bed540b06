"""
The payloads of RFC 7296 section 3 and the SKF payload of RFC 7383, as immutable values.

Each class knows only its own body: the 4-byte generic payload header (next payload,
critical bit, length) belongs to the chain, which L{ikehub.wire.message} walks. Decoding
is strict about lengths and counts, because every byte an attacker controls is read here
first, and lenient about reserved bits, which RFC 7296 says to ignore on receipt.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from ikehub.wire.constants import (
    PayloadType,
    ProtocolId,
    TransformAttributeType,
    TSType,
)
from ikehub.wire._frozen import fastInit, trustedBuilder
from ikehub.wire.errors import BadLengthError, ParseError, TruncatedError

_TRANSFORM = struct.Struct("!BxHBxH")  # last, length, type, id
_TRANSFORM_WITH_KEY_LENGTH = struct.Struct("!BxHBxHHH")  # ... and the Key Length attribute (TV)
_PROPOSAL = struct.Struct("!BxHBBBB")  # last, length, number, protocol, SPI size, count
_ATTRIBUTE = struct.Struct("!HH")  # AF bit + type, value (TV) or length (TLV)
_TYPE_AND_RESERVED = struct.Struct("!B3x")  # ID, AUTH, TS, CP bodies
_KE = struct.Struct("!HH")  # group, reserved
_NOTIFY = struct.Struct("!BBH")  # protocol, SPI size, type
_DELETE = struct.Struct("!BBH")  # protocol, SPI size, SPI count
_SELECTOR = struct.Struct("!BBHHH")  # type, IP protocol, length, start port, end port
_FRAGMENT = struct.Struct("!HH")  # fragment number, total fragments
_EAP_LENGTH = struct.Struct("!H")

_TRANSFORM_HEADER_LENGTH = 8
_PROPOSAL_HEADER_LENGTH = 8
_SELECTOR_HEADER_LENGTH = 8
_LAST = 0
_MORE_PROPOSALS = 2
_MORE_TRANSFORMS = 3
_ATTRIBUTE_FORMAT_TV = 0x8000
_KEY_LENGTH_TV = _ATTRIBUTE_FORMAT_TV | TransformAttributeType.KEY_LENGTH
_RESERVED_3 = b"\x00\x00\x00"

#: Traffic selector type -> (address length, selector length).
_SELECTOR_SIZES = {
    TSType.TS_IPV4_ADDR_RANGE: (4, 16),
    TSType.TS_IPV6_ADDR_RANGE: (16, 40),
}

#: SPI size of a Delete payload for each protocol (RFC 7296 section 3.11).
_DELETE_SPI_SIZES = {ProtocolId.IKE: 0, ProtocolId.AH: 4, ProtocolId.ESP: 4}

#: Protocol names strongSwan prints (from /etc/protocols), without asking the system.
_PROTOCOL_NAMES = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    132: "sctp",
}
_ICMP_PROTOCOLS = (1, 58)


#: Decoded payloads whose bodies repeat from IKE SA to IKE SA, by (class, body): IKE_SA_INIT's
#: SA payload, the traffic selectors and the configuration request. Every client of one
#: implementation and configuration sends the same ones, and decoding them builds several frozen
#: objects each. As with the transforms cache, only successes are stored, and the limits bound
#: what hostile input can store.
_repeated: dict[tuple[type, bytes], Payload] = {}
_REPEATED_SIZE = 256
_REPEATED_KEY_LENGTH = 4096


def _remember(cls: type, body: bytes, payload: Payload) -> None:
    if len(body) <= _REPEATED_KEY_LENGTH:
        if len(_repeated) >= _REPEATED_SIZE:
            _repeated.clear()
        _repeated[cls, body] = payload


def _tooShort(body: bytes, count: int, what: str) -> TruncatedError:
    # Decoders test the length inline and call this only to fail: a call per payload is
    # measurable on the handshake path.
    return TruncatedError(f"{what} needs at least {count} bytes, got {len(body)}")


# -- SA, proposals and transforms (RFC 7296 section 3.3) ---------------------------------


@fastInit
@dataclass(frozen=True, slots=True)
class Transform:
    """
    One transform of a proposal.

    Key Length is the only attribute RFC 7296 defines; any other attribute makes
    C{hasUnknownAttributes} true so that the proposal selector skips this transform as
    section 3.3.6 requires, instead of the codec rejecting the whole message.
    """

    transformType: int
    transformId: int
    keyLength: int | None = None
    hasUnknownAttributes: bool = False

    def toBytes(self, last: bool = True) -> bytes:
        """
        Encode the transform substructure; C{last} says whether it ends its proposal.
        Unknown attributes were not kept, so they are not re-emitted.
        """
        marker = _LAST if last else _MORE_TRANSFORMS
        if self.keyLength is None:
            return _TRANSFORM.pack(
                marker, _TRANSFORM_HEADER_LENGTH, self.transformType, self.transformId
            )
        return _TRANSFORM.pack(
            marker, _TRANSFORM_HEADER_LENGTH + 4, self.transformType, self.transformId
        ) + _ATTRIBUTE.pack(_KEY_LENGTH_TV, self.keyLength)


def _decodeAttributes(data: bytes, start: int, stop: int) -> tuple[int | None, bool]:
    keyLength = None
    unknown = False
    while start < stop:
        if stop - start < 4:
            raise TruncatedError("transform attribute header needs 4 bytes")
        kind, value = _ATTRIBUTE.unpack_from(data, start)
        start += 4
        if kind & _ATTRIBUTE_FORMAT_TV:
            if kind == _KEY_LENGTH_TV and keyLength is None:
                keyLength = value
            else:
                # A repeated Key Length is as meaningless to us as an unknown attribute.
                unknown = True
        else:
            if value > stop - start:
                raise BadLengthError(
                    f"transform attribute length {value} exceeds the transform"
                )
            start += value
            unknown = True
    return keyLength, unknown


#: Decoded transform lists by their bytes. Each client implementation offers the same
#: few proposals in every exchange, and decoding dozens of transforms into frozen objects
#: costs tens of microseconds where a lookup costs one. Only successes are stored, so a
#: hit means exactly what decoding would; the limits bound what hostile input can store.
_transformsCache: dict[bytes, tuple[Transform, ...]] = {}
_TRANSFORMS_CACHE_SIZE = 256
_TRANSFORMS_CACHE_KEY_LENGTH = 2048


def _decodeTransforms(
    data: bytes, start: int, stop: int, count: int
) -> tuple[Transform, ...]:
    """Decode the transforms filling C{data[start:stop]}, of which there must be C{count}."""
    region = data[start:stop]
    transforms = _transformsCache.get(region)
    if transforms is None:
        transforms = _decodeTransformRegion(region)
        if len(region) <= _TRANSFORMS_CACHE_KEY_LENGTH:
            if len(_transformsCache) >= _TRANSFORMS_CACHE_SIZE:
                _transformsCache.clear()
            _transformsCache[region] = transforms
    if len(transforms) != count:
        raise BadLengthError(
            f"proposal declares {count} transforms but its length holds {len(transforms)}"
        )
    return transforms


def _decodeTransformRegion(data: bytes) -> tuple[Transform, ...]:
    transforms = []
    start = 0
    stop = len(data)
    while start < stop:
        if stop - start < _TRANSFORM_HEADER_LENGTH:
            raise TruncatedError("transform header needs 8 bytes")
        marker, length, transformType, transformId = _TRANSFORM.unpack_from(data, start)
        if length < _TRANSFORM_HEADER_LENGTH or length > stop - start:
            raise BadLengthError(f"transform length {length} out of bounds")
        end = start + length
        if marker != (_LAST if end == stop else _MORE_TRANSFORMS):
            raise ParseError(f"transform last-substructure marker {marker} is wrong")
        if length == _TRANSFORM_HEADER_LENGTH:
            transforms.append(Transform(transformType, transformId))
        else:
            keyLength, unknown = _decodeAttributes(
                data, start + _TRANSFORM_HEADER_LENGTH, end
            )
            transforms.append(Transform(transformType, transformId, keyLength, unknown))
        start = end
    return tuple(transforms)


@fastInit
@dataclass(frozen=True, slots=True)
class Proposal:
    """One proposal: a protocol, its SPI, and the transforms offered for it."""

    number: int
    protocolId: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def toBytes(self, last: bool = True) -> bytes:
        """Encode the proposal substructure; C{last} says whether it ends its SA."""
        count = len(self.transforms)
        if count > 255:
            raise ValueError("a proposal holds at most 255 transforms")
        # Transform.toBytes inline: every IKE_SA_INIT and IKE_AUTH answer encodes a proposal.
        parts = []
        final = count - 1
        for index, t in enumerate(self.transforms):
            marker = _LAST if index == final else _MORE_TRANSFORMS
            if t.keyLength is None:
                length = _TRANSFORM_HEADER_LENGTH
                parts.append(_TRANSFORM.pack(marker, length, t.transformType, t.transformId))
            else:
                parts.append(
                    _TRANSFORM_WITH_KEY_LENGTH.pack(
                        marker,
                        _TRANSFORM_HEADER_LENGTH + 4,
                        t.transformType,
                        t.transformId,
                        _KEY_LENGTH_TV,
                        t.keyLength,
                    )
                )
        body = b"".join(parts)
        length = _PROPOSAL_HEADER_LENGTH + len(self.spi) + len(body)
        if length > 0xFFFF:
            raise ValueError("proposal longer than 65535 bytes")
        return (
            _PROPOSAL.pack(
                _LAST if last else _MORE_PROPOSALS,
                length,
                self.number,
                self.protocolId,
                len(self.spi),
                count,
            )
            + self.spi
            + body
        )


class Payload:
    """
    What every payload class offers: C{PAYLOAD_TYPE}, C{bodyBytes()} and
    C{fromBody(body)}. A marker base so callers can type and test "any payload".
    """

    __slots__ = ()
    PAYLOAD_TYPE: PayloadType

    def bodyBytes(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def fromBody(cls, body: bytes) -> Payload:
        raise NotImplementedError


@fastInit
@dataclass(frozen=True, slots=True)
class SAPayload(Payload):
    PAYLOAD_TYPE = PayloadType.SA

    proposals: tuple[Proposal, ...]

    def bodyBytes(self) -> bytes:
        proposals = self.proposals
        if len(proposals) == 1:
            # An answer: exactly one proposal.
            return proposals[0].toBytes(True)
        last = len(proposals) - 1
        return b"".join(p.toBytes(i == last) for i, p in enumerate(proposals))

    @classmethod
    def fromBody(cls, body: bytes) -> SAPayload:
        body = bytes(body)
        known = _repeated.get((cls, body))
        if known is not None:
            return known
        end = len(body)
        if end == 0:
            raise ParseError("SA payload without proposals")
        proposals = []
        offset = 0
        while True:
            if end - offset < _PROPOSAL_HEADER_LENGTH:
                raise TruncatedError("proposal header needs 8 bytes")
            marker, length, number, protocolId, spiSize, count = _PROPOSAL.unpack_from(
                body, offset
            )
            if length > end - offset:
                raise BadLengthError(f"proposal length {length} exceeds the SA payload")
            spiEnd = offset + _PROPOSAL_HEADER_LENGTH + spiSize
            if spiEnd > offset + length:
                raise BadLengthError(
                    f"proposal length {length} too short for its {spiSize}-byte SPI"
                )
            proposals.append(
                _buildProposal(
                    number,
                    protocolId,
                    body[spiEnd - spiSize : spiEnd],
                    _decodeTransforms(body, spiEnd, offset + length, count),
                )
            )
            offset += length
            if marker == _LAST:
                break
            if marker != _MORE_PROPOSALS:
                raise ParseError(f"bad proposal last-substructure marker {marker}")
        if offset != end:
            raise BadLengthError("bytes after the last proposal of the SA payload")
        payload = _BUILDERS.get(cls, cls)(tuple(proposals))
        # Offers with SPIs (IKE_AUTH's, a rekey's) are new every time: not worth keeping.
        if not any(p.spi for p in proposals):
            _remember(cls, body, payload)
        return payload


# -- simple payloads ---------------------------------------------------------------------


@fastInit
@dataclass(frozen=True, slots=True)
class KEPayload(Payload):
    PAYLOAD_TYPE = PayloadType.KE

    group: int
    keyData: bytes

    def bodyBytes(self) -> bytes:
        return _KE.pack(self.group, 0) + self.keyData

    @classmethod
    def fromBody(cls, body: bytes) -> KEPayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "KE payload")
        return _BUILDERS.get(cls, cls)(_KE.unpack_from(body)[0], body[4:])


@fastInit
@dataclass(frozen=True, slots=True)
class IDPayload(Payload):
    """
    An identification payload.

    The AUTH payload signs this body byte for byte (RFC 7296 section 2.15), so the
    reserved bytes are kept as received even though their value means nothing.
    """

    idType: int
    data: bytes
    reserved: bytes = field(default=_RESERVED_3, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.reserved) != 3:
            raise ValueError("ID payload reserved field is 3 bytes")

    def bodyBytes(self) -> bytes:
        return bytes((self.idType,)) + self.reserved + self.data

    @classmethod
    def fromBody(cls, body: bytes) -> IDPayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "ID payload")
        return _BUILDERS.get(cls, cls)(body[0], body[4:], body[1:4])


@fastInit
@dataclass(frozen=True, slots=True)
class IDiPayload(IDPayload):
    PAYLOAD_TYPE = PayloadType.IDi


@fastInit
@dataclass(frozen=True, slots=True)
class IDrPayload(IDPayload):
    PAYLOAD_TYPE = PayloadType.IDr


@fastInit
@dataclass(frozen=True, slots=True)
class CertPayload(Payload):
    PAYLOAD_TYPE = PayloadType.CERT

    encoding: int
    data: bytes

    def bodyBytes(self) -> bytes:
        return bytes((self.encoding,)) + self.data

    @classmethod
    def fromBody(cls, body: bytes) -> CertPayload:
        body = bytes(body)
        if len(body) < 1:
            raise _tooShort(body, 1, "CERT payload")
        return _BUILDERS.get(cls, cls)(body[0], body[1:])


@fastInit
@dataclass(frozen=True, slots=True)
class CertReqPayload(Payload):
    PAYLOAD_TYPE = PayloadType.CERTREQ

    encoding: int
    data: bytes

    def bodyBytes(self) -> bytes:
        return bytes((self.encoding,)) + self.data

    @classmethod
    def fromBody(cls, body: bytes) -> CertReqPayload:
        body = bytes(body)
        if len(body) < 1:
            raise _tooShort(body, 1, "CERTREQ payload")
        return _BUILDERS.get(cls, cls)(body[0], body[1:])


@fastInit
@dataclass(frozen=True, slots=True)
class AuthPayload(Payload):
    PAYLOAD_TYPE = PayloadType.AUTH

    method: int
    data: bytes

    def bodyBytes(self) -> bytes:
        return _TYPE_AND_RESERVED.pack(self.method) + self.data

    @classmethod
    def fromBody(cls, body: bytes) -> AuthPayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "AUTH payload")
        return _BUILDERS.get(cls, cls)(body[0], body[4:])


@fastInit
@dataclass(frozen=True, slots=True)
class NoncePayload(Payload):
    """A nonce; its 16-256 byte rule is the IKE layer's to enforce, not the codec's."""

    PAYLOAD_TYPE = PayloadType.NONCE

    nonce: bytes

    def bodyBytes(self) -> bytes:
        return self.nonce

    @classmethod
    def fromBody(cls, body: bytes) -> NoncePayload:
        return _BUILDERS.get(cls, cls)(bytes(body))


@fastInit
@dataclass(frozen=True, slots=True)
class NotifyPayload(Payload):
    PAYLOAD_TYPE = PayloadType.NOTIFY

    protocolId: int
    notifyType: int
    spi: bytes = b""
    data: bytes = b""

    def bodyBytes(self) -> bytes:
        return (
            _NOTIFY.pack(self.protocolId, len(self.spi), self.notifyType)
            + self.spi
            + self.data
        )

    @classmethod
    def fromBody(cls, body: bytes) -> NotifyPayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "Notify payload")
        protocolId, spiSize, notifyType = _NOTIFY.unpack_from(body)
        if 4 + spiSize > len(body):
            raise BadLengthError(f"Notify SPI size {spiSize} exceeds the payload")
        spiEnd = 4 + spiSize
        return _BUILDERS.get(cls, cls)(protocolId, notifyType, body[4:spiEnd], body[spiEnd:])


@fastInit
@dataclass(frozen=True, slots=True)
class DeletePayload(Payload):
    """
    SAs to delete: no SPI for the IKE SA itself (its SPIs are in the header), 4-byte
    SPIs for ESP and AH.
    """

    PAYLOAD_TYPE = PayloadType.DELETE

    protocolId: int
    spis: tuple[bytes, ...]

    def __post_init__(self) -> None:
        size = _DELETE_SPI_SIZES.get(self.protocolId)
        if size is None:
            raise ValueError(f"Delete payload for unknown protocol {self.protocolId}")
        if size == 0 and self.spis:
            raise ValueError("deleting the IKE SA takes no SPIs")
        if any(len(spi) != size for spi in self.spis):
            raise ValueError(
                f"Delete SPIs for protocol {self.protocolId} are {size} bytes"
            )

    def bodyBytes(self) -> bytes:
        return _DELETE.pack(
            self.protocolId, _DELETE_SPI_SIZES[self.protocolId], len(self.spis)
        ) + b"".join(self.spis)

    @classmethod
    def fromBody(cls, body: bytes) -> DeletePayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "Delete payload")
        protocolId, spiSize, count = _DELETE.unpack_from(body)
        expected = _DELETE_SPI_SIZES.get(protocolId)
        if expected is None:
            raise ParseError(f"Delete payload for unknown protocol {protocolId}")
        if spiSize != expected:
            raise BadLengthError(
                f"Delete SPI size {spiSize} for protocol {protocolId}, expected {expected}"
            )
        if expected == 0:
            if count or len(body) != 4:
                raise BadLengthError("Delete of the IKE SA carries SPIs")
            return _BUILDERS.get(cls, cls)(protocolId, ())
        if count * spiSize != len(body) - 4:
            raise BadLengthError(
                f"Delete payload declares {count} SPIs but holds {len(body) - 4} bytes"
            )
        return _BUILDERS.get(cls, cls)(
            protocolId,
            tuple(body[i : i + spiSize] for i in range(4, len(body), spiSize)),
        )


@fastInit
@dataclass(frozen=True, slots=True)
class VendorIDPayload(Payload):
    PAYLOAD_TYPE = PayloadType.VENDOR_ID

    data: bytes

    def bodyBytes(self) -> bytes:
        return self.data

    @classmethod
    def fromBody(cls, body: bytes) -> VendorIDPayload:
        return _BUILDERS.get(cls, cls)(bytes(body))


# -- traffic selectors (RFC 7296 section 3.13) -------------------------------------------


_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@fastInit
@dataclass(frozen=True, slots=True)
class TrafficSelector:
    """
    An address range with an IP protocol and a port range; addresses are kept packed, as
    on the wire, so comparing and encoding never reformat them.
    """

    tsType: int
    ipProtocol: int
    startPort: int
    endPort: int
    startAddress: bytes
    endAddress: bytes

    def __post_init__(self) -> None:
        sizes = _SELECTOR_SIZES.get(self.tsType)
        if sizes is None:
            raise ValueError(f"unknown traffic selector type {self.tsType}")
        if len(self.startAddress) != sizes[0] or len(self.endAddress) != sizes[0]:
            raise ValueError(
                f"traffic selector type {self.tsType} needs {sizes[0]}-byte addresses"
            )

    @classmethod
    def fromNetwork(
        cls,
        network: _IPNetwork,
        ipProtocol: int = 0,
        startPort: int = 0,
        endPort: int = 65535,
    ) -> TrafficSelector:
        return cls.fromRange(
            network.network_address,
            network.broadcast_address,
            ipProtocol,
            startPort,
            endPort,
        )

    @classmethod
    def fromRange(
        cls,
        startAddr: _IPAddress,
        endAddr: _IPAddress,
        ipProtocol: int = 0,
        startPort: int = 0,
        endPort: int = 65535,
    ) -> TrafficSelector:
        if startAddr.version != endAddr.version:
            raise ValueError("a traffic selector range cannot mix IPv4 and IPv6")
        tsType = (
            TSType.TS_IPV4_ADDR_RANGE
            if startAddr.version == 4
            else TSType.TS_IPV6_ADDR_RANGE
        )
        return cls(
            tsType, ipProtocol, startPort, endPort, startAddr.packed, endAddr.packed
        )

    def narrowedTo(self, startAddress: bytes, endAddress: bytes) -> TrafficSelector:
        """
        This selector with its address range replaced by another of the same family, as
        narrowing makes (RFC 7296 section 2.9); only the new addresses need checking.

        @raise ValueError: addresses of another length than this selector's.
        """
        size = len(self.startAddress)
        if len(startAddress) != size or len(endAddress) != size:
            raise ValueError(f"traffic selector type {self.tsType} needs {size}-byte addresses")
        return _buildSelector(
            self.tsType, self.ipProtocol, self.startPort, self.endPort, startAddress, endAddress
        )

    @property
    def start(self) -> _IPAddress:
        return ipaddress.ip_address(self.startAddress)

    @property
    def end(self) -> _IPAddress:
        return ipaddress.ip_address(self.endAddress)

    def __str__(self) -> str:
        """
        The selector as strongSwan logs it (C{10.0.0.0/24}, C{10.0.0.5..10.0.0.9},
        C{0.0.0.0/0[tcp/443]}), so our logs and a peer's can be compared by eye.
        Protocol names come from a fixed table and ports stay numeric, where strongSwan
        asks the system's protocol and service databases.
        """
        start, end = self.start, self.end
        first, last = int(start), int(end)
        size = last - first + 1
        if size > 0 and size & (size - 1) == 0 and first & (size - 1) == 0:
            text = f"{start}/{start.max_prefixlen - (size.bit_length() - 1)}"
        else:
            text = f"{start}..{end}"
        hasProtocol = self.ipProtocol != 0
        hasPorts = not (self.startPort == 0 and self.endPort == 0xFFFF)
        if not (hasProtocol or hasPorts):
            return text
        parts = []
        if hasProtocol:
            parts.append(_PROTOCOL_NAMES.get(self.ipProtocol, str(self.ipProtocol)))
        if hasPorts:
            parts.append(self._portText())
        return f"{text}[{'/'.join(parts)}]"

    def _portText(self) -> str:
        icmp = self.ipProtocol in _ICMP_PROTOCOLS
        if self.startPort == self.endPort:
            return _icmpText(self.startPort) if icmp else str(self.startPort)
        if self.startPort == 0xFFFF and self.endPort == 0:
            return "OPAQUE"
        if icmp:
            return f"{_icmpText(self.startPort)}-{_icmpText(self.endPort)}"
        return f"{self.startPort}-{self.endPort}"

    def toBytes(self) -> bytes:
        return (
            _SELECTOR.pack(
                self.tsType,
                self.ipProtocol,
                _SELECTOR_SIZES[self.tsType][1],
                self.startPort,
                self.endPort,
            )
            + self.startAddress
            + self.endAddress
        )


def _icmpText(port: int) -> str:
    """ICMP selectors put the type in the high byte of the port and the code in the low."""
    icmpType, code = port >> 8, port & 0xFF
    return f"{icmpType}({code})" if code else str(icmpType)


@fastInit
@dataclass(frozen=True, slots=True)
class TSPayload(Payload):
    selectors: tuple[TrafficSelector, ...]

    def bodyBytes(self) -> bytes:
        selectors = self.selectors
        if len(selectors) > 255:
            raise ValueError("a TS payload holds at most 255 selectors")
        parts = [_TYPE_AND_RESERVED.pack(len(selectors))]
        for selector in selectors:
            parts.append(selector.toBytes())
        return b"".join(parts)

    @classmethod
    def fromBody(cls, body: bytes) -> TSPayload:
        body = bytes(body)
        known = _repeated.get((cls, body))
        if known is not None:
            return known
        if len(body) < 4:
            raise _tooShort(body, 4, "TS payload")
        count = body[0]
        offset = 4
        end = len(body)
        selectors = []
        for _ in range(count):
            if end - offset < _SELECTOR_HEADER_LENGTH:
                raise TruncatedError("traffic selector header needs 8 bytes")
            tsType, ipProtocol, length, startPort, endPort = _SELECTOR.unpack_from(
                body, offset
            )
            sizes = _SELECTOR_SIZES.get(tsType)
            if sizes is None:
                raise ParseError(f"unknown traffic selector type {tsType}")
            addressLength, expected = sizes
            if length != expected:
                raise BadLengthError(
                    f"traffic selector type {tsType} has length {length}, not {expected}"
                )
            if length > end - offset:
                raise BadLengthError("traffic selector extends past the TS payload")
            middle = offset + 8 + addressLength
            selectors.append(
                _buildSelector(
                    tsType,
                    ipProtocol,
                    startPort,
                    endPort,
                    body[offset + 8 : middle],
                    body[middle : offset + length],
                )
            )
            offset += length
        if offset != end:
            raise BadLengthError(
                f"TS payload declares {count} selectors but has bytes left over"
            )
        payload = _BUILDERS.get(cls, cls)(tuple(selectors))
        _remember(cls, body, payload)
        return payload


@fastInit
@dataclass(frozen=True, slots=True)
class TSiPayload(TSPayload):
    PAYLOAD_TYPE = PayloadType.TSi


@fastInit
@dataclass(frozen=True, slots=True)
class TSrPayload(TSPayload):
    PAYLOAD_TYPE = PayloadType.TSr


# -- encrypted payloads (RFC 7296 section 3.14, RFC 7383) --------------------------------


@fastInit
@dataclass(frozen=True, slots=True)
class SKPayload(Payload):
    """
    The Encrypted and Authenticated payload, undecrypted.

    C{encrypted} is the whole body (IV, ciphertext, ICV): where one ends and the next
    begins depends on the negotiated transforms, which the codec does not know. On the
    wire C{firstPayload} sits in this payload's own generic "next payload" field.
    """

    PAYLOAD_TYPE = PayloadType.SK

    firstPayload: int
    encrypted: bytes

    def bodyBytes(self) -> bytes:
        return self.encrypted

    @classmethod
    def fromBody(cls, body: bytes, firstPayload: int = 0) -> SKPayload:
        return _BUILDERS.get(cls, cls)(firstPayload, bytes(body))


@fastInit
@dataclass(frozen=True, slots=True)
class SKFPayload(Payload):
    """
    One fragment of an SK payload (RFC 7383). C{firstPayload} is meaningful only in
    fragment 1; the others carry 0.
    """

    PAYLOAD_TYPE = PayloadType.SKF

    firstPayload: int
    fragmentNumber: int
    totalFragments: int
    encrypted: bytes

    def bodyBytes(self) -> bytes:
        return _FRAGMENT.pack(self.fragmentNumber, self.totalFragments) + self.encrypted

    @classmethod
    def fromBody(cls, body: bytes, firstPayload: int = 0) -> SKFPayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "SKF payload")
        number, total = _FRAGMENT.unpack_from(body)
        if number == 0 or total == 0 or number > total:
            raise ParseError(f"SKF fragment {number} of {total} is impossible")
        return _BUILDERS.get(cls, cls)(firstPayload, number, total, body[4:])


# -- configuration and EAP ---------------------------------------------------------------


@fastInit
@dataclass(frozen=True, slots=True)
class ConfigAttribute:
    """One configuration attribute; C{value} is raw, its meaning depends on the type."""

    attrType: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.attrType <= 0x7FFF:
            raise ValueError("configuration attribute types are 15 bits")
        if len(self.value) > 0xFFFF:
            raise ValueError("configuration attribute value longer than 65535 bytes")

    def toBytes(self) -> bytes:
        return _ATTRIBUTE.pack(self.attrType, len(self.value)) + self.value


@fastInit
@dataclass(frozen=True, slots=True)
class CPPayload(Payload):
    PAYLOAD_TYPE = PayloadType.CP

    cfgType: int
    attributes: tuple[ConfigAttribute, ...]

    def bodyBytes(self) -> bytes:
        parts = [_TYPE_AND_RESERVED.pack(self.cfgType)]
        for attribute in self.attributes:
            parts.append(_ATTRIBUTE.pack(attribute.attrType, len(attribute.value)))
            parts.append(attribute.value)
        return b"".join(parts)

    @classmethod
    def fromBody(cls, body: bytes) -> CPPayload:
        body = bytes(body)
        known = _repeated.get((cls, body))
        if known is not None:
            return known
        if len(body) < 4:
            raise _tooShort(body, 4, "CP payload")
        offset = 4
        end = len(body)
        attributes = []
        while offset < end:
            if end - offset < 4:
                raise TruncatedError("configuration attribute header needs 4 bytes")
            attrType, length = _ATTRIBUTE.unpack_from(body, offset)
            offset += 4
            if length > end - offset:
                raise BadLengthError(
                    f"configuration attribute length {length} exceeds the CP payload"
                )
            # The top bit is reserved and ignored on receipt.
            attributes.append(
                _buildAttribute(attrType & 0x7FFF, body[offset : offset + length])
            )
            offset += length
        payload = _BUILDERS.get(cls, cls)(body[0], tuple(attributes))
        _remember(cls, body, payload)
        return payload


@fastInit
@dataclass(frozen=True, slots=True)
class EAPPayload(Payload):
    """
    A whole EAP message (RFC 3748). Its own length field must match, because EAP
    methods trust it and a mismatch is the classic way to smuggle bytes past one layer.
    """

    PAYLOAD_TYPE = PayloadType.EAP

    message: bytes

    def __post_init__(self) -> None:
        if len(self.message) < 4 or _EAP_LENGTH.unpack_from(self.message, 2)[0] != len(
            self.message
        ):
            raise ValueError("EAP message length field must equal its length (>= 4)")

    def bodyBytes(self) -> bytes:
        return self.message

    @classmethod
    def fromBody(cls, body: bytes) -> EAPPayload:
        body = bytes(body)
        if len(body) < 4:
            raise _tooShort(body, 4, "EAP payload")
        length = _EAP_LENGTH.unpack_from(body, 2)[0]
        if length != len(body):
            raise BadLengthError(
                f"EAP length field {length} does not match the {len(body)}-byte payload"
            )
        return _BUILDERS.get(cls, cls)(body)


#: Payload type -> class, for every payload this codec understands.
PAYLOAD_CLASSES: dict[int, type[Payload]] = {
    cls.PAYLOAD_TYPE: cls
    for cls in (
        SAPayload,
        KEPayload,
        IDiPayload,
        IDrPayload,
        CertPayload,
        CertReqPayload,
        AuthPayload,
        NoncePayload,
        NotifyPayload,
        DeletePayload,
        VendorIDPayload,
        TSiPayload,
        TSrPayload,
        SKPayload,
        CPPayload,
        EAPPayload,
        SKFPayload,
    )
}


# The decoders build what they decode without __init__ (see ikehub.wire._frozen): each value
# has been bounded by the decoder itself, which makes the __post_init__ checks redundant. A
# subclass of ours (not in the table) is built by its own __init__.
_BUILDERS = {
    cls: trustedBuilder(cls)
    for cls in (
        *PAYLOAD_CLASSES.values(),
        Proposal,
        TrafficSelector,
        ConfigAttribute,
    )
}
_buildProposal = _BUILDERS[Proposal]
_buildSelector = _BUILDERS[TrafficSelector]
_buildAttribute = _BUILDERS[ConfigAttribute]
