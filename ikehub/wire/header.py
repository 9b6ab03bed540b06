"""
The fixed 28-byte IKE header (RFC 7296 section 3.1).

Kept apart from the payloads because the network layer parses only the header first:
it is enough to find the IKE SA by SPI, and to drop or answer a datagram cheaply before
any payload is looked at.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ikehub.wire._frozen import fastInit, trustedBuilder
from ikehub.wire.constants import (
    IKE_HEADER_LENGTH,
    IKE_MAJOR_VERSION,
    IKE_MINOR_VERSION,
    HeaderFlag,
)
from ikehub.wire.errors import InvalidMajorVersion, ParseError, TruncatedError

_HEADER = struct.Struct("!8s8sBBBBII")
_SPI_LENGTH = 8


_RESPONSE = int(HeaderFlag.RESPONSE)
_INITIATOR = int(HeaderFlag.INITIATOR)


@fastInit
@dataclass(frozen=True, slots=True)
class IKEHeader:
    """
    One IKE header.

    C{nextPayload} and C{length} are whatever the wire said; L{Message.toBytes} recomputes
    both, so a header built for sending may leave them at their defaults.
    """

    spiI: bytes
    spiR: bytes
    nextPayload: int
    exchangeType: int
    flags: int
    messageId: int
    length: int = 0
    majorVersion: int = IKE_MAJOR_VERSION
    minorVersion: int = IKE_MINOR_VERSION

    def __post_init__(self) -> None:
        if len(self.spiI) != _SPI_LENGTH or len(self.spiR) != _SPI_LENGTH:
            raise ValueError("IKE SPIs are 8 bytes each")
        if not (0 <= self.majorVersion <= 15 and 0 <= self.minorVersion <= 15):
            raise ValueError("IKE version numbers are 4 bits each")
        if not (0 <= self.messageId <= 0xFFFFFFFF and 0 <= self.length <= 0xFFFFFFFF):
            raise ValueError("message ID and length are 32-bit unsigned")

    @classmethod
    def outgoing(
        cls, spiI: bytes, spiR: bytes, exchangeType: int, flags: int, messageId: int
    ) -> IKEHeader:
        """
        The header of a message to send, version 2.0, with the next payload and length left for
        the encoder. Checks what the constructor checks, but in line: every answer and request
        the hub sends starts here.

        @raise ValueError: SPIs that are not 8 bytes each, or a message ID beyond 32 bits.
        """
        if len(spiI) != _SPI_LENGTH or len(spiR) != _SPI_LENGTH:
            raise ValueError("IKE SPIs are 8 bytes each")
        if not 0 <= messageId <= 0xFFFFFFFF:
            raise ValueError("message ID and length are 32-bit unsigned")
        return _buildHeader(
            spiI, spiR, 0, exchangeType, flags, messageId, 0, IKE_MAJOR_VERSION, IKE_MINOR_VERSION
        )

    # Plain ints: IntFlag arithmetic costs microseconds on the handshake path.
    @property
    def isResponse(self) -> bool:
        return bool(self.flags & _RESPONSE)

    @property
    def isInitiator(self) -> bool:
        """Whether the original initiator of the IKE SA sent this message."""
        return bool(self.flags & _INITIATOR)

    def toBytes(self) -> bytes:
        return self.toBytesWith(self.nextPayload, self.length)

    def toBytesWith(self, nextPayload: int, length: int) -> bytes:
        """
        The header bytes with C{nextPayload} and C{length} in place of this object's own: how a
        message encoder fills in what only the payloads determine, without a copy.
        """
        return _HEADER.pack(
            self.spiI,
            self.spiR,
            nextPayload,
            (self.majorVersion << 4) | self.minorVersion,
            self.exchangeType,
            self.flags,
            self.messageId,
            length,
        )

    @classmethod
    def fromBytes(cls, data: bytes) -> IKEHeader:
        """
        Parse the first 28 bytes of C{data}; the rest, and whether the length field agrees
        with it, is L{Message.fromBytes}'s business.
        """
        if len(data) < IKE_HEADER_LENGTH:
            raise TruncatedError(
                f"IKE header needs {IKE_HEADER_LENGTH} bytes, got {len(data)}"
            )
        spiI, spiR, nextPayload, version, exchangeType, flags, messageId, length = (
            _HEADER.unpack_from(data)
        )
        major = version >> 4
        if major < IKE_MAJOR_VERSION:
            # IKEv1 or garbage: an IKEv2 notify would mean nothing to the sender.
            raise ParseError(f"IKE major version {major} is not IKEv2", notifyType=None)
        build = _buildHeader if cls is IKEHeader else cls
        header = build(
            spiI,
            spiR,
            nextPayload,
            exchangeType,
            flags,
            messageId,
            length,
            major,
            version & 0x0F,
        )
        if major > IKE_MAJOR_VERSION:
            raise InvalidMajorVersion(major, header)
        return header


# Every datagram's header is decoded, so fromBytes builds it without __init__ (see
# ikehub.wire._frozen): the struct format already guarantees what __post_init__ checks (8-byte
# SPIs, 4-bit versions, 32-bit integers).
_buildHeader = trustedBuilder(IKEHeader)
