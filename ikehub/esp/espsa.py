"""
The ESP side of a CHILD SA: what the datapath needs per packet, prepared once at install time.

The IKE machine hands the SAD a L{ikehub.ike.child.ChildSA}; the SAD wraps it in an L{EspSA}
that holds the keyed ciphers of both directions, the anti-replay window, the next outbound
sequence number, the peer's traffic selectors as integer ranges (for the inbound source check)
and the counters an operator reads.
"""

from ikehub.esp.packet import EspDecryptor, EspEncryptor
from ikehub.esp.replay import ReplayWindow
from ikehub.wire.constants import TSType

UNLIMITED = float("inf")


class Lifetime:
    """
    Soft and hard limits of a CHILD SA in seconds, bytes and packets (RFC 4301 section 4.4.2.1).
    Reaching a soft limit asks for a rekey; reaching a hard limit ends the SA.
    """

    __slots__ = (
        "softSeconds",
        "hardSeconds",
        "softBytes",
        "hardBytes",
        "softPackets",
        "hardPackets",
    )

    def __init__(
        self,
        hardSeconds: float = UNLIMITED,
        hardBytes: float = UNLIMITED,
        hardPackets: float = UNLIMITED,
        softFraction: float = 0.9,
    ) -> None:
        self.hardSeconds, self.hardBytes, self.hardPackets = hardSeconds, hardBytes, hardPackets
        self.softSeconds = hardSeconds * softFraction
        self.softBytes = hardBytes * softFraction
        self.softPackets = hardPackets * softFraction


def selectorRanges(selectors) -> tuple[tuple[int, int, int], ...]:
    """
    Traffic selectors as (IP version, first, last) integer ranges; ports and protocols are not
    checked on the inner packet (the hub narrows to whole addresses).
    """
    fromBytes = int.from_bytes
    return tuple(
        [
            (
                4 if ts.tsType == _IPV4 else 6,
                fromBytes(ts.startAddress, "big"),
                fromBytes(ts.endAddress, "big"),
            )
            for ts in selectors
        ]
    )


_IPV4 = TSType.TS_IPV4_ADDR_RANGE


class EspSA:
    __slots__ = (
        "child",
        "encryptor",
        "decryptor",
        "nextSeq",
        "remoteRanges",
        "routed",
        "lifetime",
        "softExpired",
        "byteBudget",
        "packetBudget",
        "packetsIn",
        "bytesIn",
        "packetsOut",
        "bytesOut",
        "drops",
    )

    def __init__(self, child, replayWindow: int = 1024, lifetime: Lifetime | None = None) -> None:
        suite = child.suite
        self.child = child
        self.encryptor = EspEncryptor(suite, child.outboundSpi, child.encrOut, child.integOut)
        self.decryptor = EspDecryptor(
            suite,
            child.inboundSpi,
            child.encrIn,
            child.integIn,
            ReplayWindow(replayWindow, esn=suite.esn),
        )
        self.nextSeq = 1
        self.remoteRanges = selectorRanges(child.remoteTs)
        #: Whether outbound packets may be routed to this SA (see SAD.activateOutbound).
        self.routed = False
        self.lifetime = lifetime or Lifetime()
        self.softExpired = False
        #: Bytes and packets left before the next lifetime event; the datapath counts them down.
        self.byteBudget = self.lifetime.softBytes
        self.packetBudget = self.lifetime.softPackets
        self.packetsIn = self.bytesIn = self.packetsOut = self.bytesOut = 0
        #: Packets dropped on this SA, by reason ("icv", "replay", "selector", ...).
        self.drops: dict[str, int] = {}

    @property
    def localRanges(self) -> tuple[tuple[int, int, int], ...]:
        """
        Our side's traffic selectors as integer ranges. Nothing on the packet path needs them,
        so they are not worked out at install time, which is on every handshake.
        """
        return selectorRanges(self.child.localTs)

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def allowsSource(self, version: int, address: int) -> bool:
        """
        RFC 4301 section 5.2: an inbound packet's inner source must lie inside the peer's
        traffic selectors, or one peer could speak with another's address.
        """
        for rangeVersion, first, last in self.remoteRanges:
            if rangeVersion == version and first <= address <= last:
                return True
        return False

    def counters(self) -> dict:
        return {
            "spi_in": self.child.inboundSpi.hex(),
            "spi_out": self.child.outboundSpi.hex(),
            "packets_in": self.packetsIn,
            "bytes_in": self.bytesIn,
            "packets_out": self.packetsOut,
            "bytes_out": self.bytesOut,
            "drops": dict(self.drops),
        }
