"""
Whole IKE messages: the header plus a chain of payloads linked by "next payload" fields.

The chain walker is the one place that reads attacker-chosen lengths before anything else
has vetted them, so it bounds everything: every length against what remains, the number of
payloads against a limit, and the end of the chain against the end of the data.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ikehub.wire._frozen import fastInit, trustedBuilder
from ikehub.wire.constants import (
    GENERIC_PAYLOAD_HEADER_LENGTH,
    IKE_HEADER_LENGTH,
    PayloadType,
)
from ikehub.wire.errors import (
    BadLengthError,
    ParseError,
    TruncatedError,
    UnsupportedCriticalPayload,
)
from ikehub.wire.header import IKEHeader
from ikehub.wire.payloads import (
    PAYLOAD_CLASSES,
    NotifyPayload,
    Payload,
    SKFPayload,
    SKPayload,
)

_GENERIC = struct.Struct("!BBH")  # next payload, critical bit + reserved, length
_CRITICAL = 0x80
_MAX_PAYLOAD_LENGTH = 0xFFFF
_ENCRYPTED_TYPES = (PayloadType.SK, PayloadType.SKF)

_ENCRYPTED_CLASSES = (SKPayload, SKFPayload)

P = TypeVar("P", bound=Payload)


def encodePayloadChain(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """
    Encode C{payloads} with their generic headers linked in order.

    @return: the type of the first payload (0 for none), for the field that points at
        the chain, and the encoded chain.
    @raise ValueError: an SK or SKF payload that is not last (its "next payload" field
        names its first inner payload, so nothing can follow it), or a payload whose
        fields do not fit the wire format.
    """
    if not payloads:
        return 0, b""
    parts = []
    last = len(payloads) - 1
    for index, payload in enumerate(payloads):
        if isinstance(payload, _ENCRYPTED_CLASSES):
            if index != last:
                raise ValueError(f"{type(payload).__name__} must be the last payload")
            nextType = payload.firstPayload
        else:
            nextType = payloads[index + 1].PAYLOAD_TYPE if index != last else 0
        try:
            body = payload.bodyBytes()
            length = GENERIC_PAYLOAD_HEADER_LENGTH + len(body)
            if length > _MAX_PAYLOAD_LENGTH:
                raise ValueError(f"{type(payload).__name__} longer than 65535 bytes")
            parts.append(_GENERIC.pack(nextType, 0, length))
        except struct.error as e:
            raise ValueError(f"{payload!r} has a field out of range: {e}") from e
        parts.append(body)
    return payloads[0].PAYLOAD_TYPE, b"".join(parts)


def encodeMessage(header: IKEHeader, payloads: Sequence[Payload]) -> bytes:
    """
    C{Message(header, payloads).toBytes()} without building the message: the header's next
    payload and length fields are computed from C{payloads}.

    @raise ValueError: as L{encodePayloadChain}.
    """
    firstType, chain = encodePayloadChain(payloads)
    return header.toBytesWith(firstType, IKE_HEADER_LENGTH + len(chain)) + chain


def decodePayloadChain(
    firstType: int, data: bytes, maxPayloads: int = 64
) -> tuple[Payload, ...]:
    """
    Decode the payload chain in C{data}, whose first payload has type C{firstType}.

    Unknown payloads are skipped unless critical (RFC 7296 section 2.5) but still count
    against C{maxPayloads}, so a datagram of empty unknown payloads cannot buy unbounded
    work. An SK or SKF payload ends the chain: what follows its generic header is
    ciphertext, and its "next payload" field becomes its C{firstPayload}.

    @raise ParseError: (a subclass of it) for anything that is not a valid chain.
    """
    return _decodeChain(firstType, bytes(data), 0, maxPayloads)


def _decodeChain(
    firstType: int, data: bytes, offset: int, maxPayloads: int = 64
) -> tuple[Payload, ...]:
    """
    L{decodePayloadChain} of C{data[offset:]}, without copying the message to slice the
    chain out of it.
    """
    end = len(data)
    nextType = firstType
    payloads: list[Payload] = []
    seen = 0
    while nextType:
        if seen == maxPayloads:
            raise ParseError(f"more than {maxPayloads} payloads")
        seen += 1
        if end - offset < GENERIC_PAYLOAD_HEADER_LENGTH:
            raise TruncatedError(f"payload {seen} has no room for its generic header")
        following, critical, length = _GENERIC.unpack_from(data, offset)
        if length < GENERIC_PAYLOAD_HEADER_LENGTH or length > end - offset:
            raise BadLengthError(
                f"payload {seen} (type {nextType}) has length {length} with "
                f"{end - offset} bytes remaining"
            )
        stop = offset + length
        if nextType in _ENCRYPTED_TYPES:
            if stop != end:
                raise BadLengthError(
                    f"payload type {nextType} must extend to the end of the message"
                )
            cls = SKPayload if nextType == PayloadType.SK else SKFPayload
            payloads.append(cls.fromBody(data[offset + 4 : stop], following))
            return tuple(payloads)
        cls = PAYLOAD_CLASSES.get(nextType)
        if cls is not None:
            payloads.append(cls.fromBody(data[offset + 4 : stop]))
        elif critical & _CRITICAL:
            raise UnsupportedCriticalPayload(nextType)
        offset = stop
        nextType = following
    if offset != end:
        raise BadLengthError(f"{end - offset} bytes after the last payload")
    return tuple(payloads)


@fastInit
@dataclass(frozen=True, slots=True)
class Message:
    """
    One IKE message. The header's C{nextPayload} and C{length} are recomputed on
    encoding, so callers build the header without knowing either.
    """

    header: IKEHeader
    payloads: tuple[Payload, ...]

    def __post_init__(self) -> None:
        if type(self.payloads) is not tuple:
            object.__setattr__(self, "payloads", tuple(self.payloads))

    def toBytes(self) -> bytes:
        return encodeMessage(self.header, self.payloads)

    @classmethod
    def fromBytes(cls, data: bytes, header: IKEHeader | None = None) -> Message:
        """
        Decode one datagram (without the non-ESP marker of UDP 4500).

        @param header: C{IKEHeader.fromBytes(data)} when the caller has parsed it already
            (the endpoint reads the header first to find the SA), so it is not parsed twice.
        @raise ParseError: (a subclass of it) for anything that is not a valid message;
            never anything else.
        """
        data = bytes(data)
        if header is None:
            header = IKEHeader.fromBytes(data)
        if header.length < IKE_HEADER_LENGTH:
            raise BadLengthError(f"IKE header length {header.length} is below 28")
        if header.length != len(data):
            raise BadLengthError(
                f"IKE header length {header.length} but the datagram has {len(data)} bytes"
            )
        # Built without __init__ (see ikehub.wire._frozen), whose __post_init__ only makes the
        # payloads a tuple, which the chain decoder returns already.
        build = _buildMessage if cls is Message else cls
        return build(header, _decodeChain(header.nextPayload, data, IKE_HEADER_LENGTH))

    def get(self, cls: type[P]) -> P | None:
        """The first payload that is an instance of C{cls}, or C{None}."""
        for payload in self.payloads:
            if isinstance(payload, cls):
                return payload
        return None

    def getAll(self, cls: type[P]) -> tuple[P, ...]:
        return tuple(p for p in self.payloads if isinstance(p, cls))

    def notifies(self) -> tuple[NotifyPayload, ...]:
        return self.getAll(NotifyPayload)

    def getNotify(self, notifyType: int) -> NotifyPayload | None:
        for payload in self.payloads:
            if isinstance(payload, NotifyPayload) and payload.notifyType == notifyType:
                return payload
        return None

    @property
    def sk(self) -> SKPayload | SKFPayload | None:
        """The encrypted payload that ends this message, if any."""
        if self.payloads and isinstance(self.payloads[-1], (SKPayload, SKFPayload)):
            return self.payloads[-1]
        return None


_buildMessage = trustedBuilder(Message)
