"""
The EAP packet (RFC 3748 section 4): bytes in, an immutable L{EAPPacket} out, and back.

The codec is strict because its bytes come from an unauthenticated peer: the Length field
must cover exactly the bytes given (an IKE EAP payload carries exactly one EAP message, so
there is no lower-layer padding to tolerate), Success and Failure are exactly four octets,
and Expanded Types (254) are refused rather than half-understood. Everything wrong raises
L{EAPParseError} and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["HEADER_LENGTH", "EAPCode", "EAPPacket", "EAPParseError", "EAPType"]

#: Code, Identifier and Length.
HEADER_LENGTH = 4

_HEADER = struct.Struct("!BBH")


class EAPCode(IntEnum):
    """RFC 3748 section 4."""

    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


class EAPType(IntEnum):
    """The EAP Types this server knows by name (IANA "EAP Method Types")."""

    IDENTITY = 1
    NOTIFICATION = 2
    NAK = 3
    MD5_CHALLENGE = 4
    TLS = 13
    MSCHAPV2 = 26
    EXPANDED = 254


class EAPParseError(Exception):
    """
    Bytes that are not an EAP packet this codec accepts.

    @ivar reason: what is wrong, for logs (never packet contents beyond numbers).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EAPPacket:
    """
    One EAP packet.

    C{type} is C{None} exactly for Success and Failure, which carry neither a Type nor
    data; Requests and Responses always have one. Constructing an inconsistent packet is a
    programming error and raises C{ValueError}; parsing never does (see L{fromBytes}).
    """

    code: int
    identifier: int
    type: int | None
    data: bytes = b""

    def __post_init__(self) -> None:
        if self.code not in _CODES:
            raise ValueError(f"EAP code {self.code} is not 1..4")
        if not 0 <= self.identifier <= 0xFF:
            raise ValueError(f"EAP identifier {self.identifier} is not 0..255")
        if self.code in _NO_TYPE:
            if self.type is not None or self.data:
                raise ValueError("EAP Success and Failure have no type and no data")
        elif self.type is None or not 1 <= self.type <= 0xFF:
            raise ValueError("EAP Requests and Responses need a type 1..255")
        if HEADER_LENGTH + 1 + len(self.data) > 0xFFFF:
            raise ValueError("EAP packet longer than 65535 octets")

    @property
    def length(self) -> int:
        """The value of the Length field."""
        if self.type is None:
            return HEADER_LENGTH
        return HEADER_LENGTH + 1 + len(self.data)

    def toBytes(self) -> bytes:
        header = _HEADER.pack(self.code, self.identifier, self.length)
        if self.type is None:
            return header
        return header + bytes([self.type]) + self.data

    @classmethod
    def fromBytes(cls, data: bytes) -> EAPPacket:
        """
        Parse exactly one EAP packet.

        @raise EAPParseError: short input, a Length field that disagrees with the input,
            an unknown Code, a Success/Failure with a body, a Request/Response without a
            Type, Type 0, or an Expanded Type.
        """
        data = bytes(data)
        if len(data) < HEADER_LENGTH:
            raise EAPParseError(f"{len(data)} octets is shorter than the EAP header")
        code, identifier, length = _HEADER.unpack_from(data)
        if length != len(data):
            raise EAPParseError(f"Length field says {length} octets but {len(data)} arrived")
        if code not in _CODES:
            raise EAPParseError(f"unknown EAP code {code}")
        if code in _NO_TYPE:
            if length != HEADER_LENGTH:
                raise EAPParseError(
                    f"EAP {EAPCode(code).name.title()} must be 4 octets, not {length}"
                )
            return cls(code, identifier, None)
        if length < HEADER_LENGTH + 1:
            raise EAPParseError(f"EAP {EAPCode(code).name.title()} without a Type")
        eapType = data[HEADER_LENGTH]
        if eapType == 0:
            raise EAPParseError("EAP Type 0 is not a method type")
        if eapType == EAPType.EXPANDED:
            raise EAPParseError("Expanded EAP Types (254) are not supported")
        return cls(code, identifier, eapType, data[HEADER_LENGTH + 1 :])


_CODES = frozenset(EAPCode)
_NO_TYPE = frozenset((EAPCode.SUCCESS, EAPCode.FAILURE))
