"""
NAT detection (RFC 7296 section 2.23): each side sends SHA-1(SPIi | SPIr | IP | port) for its own
address and for the address it sends to; a mismatch on arrival means a NAT rewrote one of them.
"""

import ipaddress
import os
import socket
import struct

from cryptography.hazmat.primitives import hashes

from ikehub.wire.constants import NotifyType, ProtocolId
from ikehub.wire.payloads import NotifyPayload

_PORT = struct.Struct("!H")
_SHA1 = hashes.SHA1()


def _packedAddress(host: str) -> bytes:
    """
    C{ipaddress.ip_address(host).packed}, through C{inet_pton} (a tenth of the cost) for the
    plain IPv4 and IPv6 texts sockets report; anything else (a scoped IPv6 address) takes the
    long way, which also raises C{ValueError} for what is not an address.
    """
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except (OSError, TypeError):
        return ipaddress.ip_address(host).packed


def natDetectionHash(spiI: bytes, spiR: bytes, host: str, port: int) -> bytes:
    digest = hashes.Hash(_SHA1)
    digest.update(spiI + spiR + _packedAddress(host) + _PORT.pack(port))
    return digest.finalize()


def natDetectionNotifies(
    spiI: bytes, spiR: bytes, local: tuple[str, int] | None, remote: tuple[str, int]
) -> list[NotifyPayload]:
    """
    The NAT_DETECTION_SOURCE_IP and _DESTINATION_IP notifies for a message sent from C{local} to
    C{remote}. With C{local=None} the source hash is random: the peer then believes we are behind
    a NAT, which is how the hub makes every peer encapsulate ESP in UDP.
    """
    source = os.urandom(20) if local is None else natDetectionHash(spiI, spiR, *local)
    return [
        NotifyPayload(ProtocolId.NONE, NotifyType.NAT_DETECTION_SOURCE_IP, b"", source),
        NotifyPayload(
            ProtocolId.NONE,
            NotifyType.NAT_DETECTION_DESTINATION_IP,
            b"",
            natDetectionHash(spiI, spiR, *remote),
        ),
    ]


def peerIsBehindNat(notifies, spiI: bytes, spiR: bytes, peer: tuple[str, int]) -> bool:
    """
    True when none of the peer's NAT_DETECTION_SOURCE_IP hashes matches the address its datagram
    came from, i.e. a NAT rewrote it (or the peer fakes it to force encapsulation).
    """
    sources = [n.data for n in notifies if n.notifyType == NotifyType.NAT_DETECTION_SOURCE_IP]
    if not sources:
        return False
    expected = natDetectionHash(spiI, spiR, *peer)
    return expected not in sources
