"""
The IKEv2 wire codec: bytes to immutable objects and back, with typed parse errors.

No policy, crypto, logging or reactor lives here; see L{ikehub.wire.message} for the
entry points.
"""

from ikehub.wire.errors import (
    BadLengthError,
    InvalidMajorVersion,
    ParseError,
    TruncatedError,
    UnsupportedCriticalPayload,
)
from ikehub.wire.header import IKEHeader
from ikehub.wire.message import (
    Message,
    decodePayloadChain,
    encodeMessage,
    encodePayloadChain,
)
from ikehub.wire.payloads import (
    PAYLOAD_CLASSES,
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
    CPPayload,
    DeletePayload,
    EAPPayload,
    IDiPayload,
    IDPayload,
    IDrPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SAPayload,
    SKFPayload,
    SKPayload,
    TrafficSelector,
    Transform,
    TSiPayload,
    TSPayload,
    TSrPayload,
    VendorIDPayload,
)

__all__ = [
    "PAYLOAD_CLASSES",
    "AuthPayload",
    "BadLengthError",
    "CPPayload",
    "CertPayload",
    "CertReqPayload",
    "ConfigAttribute",
    "DeletePayload",
    "EAPPayload",
    "IDPayload",
    "IDiPayload",
    "IDrPayload",
    "IKEHeader",
    "InvalidMajorVersion",
    "KEPayload",
    "Message",
    "NoncePayload",
    "NotifyPayload",
    "ParseError",
    "Payload",
    "Proposal",
    "SAPayload",
    "SKFPayload",
    "SKPayload",
    "TSPayload",
    "TSiPayload",
    "TSrPayload",
    "TrafficSelector",
    "Transform",
    "TruncatedError",
    "UnsupportedCriticalPayload",
    "VendorIDPayload",
    "decodePayloadChain",
    "encodeMessage",
    "encodePayloadChain",
]
