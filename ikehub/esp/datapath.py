"""
The ESP datapath: UDP-encapsulated ESP (RFC 3948) in, inner IP packets out, and back.

Inbound: SPI -> SAD -> ICV and anti-replay window (in L{ikehub.esp.packet}) -> the inner source
must lie in the CHILD SA's traffic selectors -> route: to another peer's CHILD SA directly
(hub-and-spoke, never through the kernel) or to the packet interface (TUN), where the kernel
forwards it. Outbound: a packet read from TUN -> CHILD SA by longest-prefix match on its
destination -> encrypt -> the peer's current address and path. Packets that match no CHILD SA go
to the SPD, whose default is to discard them (counted).

This is the per-packet path: no logging, no per-packet objects beyond the bytes, counters as
integer attributes. Lifetimes are enforced with a byte and packet budget per SA (two subtractions
per packet) and one shared timer for seconds.
"""

import heapq
import itertools
from struct import Struct

from twisted.logger import Logger

from ikehub.esp.espsa import UNLIMITED, EspSA
from ikehub.esp.packet import EspDropped, SequenceOverflow
from ikehub.ike.counters import Counters

NEXT_HEADER_IPV4 = 4
NEXT_HEADER_IPV6 = 41
#: The largest fraction by which a CHILD SA's soft lifetime in seconds is shortened (jitter).
SOFT_JITTER = 0.1

#: Source and destination of an IPv4 header, at offset 12; one call reads both.
_IPV4_ADDRESSES = Struct("!II")
_IPV4_DESTINATION = Struct("!I")


def innerAddresses(packet: bytes):
    """
    (IP version, source, destination) of an inner packet as integers, or None when it is not a
    whole IPv4 or IPv6 header.
    """
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        return 4, int.from_bytes(packet[12:16], "big"), int.from_bytes(packet[16:20], "big")
    if version == 6 and len(packet) >= 40:
        return 6, int.from_bytes(packet[8:24], "big"), int.from_bytes(packet[24:40], "big")
    return None


class ESPDatapath:
    log = Logger()

    def __init__(self, sad, packetInterface, spd, clock, send, counters: Counters | None = None):
        """
        @param sad: the L{ikehub.esp.sad.SAD}.
        @param packetInterface: an L{ikehub.interfaces.IPacketInterface} (TUN, or memory).
        @param spd: an L{ikehub.policy.spd.SPD} for packets no CHILD SA covers.
        @param clock: an C{IReactorTime} for lifetimes in seconds.
        @param send: C{send(espPacket, peer, path)} puts a packet on the wire.
        """
        self.sad = sad
        self.bySpi = sad.bySpi
        self.routes = sad.routes
        self.packetInterface = packetInterface
        self.spd = spd
        self.clock = clock
        self.send = send
        self.counters = counters if counters is not None else Counters()
        #: Called as C{lifetimeReached(espSa, hard: bool, what: str)}: the IKE side rekeys on a
        #: soft limit and deletes the CHILD SA on a hard one.
        self.lifetimeReached = None
        #: Called as C{unknownSpi(spi, peer)} for ESP whose SPI no CHILD SA has (after counting
        #: it): the IKE side may tell the peer (RFC 7296 section 1.5).
        self.unknownSpi = None
        self._deadlines: list = []
        self._tiebreak = itertools.count()
        self._timer = None
        #: The deadline the timer was armed for (the delayed call's own time may lie a little
        #: later, as the clock moved while it was computed).
        self._timerDeadline = 0.0
        packetInterface.setReceiver(self.packetFromInterface)
        sad.installed = self._installed
        sad.removed = self._removed

    # -- inbound --------------------------------------------------------------------------

    def espReceived(self, data: bytes, peer, path) -> None:
        """
        One ESP packet (the UDP payload) from C{peer}.
        """
        sa = self.bySpi.get(data[:4])
        if sa is None:
            self.counters.increment("esp_unknown_spi")
            if self.unknownSpi is not None and len(data) >= 8:
                self.unknownSpi(data[:4], peer)
            return
        try:
            _, nextHeader, inner = sa.decryptor.open(data)
        except EspDropped as e:
            sa.drop(e.reason)
            return
        size = len(inner)
        # IPv4 addresses are read in place with one call; the rest goes through
        # innerAddresses, which also tells a malformed packet from IPv6.
        if nextHeader == NEXT_HEADER_IPV4 and size >= 20 and inner[0] >> 4 == 4:
            version = 4
            source, destination = _IPV4_ADDRESSES.unpack_from(inner, 12)
        else:
            addresses = innerAddresses(inner)
            if addresses is None or nextHeader != (
                NEXT_HEADER_IPV4 if addresses[0] == 4 else NEXT_HEADER_IPV6
            ):
                sa.drop("malformed_inner")
                return
            version, source, destination = addresses
        if not sa.allowsSource(version, source):
            sa.drop("selector")
            return
        sa.packetsIn += 1
        sa.bytesIn += size
        sa.byteBudget -= size
        sa.packetBudget -= 1
        if sa.byteBudget <= 0 or sa.packetBudget <= 0:
            self._volumeReached(sa)
        target = self.routes.lookup(version, destination)
        if target is not None and target is not sa:
            self._encryptTo(target, inner, nextHeader, size)
        else:
            self.packetInterface.writePacket(inner)

    # -- outbound -------------------------------------------------------------------------

    def packetFromInterface(self, packet: bytes) -> None:
        """
        A packet the kernel routed into the TUN device: protect it towards its peer.
        """
        if len(packet) >= 20 and packet[0] >> 4 == 4:
            version = 4
            target = self.routes.lookup(4, _IPV4_DESTINATION.unpack_from(packet, 16)[0])
        else:
            addresses = innerAddresses(packet)
            if addresses is None:
                self.counters.increment("tun_malformed")
                return
            version = addresses[0]
            target = self.routes.lookup(version, addresses[2])
        if target is None:
            decision = self.spd.decide(packet)
            self.counters.increment("tun_no_child_sa_" + decision.action.name.lower())
            return
        self._encryptTo(
            target, packet, NEXT_HEADER_IPV4 if version == 4 else NEXT_HEADER_IPV6, len(packet)
        )

    def _encryptTo(self, sa: EspSA, packet: bytes, nextHeader: int, size: int) -> None:
        seq = sa.nextSeq
        try:
            esp = sa.encryptor.seal(seq, packet, nextHeader)
        except SequenceOverflow:
            # Sequence numbers never wrap (RFC 4303 section 3.3.3): the SA is spent.
            sa.drop("sequence_exhausted")
            self._expire(sa, True, "sequence numbers")
            return
        sa.nextSeq = seq + 1
        sa.packetsOut += 1
        sa.bytesOut += size
        sa.byteBudget -= size
        sa.packetBudget -= 1
        child = sa.child
        self.send(esp, child.peer, child.path)
        if sa.byteBudget <= 0 or sa.packetBudget <= 0:
            self._volumeReached(sa)

    # -- lifetimes --------------------------------------------------------------------------

    def _installed(self, sa: EspSA) -> None:
        life = sa.lifetime
        sa.byteBudget = life.softBytes
        sa.packetBudget = life.softPackets
        now = self.clock.seconds()
        # Jitter, so that thousands of SAs made in one burst do not all ask for a rekey in the
        # same second: the soft deadline moves up to SOFT_JITTER of itself earlier, by an amount
        # read from the SA's inbound SPI, which is random already and costs no draw.
        spread = int.from_bytes(sa.child.inboundSpi, "big") / 0xFFFFFFFF
        softSeconds = life.softSeconds * (1.0 - SOFT_JITTER * spread)
        for seconds, hard in ((softSeconds, False), (life.hardSeconds, True)):
            if seconds != UNLIMITED:
                heapq.heappush(self._deadlines, (now + seconds, next(self._tiebreak), sa, hard))
        self._armTimer()

    def _removed(self, sa: EspSA) -> None:
        # Deadlines of removed SAs are skipped when they come up; nothing to do per SA here.
        sa.byteBudget = sa.packetBudget = UNLIMITED
        counters = sa.counters()
        self.log.info(
            "CHILD SA {spi_in}/{spi_out} removed: {packets_in} packets ({bytes_in} bytes) in, "
            "{packets_out} packets ({bytes_out} bytes) out, drops {drops}",
            event="child_sa_removed",
            **counters,
        )

    def _armTimer(self) -> None:
        if not self._deadlines:
            return
        when = self._deadlines[0][0]
        if self._timer is not None and self._timer.active():
            # A new SA's deadlines come after the earliest one: keep the timer as it is, rather
            # than cancel and re-arm it on every handshake.
            if self._timerDeadline <= when:
                return
            self._timer.cancel()
        self._timerDeadline = when
        self._timer = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, sa, hard = heapq.heappop(self._deadlines)
            if self.bySpi.get(sa.child.inboundSpi) is sa:
                self._expire(sa, hard, "seconds")
        self._armTimer()

    def _volumeReached(self, sa: EspSA) -> None:
        life = sa.lifetime
        used = sa.bytesIn + sa.bytesOut
        packets = sa.packetsIn + sa.packetsOut
        hard = used >= life.hardBytes or packets >= life.hardPackets
        what = "bytes" if used >= (life.hardBytes if hard else life.softBytes) else "packets"
        if hard:
            sa.byteBudget = sa.packetBudget = UNLIMITED
        else:
            sa.byteBudget = life.hardBytes - used
            sa.packetBudget = life.hardPackets - packets
        self._expire(sa, hard, what)

    def _expire(self, sa: EspSA, hard: bool, what: str) -> None:
        if not hard:
            if sa.softExpired:
                return
            sa.softExpired = True
        self.counters.increment("child_sa_hard_expired" if hard else "child_sa_soft_expired")
        if self.lifetimeReached is not None:
            self.lifetimeReached(sa, hard, what)
        elif hard:
            self.sad.remove(sa.child)
