"""
Typed parse errors of the wire codec.

The codec raises nothing else for any datagram, so the protocol layer can catch exactly
L{ParseError} and turn it into the notify it names (or a counted drop) without ever
mistaking a programming error for a hostile packet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikehub.wire.constants import NotifyType

if TYPE_CHECKING:
    from ikehub.wire.header import IKEHeader


class ParseError(Exception):
    """
    A datagram or payload that is not valid IKEv2.

    @ivar notifyType: the RFC 7296 notify a responder should answer with, or C{None} when
        the datagram deserves no answer at all (for example IKEv1).
    @ivar notifyData: the notification data to send with C{notifyType}.
    """

    def __init__(
        self,
        message: str,
        notifyType: int | None = NotifyType.INVALID_SYNTAX,
        notifyData: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.notifyType = notifyType
        self.notifyData = notifyData


class TruncatedError(ParseError):
    """Fewer bytes than a header or field needs."""


class BadLengthError(ParseError):
    """
    A length field that is smaller than its own header, larger than what remains, or
    inconsistent with a count or another length.
    """


class UnsupportedCriticalPayload(ParseError):
    """
    A payload type this codec does not know, with the critical bit set.

    RFC 7296 section 2.5 requires rejecting the whole message and naming the type in
    the notification data, hence C{notifyData} is the type as one byte.
    """

    def __init__(self, payloadType: int) -> None:
        super().__init__(
            f"unsupported critical payload type {payloadType}",
            NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
            bytes([payloadType]),
        )
        self.payloadType = payloadType


class InvalidMajorVersion(ParseError):
    """
    A header whose major version is above 2: the sender speaks a newer IKE, and RFC 7296
    section 2.5 asks for INVALID_MAJOR_VERSION so it can fall back.

    @ivar header: the header as parsed (its SPIs and message ID are what the answer
        needs), or C{None}.
    """

    def __init__(self, majorVersion: int, header: IKEHeader | None = None) -> None:
        super().__init__(
            f"IKE major version {majorVersion} is not supported (only 2)",
            NotifyType.INVALID_MAJOR_VERSION,
        )
        self.majorVersion = majorVersion
        self.header = header
